/**
 * ScacheServer as an embedding API (exported from ts/index.ts): several servers in one process stay
 * independent; unref() lets a process exit while serving; observation events for saves, bindings,
 * hits, misses and expiries; the statistics snapshot; close() closes every cached connection before
 * it resolves; an inherited listening descriptor; the winston logger option. Clients are
 * ScacheClients with real connections.
 */
import { afterAll, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createLogger,
  ScacheClient,
  ScacheServer,
  type ScacheObservation,
  type ScacheServerOptions,
} from '../../ts/index.js';
import { listenUnix } from '../../ts/native.js';
import { exited, killChildren, running, track } from '../support/processes.js';
import { CLI, LineCapture, MemoryTransport, REPO_ROOT } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { sleep, waitFor } from '../support/time.js';
import { closeAll, connectedPair, onClose, receive, sawEnd } from './helpers.js';
import { E, D, Q } from '../support/labels.js';

afterAll(async () => {
  await closeAll();
  await killChildren();
  removeTempDirectories();
});

const P = 'reuse_count=0\n';

function start(options: Partial<ScacheServerOptions> = {}): { server: ScacheServer; path: string; records: string[] } {
  const path = join(tempDirectory(), 'scache');
  const transport = new MemoryTransport();
  const server = ScacheServer.start({ listen: { path }, logger: createLogger([transport]), ...options });
  onClose(() => server.close());
  return { server, path, records: transport.records };
}

async function client(path: string): Promise<ScacheClient> {
  const connected = await ScacheClient.connect(path);
  onClose(() => connected.close());
  return connected;
}

test('two servers in one process are independent: caches, statistics, options and lifetimes', async () => {
  const a = start({ ttlLimitMs: 60_000 });
  const b = start({ ttlLimitMs: 1_000 });
  const [toA, toB] = [await client(a.path), await client(b.path)];
  const { local, peer } = await connectedPair('tcp');
  expect(await toA.saveEndp(30, E, P, local)).toBe('ok');
  expect(await toB.findEndp(E)).toBeNull();
  expect(await toB.saveDest(30, D, Q, E)).toBe('ok');
  expect((await toA.status()).destinationsCount).toBe(0);
  expect((await toA.status()).endpoints[0]!.connections[0]!.ttlMs).toBeGreaterThan(29_000);
  expect((await toB.status()).destinations[0]!.bindings[0]!.ttlMs).toBeLessThanOrEqual(1_000);
  expect(a.server.statistics()).toMatchObject({ endpHits: 0, endpMiss: 0, maxSessions: 1, maxDests: 0 });
  expect(b.server.statistics()).toMatchObject({ endpHits: 0, endpMiss: 1, maxSessions: 0, maxDests: 1 });
  // Closing one leaves the other serving, with its cache.
  await b.server.close();
  await expect(toB.findEndp(E)).rejects.toMatchObject({ kind: 'closed' });
  const found = await toA.findEndp(E);
  onClose(() => found?.socket.destroy());
  peer.write('still here');
  expect(await receive(found!.socket, 10)).toBe('still here');
});

test('observation events: save, bind (and refresh), hit, miss, and expiry', async () => {
  const { server, path } = start({ observe: true, ttlLimitMs: 300 });
  const seen: ScacheObservation[] = [];
  server.on('observation', (observation) => seen.push(observation));
  const cache = await client(path);
  const first = await connectedPair('unix');
  const second = await connectedPair('unix');
  await cache.saveEndp(30, E, P, first.local);
  await cache.saveDest(30, D, Q, E);
  await cache.saveDest(30, D, Q, E);
  const hit = await cache.findDest(D);
  onClose(() => hit?.socket.destroy());
  await cache.findEndp(E);
  await cache.saveEndp(30, E, P, second.local); // clamped to 300 ms: expires
  const secondEnded = sawEnd(second.peer, 3000);
  expect(await waitFor(() => seen.some((o) => o.action === 'evicted'), 3000)).toBe(true);
  expect(seen).toEqual([
    { action: 'saved', label: E },
    { action: 'bound', label: E, dest: D, refreshed: false },
    { action: 'bound', label: E, dest: D, refreshed: true },
    { action: 'hit', label: D, request: 'find_dest' },
    { action: 'miss', label: E, request: 'find_endp' },
    { action: 'saved', label: E },
    { action: 'evicted', label: E, reason: 'expired' },
  ]);
  // The cache closed the expired connection: its remote end sees the end of the stream.
  expect(await secondEnded).toBe(true);
});

test('without observe, no observation events', async () => {
  const { server, path } = start();
  let events = 0;
  server.on('observation', () => events++);
  const cache = await client(path);
  await cache.findEndp(E);
  await cache.saveDest(30, D, Q, E);
  await sleep(50);
  expect(events).toBe(0);
});

