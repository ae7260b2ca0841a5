/**
 * Descriptor exhaustion and the caps on cached connections.
 *
 * - The server runs with a small RLIMIT_NOFILE (set with `ulimit -n` before node starts). Clients
 *   connect until it cannot accept any more: accept() keeps failing (EMFILE) on a 100 ms timer,
 *   which neither spins nor kills the process; a save whose descriptor the kernel cannot install
 *   gets status=2; when clients leave, the waiting client is accepted and saves work again.
 * - The default cap on cached connections is derived from RLIMIT_NOFILE (defaultConnectionLimit):
 *   past it the oldest connections are closed first, and counted in the statistics.
 * - Explicit global and per-endpoint caps, the same way.
 */
import { afterAll, expect, test } from '@jest/globals';
import { defaultConnectionLimit } from '../../ts/dispatcher/plan.js';
import { closeFd, socketpair, WireConnection } from '../../ts/native.js';
import { ANNOUNCEMENT, DUMMY, FAIL, findEndp, findEndpReply, OK, saveEndp, show, status } from '../support/attrs.js';
import { expectReply, findEndpoint, missEndpoint, saveEndpoint } from '../support/exchanges.js';
import { cleanup, newCached, newClient, newServer, owned } from '../support/harness.js';
import { killChildren, running } from '../support/processes.js';
import { removeTempDirectories } from '../support/temp.js';
import { now, sleep, waitFor } from '../support/time.js';
import { Client } from '../support/wire.js';
import { cpuPercentOver, figure, openFds, startServerProcess } from './support.js';
import { P } from '../support/labels.js';

afterAll(async () => {
  await cleanup();
  await killChildren();
  removeTempDirectories();
});

const endpoint = (i: number) => `smtp\n10.2.${(i >> 8) & 255}.${i & 255}\n25\n0\n`;

/** save_endp of a fresh socketpair end; returns the reply after the descriptor and the peer. */
function trySave(client: Client, label: string): { reply: string; peer: number } {
  const [cached, peer] = socketpair();
  client.send(saveEndp(60, label, P));
  expectReply(client, DUMMY);
  client.sendDescriptors([cached!]);
  closeFd(cached!);
  return { reply: show(client.read(10)), peer: peer! };
}

test('RLIMIT_NOFILE used up: accept() fails without spinning or dying, saves get status=2, service recovers', async () => {
  const NOFILE = 96;
  const server = await startServerProcess({ nofile: NOFILE });
  const baseline = openFds(server.pid);
  const keeper = Client.connect(server.path);
  // Connect until the server can accept no more: the kernel still queues the connection, but no
  // announcement comes.
  const greeted: WireConnection[] = [];
  let waiting: WireConnection | undefined;
  while (waiting === undefined && greeted.length < NOFILE) {
    const client = WireConnection.connect(server.path);
    if (client.read(ANNOUNCEMENT.length, 300).equals(ANNOUNCEMENT)) greeted.push(client);
    else waiting = client;
  }
  expect(waiting).toBeDefined();
  // Every descriptor number the limit allows is taken (an inherited one above it does not count).
  expect(openFds(server.pid, NOFILE)).toBe(NOFILE);

  // A save now: the kernel cannot install the descriptor in the server, which answers status=2.
  const failed = [0, 1, 2].map((i) => trySave(keeper, endpoint(i)));
  expect(failed.map((save) => save.reply)).toEqual(failed.map(() => show(status(FAIL))));
  failed.forEach((save) => closeFd(save.peer));
  expect(
    await server.waitForLine(/^warning: scache_save_endp_service: unable to receive file descriptor: descriptor discarded by the kernel \(MSG_CTRUNC\)$/),
  ).toBeDefined();

  // accept() keeps failing on its 100 ms timer: no busy loop, no exit.
  const acceptWarningsBefore = server.records().filter((line) => line.startsWith('warning: accept connection: Too many open files')).length;
  const cpu = await cpuPercentOver(server.pid, 1000);
  const acceptWarnings =
    server.records().filter((line) => line.startsWith('warning: accept connection: Too many open files')).length - acceptWarningsBefore;
  expect(cpu).toBeLessThan(5);
  expect(acceptWarnings).toBeGreaterThan(0);
  expect(acceptWarnings).toBeLessThanOrEqual(12);
  expect(running(server.child)).toBe(true);

  // Descriptors free up: the waiting client is accepted within a retry or two, and saves work.
  const freedAt = now();
  greeted.splice(0, 5).forEach((client) => client.close());
  expect(show(waiting!.read(ANNOUNCEMENT.length, 2000))).toBe(show(ANNOUNCEMENT));
  const recoveryMs = now() - freedAt;
  const recovered = Client.connect(server.path);
  const saved = trySave(recovered, endpoint(10));
  expect(saved.reply).toBe(show(status(OK)));
  recovered.send(findEndp(endpoint(10)));
  expectReply(recovered, findEndpReply(OK, P));
  recovered.send(DUMMY);
  const received = recovered.receiveDescriptor();
  recovered.send(DUMMY);
  expect(received.kind).toBe('descriptor');
  closeFd(received.fd!);
  closeFd(saved.peer);

  // Everyone leaves: back to where the server started.
  [...greeted, waiting!].forEach((client) => client.close());
  keeper.close();
  recovered.close();
  expect(await waitFor(() => openFds(server.pid) === baseline, 3000)).toBe(true);
  expect(await server.stop()).toEqual({ code: 0, signal: null });
  figure(
    'descriptor exhaustion',
    `RLIMIT_NOFILE ${NOFILE}: ${greeted.length + 5} clients accepted, then accept() failed (EMFILE) and was retried every 100 ms ` +
      `(${acceptWarnings} warnings in 1 s, CPU ${cpu.toFixed(1)}%); 3 saves answered status=2 (MSG_CTRUNC); after 5 clients ` +
      `left the waiting client was served within ${recoveryMs.toFixed(0)} ms and saves worked again`,
  );
}, 60_000);

