/**
 * ScacheClient against OUR server (embedded) and the REAL Postfix scache(8), with real connections:
 * a UNIX-domain or TCP connection is saved, found again, and bytes written at its remote end arrive
 * through the found socket (and back). Then the errors: absent sockets, servers that time out, lie,
 * or vanish, unusable sockets, close() in the middle of a request.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { ScacheClient, ScacheClientError, type ScacheClientErrorKind } from '../../ts/index.js';
import { openDescriptorCount, sameSocket, streamSocketProblem } from '../../ts/native.js';
import { killChildren } from '../support/processes.js';
import { startEmbedded, startPostfixScache, type ServerUnderTest } from '../support/servers.js';
import { removeTempDirectories } from '../support/temp.js';
import { now, sleep, waitFor } from '../support/time.js';
import { ANNOUNCEMENT, closeAll, connectedPair, fakeServer, onClose, receive, sawEnd, type Transport } from './helpers.js';
import { E, E2, D } from '../support/labels.js';

afterAll(async () => {
  await closeAll();
  await killChildren();
  removeTempDirectories();
});

const P = 'tls_level=0\nreuse_count=0\nendpoint_features=2129935\n';
const Q = 'destination=example.com\nhost_name=mx.example.com\n';

async function rejection(promise: Promise<unknown>): Promise<ScacheClientError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ScacheClientError);
    return error as ScacheClientError;
  }
  throw new Error('expected a rejection');
}

async function expectFailure(promise: Promise<unknown>, kind: ScacheClientErrorKind, text?: RegExp): Promise<ScacheClientError> {
  const error = await rejection(promise);
  expect(error.kind).toBe(kind);
  if (text) expect(error.message).toMatch(text);
  return error;
}

async function client(path: string, timeoutMs?: number): Promise<ScacheClient> {
  const connected = await ScacheClient.connect(path, timeoutMs ? { timeoutMs } : {});
  onClose(() => connected.close());
  return connected;
}

const SERVERS: Array<[string, () => ServerUnderTest]> = [
  ['our server', () => startEmbedded({ ttlLimitMs: 60_000 })],
  ['Postfix scache', () => startPostfixScache({ connection_cache_ttl_limit: '60s' })],
];

describe.each(SERVERS)('against %s', (_name, start) => {
  const servers: ServerUnderTest[] = [];
  afterAll(async () => {
    for (const server of servers) await server.stop();
  });
  function server(): ServerUnderTest {
    const started = start();
    servers.push(started);
    return started;
  }

  test.each<Transport>(['unix', 'tcp'])('saveEndp then findEndp moves a %s connection: bytes cross it both ways', async (transport) => {
    const cache = await client(server().path);
    const { local, peer } = await connectedPair(transport);
    expect(await cache.saveEndp(30, E, P, local)).toBe('ok');
    // Handed over: our socket is destroyed, the connection lives on in the cache.
    expect(local.destroyed).toBe(true);
    const found = await cache.findEndp(E);
    expect(found).not.toBeNull();
    onClose(() => found!.socket.destroy());
    expect(found!.property).toBe(P);
    peer.write('220 from the remote end\r\n');
    expect(await receive(found!.socket, 25)).toBe('220 from the remote end\r\n');
    found!.socket.write('QUIT\r\n');
    expect(await receive(peer, 6)).toBe('QUIT\r\n');
    if (transport === 'tcp') expect(found!.socket.remotePort).toBe(peer.localPort);
    // Taken out: the next lookup misses.
    expect(await cache.findEndp(E)).toBeNull();
  });

  test('saveDest binds a destination; findDest returns the connection with both properties', async () => {
    const cache = await client(server().path);
    const { local, peer } = await connectedPair('tcp');
    expect(await cache.saveDest(30, D, Q, E2)).toBe('ok');
    expect(await cache.saveEndp(30, E2, P, local)).toBe('ok');
    const found = await cache.findDest(D);
    expect(found).not.toBeNull();
    onClose(() => found!.socket.destroy());
    expect(found!.destProperty).toBe(Q);
    expect(found!.endpProperty).toBe(P);
    peer.write('250 ok\r\n');
    expect(await receive(found!.socket, 8)).toBe('250 ok\r\n');
    expect(await cache.findDest(D)).toBeNull();
    expect(await cache.findEndp(E2)).toBeNull();
  });

  test('misses are null: an unknown endpoint or destination, a destination whose endpoint has no connection', async () => {
    const cache = await client(server().path);
    expect(await cache.findEndp('smtp\nnowhere\n25\n0\n')).toBeNull();
    expect(await cache.findDest('smtp\nnowhere.example\n')).toBeNull();
    expect(await cache.saveDest(30, D, Q, 'smtp\n192.0.2.99\n25\n0\n')).toBe('ok');
    expect(await cache.findDest(D)).toBeNull();
  });

  test('a connection saved through one client is found through another; labels may be bytes', async () => {
    const path = server().path;
    const [saver, finder] = [await client(path), await client(path)];
    const label = Buffer.from([0x73, 0x6d, 0x74, 0x70, 0x0a, 0xff, 0xfe, 0x0a]);
    const { local, peer } = await connectedPair('unix');
    expect(await saver.saveEndp(30, label, 'p\n', local, { keepSocket: true })).toBe('ok');
    expect(local.destroyed).toBe(false);
    const found = await finder.findEndp(label);
    expect(found).not.toBeNull();
    onClose(() => found!.socket.destroy());
    // Two descriptors, one connection: ours (kept) and the one that went through the cache.
    expect(sameSocket((local as unknown as { _handle: { fd: number } })._handle.fd, (found!.socket as unknown as { _handle: { fd: number } })._handle.fd)).toBe(true);
    local.destroy();
    peer.write('x');
    expect(await receive(found!.socket, 1)).toBe('x');
  });

  test('concurrent calls on one client are queued and answered in call order', async () => {
    const cache = await client(server().path);
    const pairs = await Promise.all([connectedPair('unix'), connectedPair('unix'), connectedPair('tcp')]);
    const results = await Promise.all([
      cache.findEndp(E),
      ...pairs.map(({ local }, index) => cache.saveEndp(30, E, `n=${index}\n`, local)),
      cache.saveDest(30, D, Q, E),
      cache.findEndp(E),
      cache.findDest(D),
      cache.findEndp(E),
      cache.findEndp(E),
    ]);
    expect(results.slice(0, 5)).toEqual([null, 'ok', 'ok', 'ok', 'ok']);
    const found = results.slice(5, 8) as Array<{ socket: net.Socket; property?: string; endpProperty?: string } | null>;
    for (const hit of found) onClose(() => hit?.socket.destroy());
    const properties = found.map((hit) => hit?.property ?? hit?.endpProperty);
    expect(properties.sort()).toEqual(['n=0\n', 'n=1\n', 'n=2\n']);
    expect(results[8]).toBeNull();
    // Each found socket is the connection whose peer claims it.
    for (const [index, { peer }] of pairs.entries()) peer.write(`peer ${index}`);
    for (const hit of found) {
      const index = Number((hit!.property ?? hit!.endpProperty)!.slice(2, 3));
      expect(await receive(hit!.socket, 6)).toBe(`peer ${index}`);
    }
  });

  test('found connections and saved copies leave no descriptor behind in this process', async () => {
    const cache = await client(server().path);
    const { local, peer } = await connectedPair('tcp');
    // Settle the descriptors the first requests open (libuv's thread pool, the client's socket).
    await cache.findEndp(E);
    const before = openDescriptorCount();
    const cycle = async () => {
      const { local, peer } = await connectedPair('tcp');
      expect(await cache.saveEndp(30, E, P, local)).toBe('ok');
      const found = await cache.findEndp(E);
      found!.socket.destroy();
      peer.destroy();
    };
    for (let i = 0; i < 5; i++) await cycle();
    expect(await waitFor(() => openDescriptorCount() <= before, 2000)).toBe(true);
    local.destroy();
    peer.destroy();
  });

  test('a cached connection whose peer hung up: Postfix hands it out (and the found socket sees the end), ours drops it', async () => {
    const cache = await client(server().path);
    const { local, peer } = await connectedPair('unix');
    expect(await cache.saveEndp(30, E2, P, local)).toBe('ok');
    peer.destroy();
    await sleep(100);
    const found = await cache.findEndp(E2);
    if (_name === 'Postfix scache') {
      expect(found).not.toBeNull();
      onClose(() => found!.socket.destroy());
      expect(await sawEnd(found!.socket)).toBe(true);
    } else {
      expect(found).toBeNull();
    }
  });
});

describe('status()', () => {
  test('our server: counts, destinations with bindings, endpoints with connections, ages and ttls', async () => {
    const server = startEmbedded({ ttlLimitMs: 60_000 });
    onClose(() => server.stop());
    const cache = await client(server.path);
    const first = await connectedPair('tcp');
    const second = await connectedPair('unix');
    const started = now();
    await cache.saveEndp(30, E, 'reuse_count=0\n', first.local);
    await cache.saveEndp(120, E, 'reuse_count=1\n', second.local);
    await cache.saveDest(20, D, Q, E);
    const status = await cache.status();
    const elapsed = now() - started;
    expect(status).toMatchObject({ destinationsCount: 1, endpointsCount: 1, connectionsCount: 2 });
    expect(status.destinations).toEqual([{ label: D, bindings: [{ endpoint: E, property: Q, ttlMs: expect.any(Number) }] }]);
    expect(status.destinations[0]!.bindings[0]!.ttlMs).toBeGreaterThan(20_000 - elapsed - 50);
    expect(status.destinations[0]!.bindings[0]!.ttlMs).toBeLessThanOrEqual(20_000);
    expect(status.endpoints).toHaveLength(1);
    const [a, b] = status.endpoints[0]!.connections;
    expect(status.endpoints[0]!.label).toBe(E);
    expect([a!.property, b!.property]).toEqual(['reuse_count=0\n', 'reuse_count=1\n']);
    expect(a!.ageMs).toBeGreaterThanOrEqual(b!.ageMs);
    expect(a!.ageMs).toBeLessThanOrEqual(elapsed + 50);
    expect(a!.ttlMs).toBeLessThanOrEqual(30_000);
    expect(b!.ttlMs).toBeGreaterThan(60_000 - elapsed - 50); // 120 s clamped to the 60 s limit
    expect(b!.ttlMs).toBeLessThanOrEqual(60_000);
  });

  test('limit bounds the lists, not the counts', async () => {
    const server = startEmbedded({ ttlLimitMs: 60_000 });
    onClose(() => server.stop());
    const cache = await client(server.path);
    for (let i = 0; i < 4; i++) {
      const { local } = await connectedPair('unix');
      await cache.saveEndp(30, `smtp\n192.0.2.${i}\n25\n0\n`, P, local);
      await cache.saveDest(30, `smtp\nd${i}.example\n`, Q, E);
    }
    const status = await cache.status(2);
    expect(status.endpoints).toHaveLength(2);
    expect(status.destinations).toHaveLength(2);
    expect(status).toMatchObject({ destinationsCount: 4, endpointsCount: 4, connectionsCount: 4 });
    expect((await cache.status(0)).endpoints).toEqual([]);
    await expect(cache.status(-1)).rejects.toThrow(RangeError);
  });

  test("Postfix's scache: a clear 'unsupported' error, and the connection still serves the four requests", async () => {
    const postfix = startPostfixScache({ connection_cache_ttl_limit: '60s' });
    onClose(() => postfix.stop());
    const cache = await client(postfix.path);
    await expectFailure(cache.status(), 'unsupported', /not postfix-scache.*status=1/);
    const { local, peer } = await connectedPair('tcp');
    expect(await cache.saveEndp(30, E, P, local)).toBe('ok');
    const found = await cache.findEndp(E);
    onClose(() => found?.socket.destroy());
    peer.write('ok');
    expect(await receive(found!.socket, 2)).toBe('ok');
  });
});

describe('errors', () => {
  test('no socket at the path: kind connect, naming the path', async () => {
    const error = await expectFailure(ScacheClient.connect('/nonexistent/scache'), 'connect', /No such file or directory/);
    expect(error.path).toBe('/nonexistent/scache');
    expect(error.message).toBe('connect (/nonexistent/scache): No such file or directory');
  });

  test('a server with a different announcement: kind protocol', async () => {
    const path = await fakeServer((socket) => socket.write('protocol\0something_else\0\0'));
    await expectFailure(ScacheClient.connect(path), 'protocol', /unexpected protocol something_else/);
  });

  test('a server that never announces: kind timeout, after timeoutMs', async () => {
    const path = await fakeServer(() => {});
    const started = now();
    await expectFailure(ScacheClient.connect(path, { timeoutMs: 200 }), 'timeout');
    expect(now() - started).toBeGreaterThanOrEqual(190);
    expect(now() - started).toBeLessThan(2000);
  });

  test('a server that stops answering mid-session: kind timeout; the client is closed after it', async () => {
    const path = await fakeServer((socket) => socket.write(ANNOUNCEMENT));
    const cache = await client(path, 200);
    await expectFailure(cache.findEndp(E), 'timeout', /timed out/);
    await expectFailure(cache.findEndp(E), 'closed', /earlier failure: timed out/);
  });

  test('a server that vanishes: kind closed, for this request and the next', async () => {
    const path = await fakeServer((socket) => {
      socket.write(ANNOUNCEMENT);
      socket.once('data', () => socket.destroy());
    });
    const cache = await client(path);
    await expectFailure(cache.saveDest(30, D, Q, E), 'closed', /closed the connection/);
    await expectFailure(cache.findDest(D), 'closed');
  });

  test('our server closing while a client is connected: kind closed', async () => {
    const server = startEmbedded();
    const cache = await client(server.path);
    expect(await cache.findEndp(E)).toBeNull();
    await server.stop();
    await expectFailure(cache.findEndp(E), 'closed');
  });

  test('malformed replies and a hit without a descriptor: kind protocol', async () => {
    const garbage = await fakeServer((socket) => {
      socket.write(ANNOUNCEMENT);
      socket.once('data', () => socket.write('nonsense\0x\0\0'));
    });
    await expectFailure((await client(garbage)).findEndp(E), 'protocol', /malformed reply/);

    const noDescriptor = await fakeServer((socket) => {
      socket.write(ANNOUNCEMENT);
      socket.once('data', () => {
        socket.write('status\x000\0property\0p\0\0');
        socket.once('data', () => socket.write('\0')); // after the dummy: a byte, but no descriptor
      });
    });
    await expectFailure((await client(noDescriptor)).findEndp(E), 'protocol', /expected one descriptor/);

    const unknownStatus = await fakeServer((socket) => {
      socket.write(ANNOUNCEMENT);
      socket.once('data', () => socket.write('status\x007\0\0'));
    });
    await expectFailure((await client(unknownStatus)).saveDest(30, D, Q, E), 'protocol', /unknown status 7/);
  });

  test("a save refused before the descriptor: status 'bad', and the socket is left open", async () => {
    const path = await fakeServer((socket) => {
      socket.write(ANNOUNCEMENT);
      socket.once('data', () => socket.write('status\x001\0\0'));
    });
    const { local } = await connectedPair('unix');
    expect(await (await client(path)).saveEndp(30, E, P, local)).toBe('bad');
    expect(local.destroyed).toBe(false);
  });

  test('sockets that cannot be cached: kind invalid_socket, with the reason', async () => {
    const server = startEmbedded();
    onClose(() => server.stop());
    const cache = await client(server.path);
    await expectFailure(cache.saveEndp(30, E, P, new net.Socket()), 'invalid_socket', /no descriptor/);
    const { local } = await connectedPair('tcp');
    local.destroy();
    await expectFailure(cache.saveEndp(30, E, P, local), 'invalid_socket', /destroyed/);
    const connecting = net.connect(1, '192.0.2.1');
    connecting.on('error', () => {});
    onClose(() => connecting.destroy());
    await expectFailure(cache.saveEndp(30, E, P, connecting), 'invalid_socket', /still connecting/);
    // The descriptor checks themselves.
    const file = openSync('/dev/null', 'r');
    expect(streamSocketProblem(file)).toMatch(/is not a socket/);
    closeSync(file);
    expect(streamSocketProblem(-1)).toMatch(/no descriptor/);
    // None of that broke the connection.
    expect(await cache.findEndp(E)).toBeNull();
  });

  test('ttls are whole seconds from 1 (Postfix panics on ttl <= 0): RangeError, nothing sent', async () => {
    const server = startEmbedded();
    onClose(() => server.stop());
    const cache = await client(server.path);
    const { local } = await connectedPair('unix');
    await expect(cache.saveEndp(0, E, P, local)).rejects.toThrow(RangeError);
    await expect(cache.saveEndp(1.5, E, P, local)).rejects.toThrow(RangeError);
    await expect(cache.saveDest(-1, D, Q, E)).rejects.toThrow(/ttlSeconds must be an integer from 1/);
    expect(local.destroyed).toBe(false);
    expect(await cache.findEndp(E)).toBeNull();
  });

  test('close() ends the request in progress and the queued ones at once, with kind closed', async () => {
    const path = await fakeServer((socket) => socket.write(ANNOUNCEMENT)); // then never answers
    const cache = await client(path, 30_000);
    const started = now();
    const inProgress = cache.findEndp(E);
    const queued = cache.findDest(D);
    setTimeout(() => cache.close(), 50);
    await expectFailure(inProgress, 'closed');
    await expectFailure(queued, 'closed', /the client was closed/);
    await expectFailure(cache.status(), 'closed');
    expect(now() - started).toBeLessThan(2000);
    expect(cache.closed).toBe(true);
  });
});
