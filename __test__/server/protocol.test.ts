/**
 * Our server (embedded, ScacheServer.start) over a real UNIX socket: the exact bytes of every
 * request's reply, descriptor passing with real descriptors, cache and binding semantics, and the
 * warnings it logs. Every test has its own server.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { sameSocket, WireConnection } from '../../ts/native.js';
import {
  ANNOUNCEMENT,
  BAD,
  DUMMY,
  FAIL,
  OK,
  attrs,
  concat,
  findDest,
  findDestReply,
  findEndp,
  findEndpReply,
  saveDest,
  saveEndp,
  show,
  status,
} from '../support/attrs.js';
import {
  expectReply,
  findDestination,
  findEndpoint,
  missDestination,
  missEndpoint,
  saveBinding,
  saveEndpoint,
} from '../support/exchanges.js';
import { cleanup, expectRecords, newCached, newClient, newServer, owned } from '../support/harness.js';
import { removeTempDirectories } from '../support/temp.js';
import { now, sleep } from '../support/time.js';
import { Client, sameOpenFile } from '../support/wire.js';
import { E, E2, P, P2, D, Q } from '../support/labels.js';

afterAll(async () => {
  await cleanup();
  removeTempDirectories();
});

const Q2 = 'destination=example.com\nhost_name=mx2\n';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('the attr0 builders', () => {
  test('reproduce the hex examples of spec §1.8 byte for byte', () => {
    expect(ANNOUNCEMENT).toEqual(hex('70726f746f636f6c00 636f6e6e656374696f6e5f63616368655f70726f746f636f6c00 00'));
    expect(ANNOUNCEMENT.length).toBe(36);
    expect(DUMMY).toEqual(hex('64756d6d79000000'));
    expect(status(0)).toEqual(hex('737461747573003000 00'));
    expect(saveEndp(2, E, P).length).toBe(88);
    expect(findEndp(E).length).toBe(46);
    expect(findEndpReply(OK, P).length).toBe(46);
    expect(findEndpReply(FAIL)).toEqual(hex('737461747573003200 70726f706572747900 00 00'));
    expect(saveDest(2, D, 'destination=example.com\n', E).length).toBe(110);
    expect(findDest(D).length).toBe(43);
    expect(findDestReply(FAIL)).toEqual(hex('737461747573003200 70726f706572747900 00 70726f706572747900 00 00'));
  });
});

describe('replies, byte for byte', () => {
  test('a client first receives exactly the 36-byte announcement, and nothing more', async () => {
    const server = newServer();
    const client = Client.connectRaw(server.path);
    expect(show(client.read(64, 500))).toBe(show(ANNOUNCEMENT));
    client.close();
  });

  test('save_endp: exactly dummy, nothing until the descriptor, then exactly status=0', async () => {
    const server = newServer();
    const client = newClient(server.path);
    const cached = newCached();
    client.send(saveEndp(2, E, P));
    expectReply(client, DUMMY);
    expect(show(await client.collect(200))).toBe('""');
    expect(client.sendDescriptors([cached.fd])).toBe(1);
    cached.release();
    expectReply(client, status(OK));
    expect(show(await client.collect(100))).toBe('""');
    await expectRecords(server, []);
  });

  test('find_endp hit: status=0 with the property, nothing before the dummy, one byte with one descriptor', async () => {
    const server = newServer();
    const client = newClient(server.path);
    saveEndpoint(client, E, P, newCached());
    client.send(findEndp(E));
    expectReply(client, findEndpReply(OK, P));
    expect(show(await client.collect(200))).toBe('""');
    client.send(DUMMY);
    const received = client.receiveDescriptor();
    expect(received.kind).toBe('descriptor');
    owned(WireConnection.adopt(received.fd!));
    // Exactly one data byte came with it: nothing else is waiting now.
    expect(show(await client.collect(100))).toBe('""');
    client.send(DUMMY);
    missEndpoint(client, E);
    await expectRecords(server, []);
  });

  test('find_dest hit: status=0 with the binding\'s and the connection\'s properties', async () => {
    const server = newServer();
    const client = newClient(server.path);
    saveBinding(client, D, Q, E);
    saveEndpoint(client, E, P, newCached());
    owned(findDestination(client, D, Q, P));
    missDestination(client, D);
    await expectRecords(server, []);
  });

  const table: Array<[string, Buffer, Buffer, string[]]> = [
    ['find_endp miss', findEndp(E), findEndpReply(FAIL), []],
    ['find_dest miss', findDest(D), findDestReply(FAIL), []],
    ['save_dest without any connection', saveDest(2, D, Q, E), status(OK), []],
    ['an unknown request', attrs(['request', 'foo']), status(BAD), ['warning: unrecognized request: "foo", ignored']],
    [
      'find_endp without label',
      attrs(['request', 'find_endp']),
      findEndpReply(BAD),
      ['warning: missing attribute label in input from scache socket', 'warning: scache_find_endp_service: bad or missing request parameter'],
    ],
    [
      'find_dest without label',
      attrs(['request', 'find_dest']),
      findDestReply(BAD),
      ['warning: missing attribute label in input from scache socket', 'warning: scache_find_dest_service: bad or missing request parameter'],
    ],
    ['save_endp with ttl 0', saveEndp(0, E, P), status(BAD), ['warning: scache_save_endp_service: bad or missing request parameter']],
    ['save_endp with ttl -5', saveEndp(-5, E, P), status(BAD), ['warning: scache_save_endp_service: bad or missing request parameter']],
    [
      'save_endp with ttl abc',
      saveEndp('abc', E, P),
      status(BAD),
      [
        'warning: malformed numerical data from scache socket while reading input attribute value: abc',
        'warning: scache_save_endp_service: bad or missing request parameter',
      ],
    ],
    [
      'save_endp with x=y before property',
      attrs(['request', 'save_endp'], ['ttl', '2'], ['label', E], ['x', 'y'], ['property', P]),
      status(BAD),
      ['warning: unexpected attribute x from scache socket (expecting: property)', 'warning: scache_save_endp_service: bad or missing request parameter'],
    ],
    ['save_endp with ttl 4294967295', saveEndp('4294967295', E, P), status(BAD), ['warning: scache_save_endp_service: bad or missing request parameter']],
    ['save_dest with ttl 2147483648', saveDest('2147483648', D, Q, E), status(BAD), ['warning: scache_save_dest_service: bad or missing request parameter']],
    ['save_dest with ttl 99999999999', saveDest('99999999999', D, Q, E), status(OK), []],
    [
      'save_dest with ttl 0x10',
      saveDest('0x10', D, Q, E),
      status(BAD),
      [
        'warning: malformed numerical data from scache socket while reading input attribute value: 0x10',
        'warning: scache_save_dest_service: bad or missing request parameter',
      ],
    ],
    [
      'find_endp with an extra attribute after label',
      attrs(['request', 'find_endp'], ['label', E], ['x', 'y']),
      findEndpReply(FAIL),
      ['warning: unexpected attribute x from scache socket (expecting: (list terminator))'],
    ],
    [
      'label=L request=find_endp',
      attrs(['label', 'L'], ['request', 'find_endp']),
      findEndpReply(BAD),
      [
        'warning: unexpected attribute label from scache socket (expecting: request)',
        'warning: unexpected attribute L from scache socket (expecting: request)',
        'warning: missing attribute label in input from scache socket',
        'warning: scache_find_endp_service: bad or missing request parameter',
      ],
    ],
  ];
  test.concurrent.each(table)('%s: exact reply and records', async (_what, request, reply, records) => {
    const server = newServer();
    const client = newClient(server.path);
    client.send(request);
    expectReply(client, reply);
    expect(show(await client.collect(100))).toBe('""');
    // The connection is still in step: a further request is answered normally.
    missEndpoint(client, E2);
    await expectRecords(server, records);
  });

  test('foo=bar as first attribute gets no reply at all, and three warnings', async () => {
    const server = newServer();
    const client = newClient(server.path);
    client.send(attrs(['foo', 'bar']));
    expect(show(await client.collect(400))).toBe('""');
    await expectRecords(server, [
      'warning: unexpected attribute foo from scache socket (expecting: request)',
      'warning: unexpected attribute bar from scache socket (expecting: request)',
      'warning: missing attribute request in input from scache socket',
    ]);
    missEndpoint(client, E);
  });
});

describe('descriptors', () => {
  test('a found descriptor is the same open file as the saved one', async () => {
    const server = newServer();
    const client = newClient(server.path);
    const cached = newCached();
    const other = newCached();
    client.send(saveEndp(2, E, P));
    expectReply(client, DUMMY);
    client.sendDescriptors([cached.fd]);
    expectReply(client, status(OK));
    const received = owned(findEndpoint(client, E, P));
    // Still holding our copy of the cached end: fstat identifies the socket.
    expect(sameSocket(received.fd, cached.fd)).toBe(true);
    expect(sameSocket(received.fd, other.fd)).toBe(false);
    expect(await sameOpenFile(received, cached)).toBeUndefined();
  });

  test('a byte without descriptor gets status=2 and a warning; nothing is cached', async () => {
    const server = newServer();
    const client = newClient(server.path);
    client.send(saveEndp(2, E, P));
    expectReply(client, DUMMY);
    client.send(Buffer.of(0));
    expectReply(client, status(FAIL));
    missEndpoint(client, E);
    await expectRecords(server, ['warning: scache_save_endp_service: unable to receive file descriptor: message carried no descriptor']);
  });

  test('a client that closes after the find reply without dummy: warning, and the cached connection is closed', async () => {
    const server = newServer();
    const client = Client.connect(server.path);
    const [a, b] = [newCached(), newCached()];
    saveEndpoint(client, E, P, a);
    saveEndpoint(client, E, P2, b);
    client.send(findEndp(E));
    expectReply(client, findEndpReply(OK, P));
    client.close();
    expect(await a.eofWithin(1000)).toBeDefined();
    await expectRecords(server, ['warning: scache_find_endp_service: cannot send file descriptor: end of input']);
    // It is gone from the cache; the next one is not affected.
    const next = newClient(server.path);
    const received = owned(findEndpoint(next, E, P2));
    expect(await sameOpenFile(received, b)).toBeUndefined();
    missEndpoint(next, E);
  });

  test('a client that closes instead of sending the descriptor: warning, nothing cached', async () => {
    const server = newServer();
    const client = Client.connect(server.path);
    client.send(saveEndp(2, E, P));
    expectReply(client, DUMMY);
    client.close();
    await expectRecords(server, ['warning: scache_save_endp_service: unable to receive file descriptor: end of input']);
    missEndpoint(newClient(server.path), E);
  });

  test('a descriptor message with extra bytes: status=0, then the bytes are read as the next request', async () => {
    const server = newServer();
    const client = newClient(server.path);
    const cached = newCached();
    client.send(saveEndp(2, E, P));
    expectReply(client, DUMMY);
    client.sendDescriptors([cached.fd], concat(Buffer.of(0), findEndp(E2)));
    cached.release();
    expectReply(client, status(OK));
    expectReply(client, findEndpReply(FAIL));
    expect(await sameOpenFile(owned(findEndpoint(client, E, P)), cached)).toBeUndefined();
  });
});

describe('cache semantics', () => {
  test('two connections saved under one endpoint come back oldest first, and each leaves the cache', async () => {
    const server = newServer();
    const client = newClient(server.path);
    const [a, b] = [newCached(), newCached()];
    saveEndpoint(client, E, P, a);
    saveEndpoint(client, E, P, b);
    const first = owned(findEndpoint(client, E, P));
    const second = owned(findEndpoint(client, E, P));
    missEndpoint(client, E);
    expect(await sameOpenFile(first, a)).toBeUndefined();
    expect(await sameOpenFile(second, b)).toBeUndefined();
    // Neither cached connection was closed by being found.
    expect(a.eofAt).toBeUndefined();
    expect(b.eofAt).toBeUndefined();
  });

  test('several requests over one connection, in sequence', async () => {
    const server = newServer();
    const client = newClient(server.path);
    const [a, b] = [newCached(), newCached()];
    missEndpoint(client, E);
    saveEndpoint(client, E, P, a);
    missDestination(client, D);
    saveBinding(client, D, Q, E);
    client.send(attrs(['request', 'foo']));
    expectReply(client, status(BAD));
    saveEndpoint(client, E, P2, b);
    const x = owned(findDestination(client, D, Q, P));
    const y = owned(findEndpoint(client, E, P2));
    missDestination(client, D);
    expect(await sameOpenFile(x, a)).toBeUndefined();
    expect(await sameOpenFile(y, b)).toBeUndefined();
    await expectRecords(server, ['warning: unrecognized request: "foo", ignored']);
  });

  test('pipelined requests in one write are all answered, in order (Postfix would drop all but the first: Q3)', async () => {
    const server = newServer();
    const client = newClient(server.path);
    client.send(concat(findEndp(E), saveDest(2, D, Q, E), findDest(D), attrs(['request', 'foo']), findEndp(E2), saveEndp(2, E, P)));
    expectReply(client, concat(findEndpReply(FAIL), status(OK), findDestReply(FAIL), status(BAD), findEndpReply(FAIL), DUMMY));
    const cached = newCached();
    client.sendDescriptors([cached.fd]);
    cached.release();
    expectReply(client, status(OK));
    // A hit's reply, dummy, descriptor, trailing dummy and a next request, the client's part pipelined.
    client.send(concat(findDest(D)));
    expectReply(client, findDestReply(OK, Q, P));
    client.send(DUMMY);
    const received = client.receiveDescriptor();
    expect(received.kind).toBe('descriptor');
    const x = owned(WireConnection.adopt(received.fd!));
    client.send(concat(DUMMY, findEndp(E), findDest(D)));
    expectReply(client, concat(findEndpReply(FAIL), findDestReply(FAIL)));
    expect(await sameOpenFile(x, cached)).toBeUndefined();
    await expectRecords(server, ['warning: unrecognized request: "foo", ignored']);
  });

  test('labels and properties with \\n, spaces and bytes >= 0x80 round-trip unchanged', async () => {
    const server = newServer();
    const client = newClient(server.path);
    const label = 'smtp\n[2001:db8::1]\n25\n0 \xff\x80\xc3\xa9\x01 \n';
    const property = ' tls level = 0 \n\xfe\xff\x80\n\t\n\n';
    const dest = 'smtp\nex\xe4mple.com \x80\n';
    const destProperty = 'destination=\xc3\xa9x \xff\n\n';
    const [a, b] = [newCached(), newCached()];
    saveBinding(client, dest, destProperty, label);
    saveEndpoint(client, label, property, a);
    saveEndpoint(client, label, property, b);
    // Matching is byte-exact.
    missEndpoint(client, label.replace('\xff', '\xfe'));
    missEndpoint(client, label.slice(0, -1));
    missDestination(client, dest.replace('\x80', '\xc2\x80'));
    expect(await sameOpenFile(owned(findDestination(client, dest, destProperty, property)), a)).toBeUndefined();
    expect(await sameOpenFile(owned(findEndpoint(client, label, property)), b)).toBeUndefined();
    await expectRecords(server, []);
  });

  test('bindings: the oldest binding whose endpoint has a connection answers, with its own property (spec §4.5)', async () => {
    const server = newServer();
    const client = newClient(server.path);
    const [c1, c2, c3] = [newCached(), newCached(), newCached()];
    // Spec §4.5's live example.
    saveBinding(client, D, Q, E);
    saveBinding(client, D, Q2, E2);
    saveBinding(client, D, Q, E);
    saveBinding(client, D, 'destination=example.com\nhost_name=mx3\n', E);
    saveEndpoint(client, E2, P2, c1);
    saveEndpoint(client, E, P, c2);
    saveEndpoint(client, E, 'tls_level=0\nreuse_count=2\n', c3);
    expect(await sameOpenFile(owned(findDestination(client, D, Q, P)), c2)).toBeUndefined();
    expect(await sameOpenFile(owned(findDestination(client, D, Q, 'tls_level=0\nreuse_count=2\n')), c3)).toBeUndefined();
    expect(await sameOpenFile(owned(findDestination(client, D, Q2, P2)), c1)).toBeUndefined();
    missDestination(client, D);
    // Destination and endpoint labels are separate name spaces.
    missEndpoint(client, D);
    missDestination(client, E);
  });
});

describe('time', () => {
  // Our timers have millisecond resolution; the windows are the spec's ±1 s.
  test.concurrent('an unused cached connection is closed ttl (2 s) ±1 s after it was saved', async () => {
    const server = newServer({ ttlLimitMs: 5000 });
    const client = newClient(server.path);
    const cached = newCached();
    saveEndpoint(client, E, P, cached, 2);
    const saved = now();
    const at = await cached.eofWithin(3500);
    expect(at).toBeDefined();
    expect((at! - saved) / 1000).toBeGreaterThanOrEqual(1);
    expect((at! - saved) / 1000).toBeLessThanOrEqual(3);
    missEndpoint(client, E);
  });

  test.concurrent('a ttl above the limit (2 s) is clamped to it; so is 99999999999', async () => {
    const server = newServer({ ttlLimitMs: 2000 });
    const client = newClient(server.path);
    const [a, b] = [newCached(), newCached()];
    saveEndpoint(client, E, P, a, 100);
    saveEndpoint(client, E2, P, b, '99999999999');
    const saved = now();
    for (const cached of [a, b]) {
      const at = await cached.eofWithin(3500);
      expect(at).toBeDefined();
      expect((at! - saved) / 1000).toBeGreaterThanOrEqual(1);
      expect((at! - saved) / 1000).toBeLessThanOrEqual(3);
    }
  });

  test.concurrent('re-saving an identical binding refreshes its ttl in place', async () => {
    const server = newServer({ ttlLimitMs: 5000 });
    const client = newClient(server.path);
    const t0 = now();
    saveBinding(client, D, Q, E, 2);
    await sleep(t0 + 1200 - now());
    saveBinding(client, D, Q2, E2, 4);
    saveBinding(client, D, Q, E, 2); // refresh: now lives to ~3.2 s, and stays first
    await sleep(t0 + 2600 - now());
    const [a, b] = [newCached(), newCached()];
    saveEndpoint(client, E2, P2, b, 4);
    saveEndpoint(client, E, P, a, 4);
    expect(await sameOpenFile(owned(findDestination(client, D, Q, P)), a)).toBeUndefined();
    expect(await sameOpenFile(owned(findDestination(client, D, Q2, P2)), b)).toBeUndefined();
  });

  test.concurrent('the same destination and endpoint with a different property is a second binding, not a replacement', async () => {
    const server = newServer({ ttlLimitMs: 5000 });
    const client = newClient(server.path);
    const t0 = now();
    saveBinding(client, D, Q, E, 1);
    saveBinding(client, D, Q2, E, 3);
    const [a, b] = [newCached(), newCached()];
    saveEndpoint(client, E, P, a, 3);
    // The first binding answers while it lives (a replacement would answer with Q2)...
    expect(await sameOpenFile(owned(findDestination(client, D, Q, P)), a)).toBeUndefined();
    // ...and once it expired, the second one still does.
    await sleep(t0 + 1800 - now());
    saveEndpoint(client, E, P2, b, 3);
    expect(await sameOpenFile(owned(findDestination(client, D, Q2, P2)), b)).toBeUndefined();
  });

  test.concurrent('a binding survives its connections\' consumption and expiry, and expires ttl ±1 s after its last save', async () => {
    const server = newServer({ ttlLimitMs: 5000 });
    const client = newClient(server.path);
    const t0 = now();
    saveBinding(client, D, Q, E, 3);
    const [a, b, c, d] = [newCached(), newCached(), newCached(), newCached()];
    saveEndpoint(client, E, P, a, 1);
    owned(findDestination(client, D, Q, P)); // consumed
    saveEndpoint(client, E, P, b, 1);
    expect(await b.eofWithin(2000)).toBeDefined(); // expired
    missDestination(client, D);
    saveEndpoint(client, E, P2, c, 3);
    expect(await sameOpenFile(owned(findDestination(client, D, Q, P2)), c)).toBeUndefined();
    expect(now() - t0).toBeLessThan(2000); // still within ttl - 1 s
    await sleep(t0 + 4100 - now());
    saveEndpoint(client, E, P2, d, 3);
    missDestination(client, D); // the binding is gone
    expect(await sameOpenFile(owned(findEndpoint(client, E, P2)), d)).toBeUndefined();
  });
});
