/**
 * Clients that disconnect in the middle of things: our server must notice every end-of-file, log
 * what Postfix logs for it, and close the connection (spec §2.4, §10). Many clients connect first,
 * then each writes and closes at once: the server, busy with the others, finds the data and the
 * end-of-file of most of them queued together when it gets to them.
 */
import { afterAll, expect, test } from '@jest/globals';
import { openDescriptorCount } from '../../ts/native.js';
import { attrs } from '../support/attrs.js';
import { missEndpoint } from '../support/exchanges.js';
import { cleanup, newClient, newServer } from '../support/harness.js';
import { removeTempDirectories } from '../support/temp.js';
import { waitFor } from '../support/time.js';
import { Client } from '../support/wire.js';

afterAll(async () => {
  await cleanup();
  removeTempDirectories();
});

const CLIENTS = 40;

/** Connects `CLIENTS` clients (each reads its announcement), then each writes `data` and closes. */
function writeAndCloseAll(path: string, data: Parameters<Client['send']>[0]): void {
  const clients = Array.from({ length: CLIENTS }, () => Client.connect(path));
  for (const client of clients) {
    client.send(data);
    client.close();
  }
}

test('clients that send part of a request and close at once: each gets its warnings, and each connection is closed', async () => {
  const server = newServer();
  writeAndCloseAll(server.path, 'request\x00save_endp\x00ttl\x002\x00label\x00smtp\n19');
  await waitFor(() => server.records.length >= 2 * CLIENTS && server.server.clients === 0, 3000);
  expect({ records: [...server.records], connected: server.server.clients }).toEqual({
    records: Array.from({ length: CLIENTS }, () => [
      'warning: unexpected end-of-input from scache socket while reading input attribute value',
      'warning: scache_save_endp_service: bad or missing request parameter',
    ]).flat(),
    connected: 0,
  });
  missEndpoint(newClient(server.path), 'x');
});

test('clients that send a request needing no reply and close at once: no connection is left open', async () => {
  const server = newServer();
  const keeper = newClient(server.path);
  const baseline = openDescriptorCount();
  writeAndCloseAll(server.path, attrs(['foo', 'bar']));
  await waitFor(() => server.records.length >= 3 * CLIENTS && openDescriptorCount() === baseline, 3000);
  expect(server.records).toHaveLength(3 * CLIENTS);
  // Every accepted socket was closed again: nothing leaked in this process (the server is embedded).
  expect(openDescriptorCount()).toBe(baseline);
  expect(server.server.clients).toBe(1);
  missEndpoint(keeper, 'x');
});
