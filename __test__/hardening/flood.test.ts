/**
 * A flood of malformed requests — every class of spec §11, and clients vanishing mid-request or
 * sending oversized attributes — from several client processes at once, while other clients run
 * save_endp/find_endp cycles with real descriptors. Every good request must be answered correctly,
 * every malformed one as the spec says (checked byte for byte by the workers), the daemon must stay
 * up, and its warnings must be rate-limited: at most 100 a second get through, and each second's
 * surplus is reported as one `suppressed N warnings` line — no warning unaccounted for.
 *
 * Scale with SCACHE_FLOOD_REQUESTS (default 10,000, the issue's figure).
 */
import { afterAll, expect, test } from '@jest/globals';
import { findEndp, findEndpReply, FAIL, show } from '../support/attrs.js';
import { killChildren, running } from '../support/processes.js';
import { removeTempDirectories } from '../support/temp.js';
import { now, sleep } from '../support/time.js';
import { Client } from '../support/wire.js';
import {
  distribution,
  figure,
  scaled,
  startServerProcess,
  startWorker,
  stopFile,
  type GoodReport,
  type MalformedReport,
} from './support.js';

afterAll(async () => {
  await killChildren();
  removeTempDirectories();
});

const REQUESTS = scaled('SCACHE_FLOOD_REQUESTS', 10_000);
const FLOODERS = 4;
const GOOD_CLIENTS = 2;
const PER_SECOND = 100;

test(`${REQUESTS} malformed requests from ${FLOODERS} clients while ${GOOD_CLIENTS} good clients cycle: all answered right, daemon up, warnings rate-limited`, async () => {
  const server = await startServerProcess();
  const stop = stopFile();
  const good = Array.from({ length: GOOD_CLIENTS }, (_, i) =>
    startWorker<GoodReport>('good', { path: server.path, id: i + 1, stopFile: stop.path }),
  );
  await sleep(300);
  const started = now();
  const share = Math.ceil(REQUESTS / FLOODERS);
  const flood = Array.from({ length: FLOODERS }, (_, i) =>
    startWorker<MalformedReport>('malformed', { path: server.path, count: Math.min(share, REQUESTS - i * share), first: i * 7 }),
  );
  const floods = await Promise.all(flood.map((worker) => worker.result));
  const floodSeconds = (now() - started) / 1000;
  stop.stop();
  const goods = await Promise.all(good.map((worker) => worker.result));

  // Every malformed request got exactly the reply (or silence, or close) the spec gives it.
  for (const report of floods) expect({ errors: report.errors, samples: report.errorSamples }).toEqual({ errors: 0, samples: [] });
  const sent = floods.reduce((sum, report) => sum + report.sent, 0);
  expect(sent).toBe(REQUESTS);
  const classes = new Set(floods.flatMap((report) => Object.keys(report.perClass)));
  // Every good request was answered right, with the very connection that was saved.
  for (const report of goods) {
    expect({ errors: report.errors, samples: report.errorSamples }).toEqual({ errors: 0, samples: [] });
    expect(report.cycles).toBeGreaterThan(10);
  }

  // The daemon is alive and serving.
  expect(running(server.child)).toBe(true);
  const probe = Client.connect(server.path);
  probe.send(findEndp('smtp\n192.0.2.250\n25\n0\n'));
  expect(show(probe.read(findEndpReply(FAIL).length))).toBe(show(findEndpReply(FAIL)));
  probe.close();

  // The limiter reports the last window's surplus when that window ends.
  await sleep(1300);
  expect(await server.stop()).toEqual({ code: 0, signal: null });

  const warnings = server.lines.filter((line) => line.text.startsWith('warning: '));
  const suppressedLines = warnings.filter((line) => /^warning: suppressed \d+ warnings? in the last second/.test(line.text));
  const droppedLines = warnings.filter((line) => / log records were dropped: /.test(line.text));
  const logged = warnings.filter((line) => !suppressedLines.includes(line) && !droppedLines.includes(line));
  const suppressed = suppressedLines.reduce((sum, line) => sum + Number(/suppressed (\d+)/.exec(line.text)![1]), 0);
  const dropped = droppedLines.reduce((sum, line) => sum + Number(/warning: (\d+) log records/.exec(line.text)![1]), 0);
  const expected = floods.reduce((sum, report) => sum + report.expectedWarnings, 0);
  // Each warning the server had to give was either logged or counted in a `suppressed` line.
  expect(logged.length + suppressed + dropped).toBe(expected);
  expect(suppressedLines.length).toBeGreaterThan(0);

  // At most 100 a second: count the logged warnings in every one-second window (sliding, by
  // arrival time here; the limiter's own windows start at a warning, so a sliding window may
  // straddle two of them).
  const times = logged.map((line) => line.at);
  let maxInWindow = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    maxInWindow = Math.max(maxInWindow, i - j + 1);
  }
  const span = (times[times.length - 1]! - times[0]!) / 1000;
  expect(logged.length).toBeLessThanOrEqual(PER_SECOND * (Math.ceil(span) + 1));
  expect(maxInWindow).toBeLessThanOrEqual(2 * PER_SECOND);

  const exchanges = distribution(goods.flatMap((report) => [report.exchange.p99]));
  figure(
    'malformed flood',
    `${sent} malformed requests (${classes.size} classes) from ${FLOODERS} clients in ${floodSeconds.toFixed(1)} s; ` +
      `${goods.reduce((sum, report) => sum + report.cycles, 0)} good save+find cycles alongside, 0 wrong answers ` +
      `(good exchange p99 ${exchanges.max.toFixed(2)} ms); ${expected} warnings due: ${logged.length} logged, ` +
      `${suppressed} counted in ${suppressedLines.length} "suppressed" lines${dropped ? `, ${dropped} dropped` : ''}; ` +
      `at most ${maxInWindow} warnings in any 1 s window`,
  );
  figure('malformed flood classes', [...classes].sort().join('; '));
}, 120_000);
