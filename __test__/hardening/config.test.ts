/**
 * Our own main.cf parameters (postfix_scache_*): defaults, main.cf and `-o`, Postfix's bounds and
 * fatal texts, and the daemon passing them to the server (started as master(8) starts it).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinDefaults, parameterSpec, READ_ORDER } from '../../ts/config/index.js';
import { configErrorOf, identity, load, removeConfigDirectories } from '../config/helpers.js';
import { closeFd } from '../../ts/native.js';
import { DUMMY, FAIL, findEndp, findEndpReply, OK, saveEndp, show, status } from '../support/attrs.js';
import { exited, killChildren } from '../support/processes.js';
import { CLI, startOursUnderMaster } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { sleep } from '../support/time.js';
import { CachedConnection, Client } from '../support/wire.js';
import { E, P } from '../support/labels.js';

afterAll(async () => {
  await killChildren();
  removeConfigDirectories();
  removeTempDirectories();
});


describe('postfix_scache_* in main.cf and -o', () => {
  test('defaults: limits derived (0), dead peers evicted, 64 KiB attributes', () => {
    expect(builtinDefaults({ ...identity, env: {} }).postfixScache).toEqual({
      connectionLimit: 0,
      endpointConnectionLimit: 0,
      evictDeadPeers: true,
      maxAttributeLength: 65536,
    });
    expect(load('').postfixScache).toEqual(builtinDefaults({ ...identity, env: {} }).postfixScache);
  });

  test('values from main.cf, with $name expansion; -o wins over main.cf', () => {
    const config = load(
      'cap = 500\npostfix_scache_connection_limit = $cap\npostfix_scache_endpoint_connection_limit = 20\n' +
        'postfix_scache_evict_dead_peers = NO\npostfix_scache_max_attribute_length = 4096\n',
      { overrides: ['postfix_scache_endpoint_connection_limit=5'] },
    );
    expect(config.postfixScache).toEqual({
      connectionLimit: 500,
      endpointConnectionLimit: 5,
      evictDeadPeers: false,
      maxAttributeLength: 4096,
    });
    // Unset ones are materialised like Postfix's ints and bools, so `$name` sees the default.
    expect(load('').lookup('postfix_scache_max_attribute_length')).toBe('65536');
    expect(load('').lookup('postfix_scache_evict_dead_peers')).toBe('yes');
  });

  test.each([
    ['postfix_scache_connection_limit = -1', 'invalid postfix_scache_connection_limit parameter value -1 < 0'],
    ['postfix_scache_endpoint_connection_limit = -3', 'invalid postfix_scache_endpoint_connection_limit parameter value -3 < 0'],
    ['postfix_scache_connection_limit = 10k', 'bad numerical configuration: postfix_scache_connection_limit = 10k'],
    ['postfix_scache_connection_limit = 99999999999', 'bad numerical configuration: postfix_scache_connection_limit = 99999999999'],
    ['postfix_scache_max_attribute_length = 100', 'invalid postfix_scache_max_attribute_length parameter value 100 < 1024'],
    ['postfix_scache_max_attribute_length = 67108864', 'invalid postfix_scache_max_attribute_length parameter value 67108864 > 16777216'],
    ['postfix_scache_evict_dead_peers = maybe', 'bad boolean configuration: postfix_scache_evict_dead_peers = maybe'],
  ])('%s is fatal: %s', (line, fatal) => {
    expect(configErrorOf(() => load(`${line}\n`)).message).toBe(fatal);
  });

  test('bounds are inclusive, booleans are case-insensitive', () => {
    expect(load('postfix_scache_max_attribute_length = 1024\n').postfixScache.maxAttributeLength).toBe(1024);
    expect(load('postfix_scache_max_attribute_length = 16777216\n').postfixScache.maxAttributeLength).toBe(16777216);
    expect(load('postfix_scache_evict_dead_peers = Yes\n').postfixScache.evictDeadPeers).toBe(true);
  });

  test('the table knows them; the stock read order does not (Postfix never reads them)', () => {
    expect(parameterSpec('postfix_scache_connection_limit')).toMatchObject({ kind: 'int', defaultValue: 0, min: 0, max: 0 });
    expect(parameterSpec('postfix_scache_max_attribute_length')).toMatchObject({ kind: 'int', defaultValue: 65536, min: 1024, max: 16777216 });
    expect(parameterSpec('postfix_scache_evict_dead_peers')).toMatchObject({ kind: 'bool', defaultValue: true });
    expect(READ_ORDER.map((spec) => spec.name).filter((name) => name.startsWith('postfix_scache_'))).toEqual([]);
  });
});

describe('the daemon passes them to the server', () => {
  test('endpoint limit 1, dead peers kept, 1 KiB attributes: each takes effect', async () => {
    const server = startOursUnderMaster({
      postfix_scache_endpoint_connection_limit: '1',
      postfix_scache_evict_dead_peers: 'no',
      postfix_scache_max_attribute_length: '1024',
    });
    const client = Client.connect(server.path);
    const [first, second] = [new CachedConnection(), new CachedConnection()];
    for (const cached of [first, second]) {
      client.send(saveEndp(60, E, P));
      expect(show(client.read(DUMMY.length))).toBe(show(DUMMY));
      client.sendDescriptors([cached.fd]);
      cached.release();
      expect(show(client.read(10))).toBe(show(status(OK)));
    }
    // One per endpoint: the older was closed to make room.
    expect(await first.eofWithin(1000)).toBeDefined();
    // Dead peers are kept (Postfix's way): the second's peer hangs up, the connection is still handed out.
    second.destroy();
    await sleep(200);
    client.send(findEndp(E));
    expect(show(client.read(findEndpReply(OK, P).length))).toBe(show(findEndpReply(OK, P)));
    client.send(DUMMY);
    const received = client.receiveDescriptor();
    expect(received.kind).toBe('descriptor');
    client.send(DUMMY);
    // A 1025-byte label is over the limit: the connection is closed with a warning.
    client.send(`request\0find_endp\0label\0${'a'.repeat(1025)}\0\0`);
    expect(await client.closedWithin(2000)).toBe(true);
    expect(await server.stderr.waitForLine(/longer than 1024 bytes/, 2000)).toBe(
      'postfix/scache: warning: attribute name or value longer than 1024 bytes from scache socket; closing the connection',
    );
    client.close();
    closeFd(received.fd!);
    first.destroy();
    await server.stop();
    expect(server.records.filter((line) => line.startsWith('statistics: closed early'))).toEqual([]);
  });

  test('a global limit of 2 evicts the oldest, and is counted in the statistics', async () => {
    const server = startOursUnderMaster({ postfix_scache_connection_limit: '2' });
    const client = Client.connect(server.path);
    const connections = [0, 1, 2, 3].map(() => new CachedConnection());
    connections.forEach((cached, i) => {
      client.send(saveEndp(60, `smtp\n192.0.2.${i}\n25\n0\n`, P));
      expect(show(client.read(DUMMY.length))).toBe(show(DUMMY));
      client.sendDescriptors([cached.fd]);
      cached.release();
      expect(show(client.read(10))).toBe(show(status(OK)));
    });
    expect(await connections[0]!.eofWithin(1000)).toBeDefined();
    expect(await connections[1]!.eofWithin(1000)).toBeDefined();
    expect(await connections[2]!.eofWithin(200)).toBeUndefined();
    client.send(findEndp('smtp\n192.0.2.0\n25\n0\n'));
    expect(show(client.read(findEndpReply(FAIL).length))).toBe(show(findEndpReply(FAIL)));
    client.close();
    // master going away: statistics, then exit.
    server.statusChannel.destroy();
    expect(await exited(server.child)).toEqual({ code: 0, signal: null });
    expect(server.records).toContain('statistics: closed early dead_peer=0 over_limit=2');
    connections.forEach((cached) => cached.destroy());
  });

  test('a bad value stops the daemon at start-up with Postfix\'s fatal text', () => {
    const directory = tempDirectory();
    const mainCf = join(directory, 'main.cf');
    writeFileSync(mainCf, `queue_directory = ${directory}\npostfix_scache_connection_limit = -1\n`);
    // An old main.cf: Postfix (and we) wait for a file changed within the last second to settle.
    const anHourAgo = new Date(Date.now() - 3600_000);
    utimesSync(mainCf, anHourAgo, anHourAgo);
    const env = { MAIL_CONFIG: directory, LANG: 'C' };
    const result = spawnSync(process.execPath, [CLI, '-S', '-V'], { env, input: '', encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('fatal: invalid postfix_scache_connection_limit parameter value -1 < 0');
  });
});
