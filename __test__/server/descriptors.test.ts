/**
 * Descriptor bookkeeping of our server, embedded in this process so that its descriptors are
 * ours to count (/proc/self/fd via openDescriptorCount): nothing leaks, whatever the client does,
 * and stopping the server closes everything it held. The tests in this file run one at a time.
 */
import { afterAll, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { openDescriptorCount } from '../../ts/native.js';
import { DUMMY, FAIL, findEndp, findEndpReply, OK, saveEndp, status } from '../support/attrs.js';
import { expectReply, findEndpoint, missEndpoint, saveEndpoint } from '../support/exchanges.js';
import { cleanup, expectRecords, newCached, newClient, newServer, owned } from '../support/harness.js';
import { removeTempDirectories } from '../support/temp.js';
import { waitFor } from '../support/time.js';
import { E, P } from '../support/labels.js';

afterAll(async () => {
  await cleanup();
  removeTempDirectories();
});


/** Waits until this process has `count` descriptors open; returns the last count seen. */
async function settlesAt(count: number): Promise<number> {
  let seen = openDescriptorCount();
  await waitFor(() => (seen = openDescriptorCount()) === count, 2000);
  return seen;
}

test('two descriptors in one message are both closed: no descriptor leaks (Postfix leaks them: Q2)', async () => {
  const server = newServer();
  const client = newClient(server.path);
  const baseline = openDescriptorCount();
  const [a, b] = [newCached(), newCached()];
  client.send(saveEndp(2, E, P));
  expectReply(client, DUMMY);
  client.sendDescriptors([a.fd, b.fd]);
  a.release();
  b.release();
  expectReply(client, status(FAIL));
  expect(await a.eofWithin(1000)).toBeDefined();
  expect(await b.eofWithin(1000)).toBeDefined();
  await expectRecords(server, ['warning: scache_save_endp_service: unable to receive file descriptor: message carried 2 descriptors']);
  // The peers close themselves at end-of-file: back at the baseline, so the server kept neither descriptor.
  a.destroy();
  b.destroy();
  expect(await settlesAt(baseline)).toBe(baseline);
  // The failed save left nothing cached, and the connection still serves requests.
  missEndpoint(client, E);
  client.close();
  await server.stop();
});

test('a byte without descriptor, a client gone before its descriptor, a client gone before its dummy: nothing leaks', async () => {
  const server = newServer();
  const keeper = newClient(server.path);
  const baseline = openDescriptorCount();

  const plain = newClient(server.path);
  plain.send(saveEndp(2, E, P));
  expectReply(plain, DUMMY);
  plain.send(Buffer.of(0));
  expectReply(plain, status(FAIL));
  plain.close();

  const quitter = newClient(server.path);
  quitter.send(saveEndp(2, E, P));
  expectReply(quitter, DUMMY);
  quitter.close();

  const cached = newCached();
  saveEndpoint(keeper, E, P, cached);
  const impatient = newClient(server.path);
  impatient.send(findEndp(E));
  expectReply(impatient, findEndpReply(OK, P));
  impatient.close();
  expect(await cached.eofWithin(1000)).toBeDefined();
  cached.destroy();

  missEndpoint(keeper, E);
  expect(await settlesAt(baseline)).toBe(baseline);
  await expectRecords(server, [
    'warning: scache_save_endp_service: unable to receive file descriptor: message carried no descriptor',
    'warning: scache_save_endp_service: unable to receive file descriptor: end of input',
    'warning: scache_find_endp_service: cannot send file descriptor: end of input',
  ]);
  keeper.close();
  await server.stop();
});

test('saved, found, expired: the server keeps exactly the descriptors it caches, and closes them', async () => {
  const server = newServer({ ttlLimitMs: 1000 });
  const client = newClient(server.path);
  const baseline = openDescriptorCount();
  const connections = [newCached(), newCached(), newCached()];
  for (const cached of connections) saveEndpoint(client, E, P, cached, 1);
  // Three peers here, three cached ends in the server.
  expect(openDescriptorCount()).toBe(baseline + 6);
  const found = owned(findEndpoint(client, E, P));
  // Moved from the server to us (the server drops its copy once sent, on its own thread).
  expect(await settlesAt(baseline + 6)).toBe(baseline + 6);
  found.close();
  expect(await connections[0]!.eofWithin(1000)).toBeDefined();
  // The other two expire (ttl 1 s) and are closed.
  expect(await connections[1]!.eofWithin(2500)).toBeDefined();
  expect(await connections[2]!.eofWithin(1000)).toBeDefined();
  // Each peer closes itself at end-of-file; the server holds nothing more.
  for (const cached of connections) cached.destroy();
  expect(await settlesAt(baseline)).toBe(baseline);
  client.close();
  await server.stop();
});

test('stopping the server closes every cached connection and client, and removes its socket', async () => {
  const before = openDescriptorCount();
  const server = newServer();
  const client = newClient(server.path);
  const idle = newClient(server.path);
  const connections = [newCached(), newCached()];
  for (const cached of connections) saveEndpoint(client, E, P, cached, 100);
  expect(existsSync(server.path)).toBe(true);
  await server.stop();
  expect(existsSync(server.path)).toBe(false);
  for (const cached of connections) expect(await cached.eofWithin(1000)).toBeDefined();
  expect(await client.closedWithin(1000)).toBe(true);
  expect(await idle.closedWithin(1000)).toBe(true);
  client.close();
  idle.close();
  for (const cached of connections) cached.destroy();
  expect(await settlesAt(before)).toBe(before);
});
