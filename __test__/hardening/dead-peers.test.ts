/**
 * Dead peers: a cached connection whose remote end closes (FIN) or resets (RST) is closed by the
 * server at once and never handed out; a live connection of the same endpoint still is. Counted in
 * the statistics; with evictDeadPeers off (postfix_scache_evict_dead_peers = no), Postfix's
 * behaviour: the dead connection is handed out. TCP connections stand for real SMTP sessions.
 */
import { afterAll, expect, test } from '@jest/globals';
import net from 'node:net';
import { DUMMY, findEndpReply, findEndp, OK } from '../support/attrs.js';
import { expectReply, missEndpoint, saveEndpoint } from '../support/exchanges.js';
import { cleanup, newCached, newClient, newServer, onCleanup } from '../support/harness.js';
import { removeTempDirectories } from '../support/temp.js';
import { now, sleep, waitFor } from '../support/time.js';
import { WireConnection } from '../../ts/native.js';
import { figure } from './support.js';
import type { Client } from '../support/wire.js';
import { E } from '../support/labels.js';

afterAll(async () => {
  await cleanup();
  removeTempDirectories();
});


/** A TCP connection over loopback: `fd` is the client end (what smtp(8) would cache), `remote` the server's. */
interface TcpPair {
  fd: number;
  client: net.Socket;
  remote: net.Socket;
}

async function tcpPairs(count: number): Promise<TcpPair[]> {
  const remotes: net.Socket[] = [];
  const listener = net.createServer((socket) => {
    socket.on('error', () => {});
    remotes.push(socket);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const pairs: TcpPair[] = [];
  for (let i = 0; i < count; i++) {
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    await new Promise((resolve) => client.once('connect', resolve));
    // Node owns the socket; the server gets a duplicate through SCM_RIGHTS.
    const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
    pairs.push({ fd, client, remote: undefined as unknown as net.Socket });
  }
  await waitFor(() => remotes.length === count, 2000);
  // Accept order is connect order on loopback; match by port to be sure.
  for (const pair of pairs) pair.remote = remotes.find((remote) => remote.remotePort === pair.client.localPort)!;
  listener.close();
  onCleanup(() => pairs.forEach((pair) => (pair.client.destroy(), pair.remote.destroy())));
  return pairs;
}

/** save_endp of a TCP client end; our own copy is then closed (smtp(8) does the same). */
function saveTcp(client: Client, pair: TcpPair, property: string): void {
  client.send(Buffer.from(`request\0save_endp\0ttl\x0060\0label\0${E}\0property\0${property}\0\0`, 'latin1'));
  expectReply(client, DUMMY);
  client.sendDescriptors([pair.fd]);
  pair.client.destroy();
  expectReply(client, Buffer.from(`status\x000\0\0`, 'latin1'));
}

/** find_endp hit with `property`; returns the received descriptor as a connection. */
function take(client: Client, property: string): WireConnection {
  client.send(findEndp(E));
  expectReply(client, findEndpReply(OK, property));
  client.send(DUMMY);
  const received = client.receiveDescriptor();
  client.send(DUMMY);
  expect(received.kind).toBe('descriptor');
  const connection = WireConnection.adopt(received.fd!);
  onCleanup(() => connection.close());
  return connection;
}

test('closed and reset peers are evicted at once; the live connection of the same endpoint is handed out', async () => {
  const server = newServer({ ttlLimitMs: 60_000 });
  const client = newClient(server.path);
  const [closing, resetting, live] = await tcpPairs(3);
  saveTcp(client, closing!, 'closing\n');
  saveTcp(client, resetting!, 'resetting\n');
  saveTcp(client, live!, 'live\n');
  // The remote SMTP server closes one connection and resets another.
  const hungUpAt = now();
  closing!.remote.end();
  resetting!.remote.resetAndDestroy();
  expect(await waitFor(() => server.server.statistics().evictedDead === 2, 2000)).toBe(true);
  const evictionMs = now() - hungUpAt;
  // The oldest two are gone: the live one, saved last, is what find_endp hands out.
  const connection = take(client, 'live\n');
  live!.remote.write('220 still here\r\n');
  expect(connection.read(16, 2000).toString()).toBe('220 still here\r\n');
  missEndpoint(client, E);
  server.server.logStatistics();
  expect(server.records).toContain('statistics: closed early dead_peer=2 over_limit=0');
  figure(
    'dead peers',
    `a closed (FIN) and a reset (RST) TCP peer among 3 cached connections of one endpoint: both closed within ` +
      `${evictionMs.toFixed(0)} ms and counted (dead_peer=2); find_endp handed out the live one, then missed`,
  );
});

test('a unix-socket peer that hangs up is evicted too; a connection saved after it is not affected', async () => {
  const server = newServer({ ttlLimitMs: 60_000 });
  const client = newClient(server.path);
  const [dead, live] = [newCached(), newCached()];
  saveEndpoint(client, E, 'dead\n', dead, 60);
  dead.destroy();
  expect(await waitFor(() => server.server.statistics().evictedDead === 1, 2000)).toBe(true);
  saveEndpoint(client, E, 'live\n', live, 60);
  take(client, 'live\n');
  expect(await live.eofWithin(100)).toBeUndefined();
});

test('evictDeadPeers off (postfix_scache_evict_dead_peers = no): Postfix\'s behaviour, the dead one is handed out', async () => {
  const server = newServer({ ttlLimitMs: 60_000, evictDeadPeers: false });
  const client = newClient(server.path);
  const [closing, live] = await tcpPairs(2);
  saveTcp(client, closing!, 'closing\n');
  saveTcp(client, live!, 'live\n');
  closing!.remote.end();
  await sleep(200);
  expect(server.server.statistics().evictedDead).toBe(0);
  // FIFO, dead or not: the closed connection comes first, and reads end-of-file.
  const stale = take(client, 'closing\n');
  expect(stale.waitClosed(2000)).toBe(true);
  take(client, 'live\n');
});
