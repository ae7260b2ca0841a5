/**
 * 1,000 clients connected at once (SCACHE_LOAD_CLIENTS to change it), every one served: each
 * saves a connection with a real descriptor, then takes the one its neighbour saved, all while the
 * others are connected and asking too. The clients run in a separate process.
 */
import { afterAll, expect, test } from '@jest/globals';
import { killChildren } from '../support/processes.js';
import { removeTempDirectories } from '../support/temp.js';
import { figure, openFds, scaled, startServerProcess, startWorker, type LatencyReport } from './support.js';

afterAll(async () => {
  await killChildren();
  removeTempDirectories();
});

const CLIENTS = scaled('SCACHE_LOAD_CLIENTS', 1_000);

interface ConnectionsReport {
  count: number;
  greeted: number;
  saved: number;
  found: number;
  connectMs: number;
  totalMs: number;
  find: LatencyReport;
  errors: number;
  errorSamples: string[];
}

test(`${CLIENTS} concurrent client connections are all served`, async () => {
  // Each client and each cached connection is a descriptor in the server: room for both.
  const server = await startServerProcess({ raiseNofile: 4 * CLIENTS + 256 });
  const worker = startWorker<ConnectionsReport>('connections', { path: server.path, count: CLIENTS }, 4 * CLIENTS + 256);
  let peakFds = 0;
  const sampler = setInterval(() => (peakFds = Math.max(peakFds, openFds(server.pid))), 20);
  const report = await worker.result;
  clearInterval(sampler);
  expect({ errors: report.errors, samples: report.errorSamples }).toEqual({ errors: 0, samples: [] });
  expect([report.greeted, report.saved, report.found]).toEqual([CLIENTS, CLIENTS, CLIENTS]);
  expect(await server.stop()).toEqual({ code: 0, signal: null });
  figure(
    'concurrent clients',
    `${CLIENTS} clients connected at once, each saved a connection and took its neighbour's: ${report.greeted} greeted, ` +
      `${report.saved} saves and ${report.found} finds answered right in ${report.totalMs.toFixed(0)} ms ` +
      `(find p99 ${report.find.p99.toFixed(2)} ms while all were connected); server peak ${peakFds} descriptors`,
  );
}, 60_000);