test('the default cap, derived from RLIMIT_NOFILE, closes the oldest connections first and counts them', async () => {
  const NOFILE = 256;
  const cap = defaultConnectionLimit(NOFILE);
  const extra = 10;
  const server = await startServerProcess({ nofile: NOFILE });
  const client = Client.connect(server.path);
  const peers: WireConnection[] = [];
  for (let i = 0; i < cap + extra; i++) {
    const save = trySave(client, endpoint(i));
    expect(save.reply).toBe(show(status(OK)));
    peers.push(WireConnection.adopt(save.peer));
  }
  // The first `extra` were closed (their peers see end-of-file); every later one is still cached.
  const closed = peers.map((peer) => peer.waitClosed(0));
  expect(closed.slice(0, extra)).toEqual(Array(extra).fill(true));
  expect(closed.slice(extra)).toEqual(Array(cap).fill(false));
  missEndpoint(client, endpoint(0));
  client.close();
  expect(await server.stop()).toEqual({ code: 0, signal: null });
  expect(server.records()).toContain(`statistics: closed early dead_peer=0 over_limit=${extra}`);
  peers.forEach((peer) => peer.close());
  figure(
    'default connection cap',
    `RLIMIT_NOFILE ${NOFILE} gives a cap of ${cap} cached connections; saving ${cap + extra} closed the ${extra} oldest, ` +
      `logged as "statistics: closed early dead_peer=0 over_limit=${extra}"`,
  );
}, 60_000);

test('explicit caps, global and per endpoint: oldest first, counted in the statistics', async () => {
  const server = newServer({ connectionLimit: 5, endpointConnectionLimit: 3 });
  const client = newClient(server.path);
  const [e1, e2] = ['smtp\n192.0.2.1\n25\n0\n', 'smtp\n192.0.2.2\n25\n0\n'];
  const first = [0, 1, 2, 3, 4].map(() => newCached());
  first.forEach((cached) => saveEndpoint(client, e1, P, cached));
  // Three per endpoint: the two oldest of e1 went.
  expect(await first[0]!.eofWithin(1000)).toBeDefined();
  expect(await first[1]!.eofWithin(1000)).toBeDefined();
  const second = [0, 1, 2].map(() => newCached());
  second.forEach((cached) => saveEndpoint(client, e2, P, cached));
  // Five in all: the oldest overall (e1's third) went.
  expect(await first[2]!.eofWithin(1000)).toBeDefined();
  for (const cached of [first[3]!, first[4]!, ...second]) expect(await cached.eofWithin(50)).toBeUndefined();
  // What is left comes out oldest first.
  const found = owned(findEndpoint(client, e1, P));
  expect(found.fd).toBeGreaterThan(0);
  expect(server.server.statistics()).toMatchObject({ evictedLimit: 3, evictedDead: 0 });
  server.server.logStatistics();
  expect(server.records).toContain('statistics: closed early dead_peer=0 over_limit=3');
  await sleep(10);
});