test('statistics(): the interval counters so far, without resetting them', async () => {
  const { server, path } = start({ ttlLimitMs: 60_000 });
  const cache = await client(path);
  expect(server.statistics()).toEqual({
    destHits: 0,
    destMiss: 0,
    endpHits: 0,
    endpMiss: 0,
    maxDests: 0,
    maxEndps: 0,
    maxSessions: 0,
    evictedDead: 0,
    evictedLimit: 0,
  });
  for (const label of [E, E, 'smtp\n192.0.2.2\n25\n0\n']) {
    const { local } = await connectedPair('unix');
    await cache.saveEndp(30, label, P, local);
  }
  await cache.saveDest(30, D, Q, E);
  (await cache.findDest(D))?.socket.destroy();
  await cache.findDest('smtp\nnowhere.example\n');
  (await cache.findEndp(E))?.socket.destroy();
  await cache.findEndp('smtp\nnowhere\n25\n0\n');
  const expected = { destHits: 1, destMiss: 1, endpHits: 1, endpMiss: 1, maxDests: 1, maxEndps: 2, maxSessions: 3 };
  expect(server.statistics()).toMatchObject(expected);
  expect(server.statistics()).toMatchObject(expected);
});

test('close() closes every cached connection and every client before it resolves, and logs the statistics', async () => {
  const { server, path, records } = start({ ttlLimitMs: 60_000 });
  const cache = await client(path);
  const pairs = await Promise.all([connectedPair('unix'), connectedPair('tcp'), connectedPair('tcp')]);
  for (const [index, { local }] of pairs.entries()) await cache.saveEndp(30, `smtp\n192.0.2.${index}\n25\n0\n`, P, local);
  const ended = pairs.map(({ peer }) => sawEnd(peer, 3000));
  await server.close();
  expect(await Promise.all(ended)).toEqual([true, true, true]);
  await expect(cache.findEndp(E)).rejects.toMatchObject({ kind: 'closed' });
  expect(records.at(-1)).toBe('statistics: max simultaneous domains=0 addresses=3 connection=3');
  // close() is idempotent.
  await server.close();
});

test('listens on an inherited listening descriptor (as master(8) hands over fd 6)', async () => {
  const path = join(tempDirectory(), 'inherited');
  const server = ScacheServer.start({ listen: { fds: [listenUnix(path)] }, logger: createLogger([new MemoryTransport()]) });
  onClose(() => server.close());
  const cache = await client(path);
  expect(await cache.saveDest(30, D, Q, E)).toBe('ok');
  expect((await cache.status()).destinationsCount).toBe(1);
});

test("the logger option: the server's warnings and statistics go to the given winston logger", async () => {
  const { server, path, records } = start({ serviceName: 'embedded' });
  const cache = await client(path);
  await cache.findEndp(E);
  // A request our client never sends, to make the server warn.
  const { WireConnection } = await import('../../ts/native.js');
  const wire = WireConnection.connect(path);
  wire.write(Buffer.from('request\0foo\0\0'));
  expect(await waitFor(() => records.length > 0, 2000)).toBe(true);
  wire.close();
  expect(records).toEqual(['warning: unrecognized request: "foo", ignored']);
  server.logStatistics();
  expect(records.slice(1).filter((line) => line.startsWith('statistics: address'))).toEqual([
    'statistics: address lookup hits=0 miss=1 success=0%',
  ]);
});

/** A Node process that starts a server (and uses it), then has nothing else to do. */
function serveInChild(mode: 'unref' | 'ref') {
  const directory = tempDirectory();
  const script = join(directory, 'serve.mjs');
  const entry = pathToFileURL(join(REPO_ROOT, 'dist/index.js')).href;
  writeFileSync(
    script,
    `import { ScacheServer, ScacheClient } from ${JSON.stringify(entry)};\n` +
      `const path = ${JSON.stringify(join(directory, 'scache'))};\n` +
      `const server = ScacheServer.start({ listen: { path } });\n` +
      (mode === 'unref' ? 'server.unref();\n' : '') +
      // An idle client, never closed: it must not keep the process alive either.
      'const client = await ScacheClient.connect(path);\n' +
      `console.log('serving', await client.saveDest(5, 'D', 'Q', 'E'), (await client.status()).destinationsCount);\n`,
  );
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = track(spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  return { child, stdout: new LineCapture(child.stdout!), stderr: new LineCapture(child.stderr!) };
}

test('unref(): a process whose only work is a running server (and an idle client) exits on its own', async () => {
  expect(CLI).toBeTruthy(); // dist/ must be built (npm run build)
  const { child, stdout, stderr } = serveInChild('unref');
  let timer: NodeJS.Timeout | undefined;
  const tooLong = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 10_000)));
  const exit = await Promise.race([exited(child), tooLong]);
  clearTimeout(timer);
  expect({ exit, stderr: stderr.lines }).toEqual({ exit: { code: 0, signal: null }, stderr: [] });
  expect(stdout.lines).toEqual(['serving ok 1']);
});

test('by default a running server keeps its process alive', async () => {
  const { child, stdout } = serveInChild('ref');
  expect(await stdout.waitForLine(/^serving ok 1$/, 10_000)).toBeDefined();
  await sleep(1000);
  expect(running(child)).toBe(true);
  child.kill('SIGTERM');
  await exited(child);
});
