// A load-generating client process for the hardening suites (support.ts: startWorker). Plain
// JavaScript, so that it runs with `node` alone; it talks to the server through the binding's raw
// wire tools (exact bytes, real descriptors). Every reply is checked byte for byte; problems are
// counted and a few are described. It prints one JSON report on stdout when done.
//
//   node worker.mjs good        '{"path":..., "id":1, "stopFile":..., "ttl":2}'
//   node worker.mjs malformed   '{"path":..., "count":2500, "first":0}'
//   node worker.mjs connections '{"path":..., "count":1000}'

import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { closeFd, socketpair, WireConnection } from '../../native/index.js';

const [mode, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}');
const TIMEOUT = 5000;

// ---------------------------------------------------------------------------------------------
// The wire format

const latin1 = (text) => Buffer.from(text, 'latin1');
function attrs(...pairs) {
  const parts = [];
  for (const [name, value] of pairs) parts.push(latin1(name), Buffer.of(0), latin1(value), Buffer.of(0));
  parts.push(Buffer.of(0));
  return Buffer.concat(parts);
}
const ANNOUNCEMENT = attrs(['protocol', 'connection_cache_protocol']);
const DUMMY = attrs(['dummy', '']);
const status = (code) => attrs(['status', String(code)]);
const findEndpReply = (code, property = '') => attrs(['status', String(code)], ['property', property]);
const findDestReply = (code, dest = '', endp = '') => attrs(['status', String(code)], ['property', dest], ['property', endp]);
const saveEndp = (ttl, label, property) =>
  attrs(['request', 'save_endp'], ['ttl', String(ttl)], ['label', label], ['property', property]);
const findEndp = (label) => attrs(['request', 'find_endp'], ['label', label]);
const show = (data) => JSON.stringify(data.toString('latin1'));

class Mismatch extends Error {}

function connect(path) {
  const wire = WireConnection.connect(path);
  expect(wire, ANNOUNCEMENT, 'announcement');
  return wire;
}

function expect(wire, expected, what) {
  const got = wire.read(expected.length, TIMEOUT);
  if (!got.equals(expected)) throw new Mismatch(`${what}: expected ${show(expected)}, got ${show(got)}`);
}

// ---------------------------------------------------------------------------------------------
// Latencies

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 };
}

const problems = { errors: 0, errorSamples: [] };
function problem(error) {
  problems.errors += 1;
  if (problems.errorSamples.length < 10) problems.errorSamples.push(String(error?.stack ?? error));
}

// ---------------------------------------------------------------------------------------------
// good: save_endp + find_endp cycles with real descriptors until the stop file appears

function good() {
  const { path, id, stopFile, ttl = 2, maxCycles = Infinity } = options;
  const label = `smtp\n198.51.100.${id}\n25\n0\n`;
  const save = [];
  const find = [];
  const exchange = [];
  let client = connect(path);
  let cycles = 0;
  while (cycles < maxCycles && !(cycles % 16 === 0 && stopFile && existsSync(stopFile))) {
    const property = `worker=${id}\ncycle=${cycles}\n`;
    const [cached, peer] = socketpair();
    try {
      let t = performance.now();
      client.write(saveEndp(ttl, label, property));
      expect(client, DUMMY, 'save_endp dummy');
      client.sendDescriptors(Buffer.of(0), [cached]);
      expect(client, status(0), 'save_endp status');
      const saved = performance.now() - t;
      closeFd(cached);
      t = performance.now();
      client.write(findEndp(label));
      expect(client, findEndpReply(0, property), 'find_endp hit');
      client.write(DUMMY);
      const received = client.receiveDescriptor(TIMEOUT);
      client.write(DUMMY);
      const found = performance.now() - t;
      if (received.kind !== 'descriptor') throw new Mismatch(`find_endp: descriptor expected, got ${received.kind}`);
      // The same connection: a byte written at the peer comes out of the received descriptor.
      const mine = WireConnection.adopt(received.fd);
      const remote = WireConnection.adopt(peer);
      remote.write(Buffer.from('x'));
      const byte = mine.read(1, TIMEOUT);
      mine.close();
      remote.close();
      if (byte.toString() !== 'x') throw new Mismatch('the received descriptor is not the saved connection');
      save.push(saved);
      find.push(found);
      exchange.push(saved, found);
    } catch (error) {
      problem(error);
      try {
        closeFd(cached);
      } catch {}
      try {
        closeFd(peer);
      } catch {}
      client.close();
      client = connect(path);
    }
    cycles += 1;
  }
  client.close();
  return { cycles, ...problems, save: summary(save), find: summary(find), exchange: summary(exchange) };
}

// ---------------------------------------------------------------------------------------------
// malformed: every class of spec §11 (and a few of ours), round robin

const NEVER_SAVED = 'smtp\n203.0.113.99\n25\n0\n';
const E = 'smtp\n203.0.113.1\n25\n0\n';

/** A request after which nothing must come back: a miss proves the server answered nothing else. */
function probe(wire) {
  wire.write(findEndp(NEVER_SAVED));
  expect(wire, findEndpReply(2), 'probe after a request without reply');
}

function simple(request, reply, warnings) {
  return (state) => {
    state.wire.write(request);
    expect(state.wire, reply, 'reply');
    return warnings;
  };
}

const saveEndpWith = (ttl, ...rest) => attrs(['request', 'save_endp'], ['ttl', ttl], ...rest);
const saveDestWith = (ttl, ...rest) => attrs(['request', 'save_dest'], ['ttl', ttl], ...rest);

/** [name, run(state) → warnings the server logs for it]. */
const CLASSES = [
  ['unknown request', simple(attrs(['request', 'foo']), status(1), 1)],
  ['save_endp ttl=0', simple(saveEndpWith('0', ['label', E], ['property', 'p']), status(1), 1)],
  ['save_endp ttl=-5', simple(saveEndpWith('-5', ['label', E], ['property', 'p']), status(1), 1)],
  ['save_endp ttl=abc', simple(saveEndpWith('abc', ['label', E], ['property', 'p']), status(1), 2)],
  ['save_endp ttl="5 "', simple(saveEndpWith('5 ', ['label', E], ['property', 'p']), status(1), 2)],
  ['save_endp ttl=""', simple(saveEndpWith('', ['label', E], ['property', 'p']), status(1), 2)],
  ['save_endp without property', simple(saveEndpWith('2', ['label', E]), status(1), 2)],
  ['save_endp x=y before property', simple(saveEndpWith('2', ['label', E], ['x', 'y'], ['property', 'p']), status(1), 2)],
  [
    'save_endp, a byte without descriptor',
    (state) => {
      state.wire.write(saveEndp(2, E, 'p'));
      expect(state.wire, DUMMY, 'dummy');
      state.wire.write(Buffer.of(0));
      expect(state.wire, status(2), 'status after a byte without descriptor');
      return 1;
    },
  ],
  [
    'save_endp, two descriptors in one message',
    (state) => {
      const [a, aPeer] = socketpair();
      const [b, bPeer] = socketpair();
      try {
        state.wire.write(saveEndp(2, E, 'p'));
        expect(state.wire, DUMMY, 'dummy');
        state.wire.sendDescriptors(Buffer.of(0), [a, b]);
        expect(state.wire, status(2), 'status after two descriptors');
      } finally {
        [a, aPeer, b, bPeer].forEach(closeFd);
      }
      return 1;
    },
  ],
  ['find_endp without label', simple(attrs(['request', 'find_endp']), findEndpReply(1), 2)],
  ['find_endp with an extra attribute', simple(attrs(['request', 'find_endp'], ['label', NEVER_SAVED], ['x', 'y']), findEndpReply(2), 1)],
  ['find_dest without label', simple(attrs(['request', 'find_dest']), findDestReply(1), 2)],
  ['save_dest ttl=0', simple(saveDestWith('0', ['label', 'D'], ['property', 'q'], ['label', E]), status(1), 1)],
  ['save_dest without endpoint label', simple(saveDestWith('2', ['label', 'D'], ['property', 'q']), status(1), 2)],
  ['save_dest ttl=4294967295', simple(saveDestWith('4294967295', ['label', 'D'], ['property', 'q'], ['label', E]), status(1), 1)],
  ['save_dest ttl=2147483648', simple(saveDestWith('2147483648', ['label', 'D'], ['property', 'q'], ['label', E]), status(1), 1)],
  ['save_dest ttl=0x10', simple(saveDestWith('0x10', ['label', 'D'], ['property', 'q'], ['label', E]), status(1), 2)],
  [
    'foo=bar (no reply)',
    (state) => {
      state.wire.write(attrs(['foo', 'bar']));
      probe(state.wire);
      return 3;
    },
  ],
  [
    'lone terminator (no reply)',
    (state) => {
      state.wire.write(Buffer.of(0));
      probe(state.wire);
      return 1;
    },
  ],
  ['label=L request=find_endp', simple(Buffer.concat([latin1('label\0L\0'), attrs(['request', 'find_endp'])]), findEndpReply(1), 4)],
  [
    'part of a request, then gone',
    (state) => {
      const wire = connect(state.path);
      wire.write(latin1('request\0save_endp\0ttl\x002\0label\0smtp\n19'));
      wire.close();
      return 2;
    },
  ],
  [
    'gone instead of the descriptor',
    (state) => {
      const wire = connect(state.path);
      wire.write(saveEndp(2, E, 'p'));
      expect(wire, DUMMY, 'dummy');
      wire.close();
      return 1;
    },
  ],
  [
    'attribute over 64 KiB',
    (state) => {
      const wire = connect(state.path);
      try {
        wire.write(Buffer.concat([latin1('request\0find_endp\0label\0'), Buffer.alloc(70_000, 'a')]));
      } catch {
        // The server may close before everything was sent (EPIPE, ECONNRESET).
      }
      if (!wire.waitClosed(TIMEOUT)) throw new Mismatch('oversized attribute: the connection stayed open');
      wire.close();
      return 1;
    },
  ],
];

function malformed() {
  const { path, count, first = 0 } = options;
  const state = { path, wire: connect(path) };
  const perClass = {};
  let expectedWarnings = 0;
  for (let i = 0; i < count; i++) {
    const [name, run] = CLASSES[(first + i) % CLASSES.length];
    try {
      expectedWarnings += run(state);
      perClass[name] = (perClass[name] ?? 0) + 1;
    } catch (error) {
      problem(`${name}: ${error?.stack ?? error}`);
      state.wire.close();
      state.wire = connect(path);
    }
  }
  state.wire.close();
  return { sent: count, perClass, expectedWarnings, ...problems };
}

// ---------------------------------------------------------------------------------------------
// connections: many clients connected at once, each saving a connection and taking another's

function connections() {
  const { path, count } = options;
  const started = performance.now();
  const clients = [];
  for (let i = 0; i < count; i++) clients.push(WireConnection.connect(path));
  const connectedAt = performance.now();
  let greeted = 0;
  for (const client of clients) {
    try {
      expect(client, ANNOUNCEMENT, 'announcement');
      greeted += 1;
    } catch (error) {
      problem(error);
    }
  }
  const label = (i) => `smtp\n10.${(i >> 8) & 255}.${i & 255}.1\n25\n0\n`;
  // Every client asks at once; then each answer is read. The server has them all at the same time.
  const peers = [];
  clients.forEach((client, i) => client.write(saveEndp(60, label(i), `client=${i}\n`)));
  let saved = 0;
  clients.forEach((client, i) => {
    const [cached, peer] = socketpair();
    peers.push(peer);
    try {
      expect(client, DUMMY, 'dummy');
      client.sendDescriptors(Buffer.of(0), [cached]);
      expect(client, status(0), 'save status');
      saved += 1;
    } catch (error) {
      problem(error);
    } finally {
      closeFd(cached);
    }
  });
  // Each client takes the connection its neighbour saved.
  const neighbour = (i) => (i + 1) % count;
  clients.forEach((client, i) => client.write(findEndp(label(neighbour(i)))));
  let found = 0;
  const latencies = [];
  clients.forEach((client, i) => {
    const t = performance.now();
    try {
      expect(client, findEndpReply(0, `client=${neighbour(i)}\n`), 'find hit');
      client.write(DUMMY);
      const received = client.receiveDescriptor(TIMEOUT);
      client.write(DUMMY);
      if (received.kind !== 'descriptor') throw new Mismatch(`descriptor expected, got ${received.kind}`);
      const mine = WireConnection.adopt(received.fd);
      const remote = WireConnection.adopt(peers[neighbour(i)]);
      peers[neighbour(i)] = undefined;
      remote.write(Buffer.from('y'));
      if (mine.read(1, TIMEOUT).toString() !== 'y') throw new Mismatch('not the saved connection');
      mine.close();
      remote.close();
      found += 1;
    } catch (error) {
      problem(error);
    }
    latencies.push(performance.now() - t);
  });
  const servedAt = performance.now();
  peers.filter((peer) => peer !== undefined).forEach(closeFd);
  clients.forEach((client) => client.close());
  return {
    count,
    greeted,
    saved,
    found,
    connectMs: connectedAt - started,
    totalMs: servedAt - started,
    find: summary(latencies),
    ...problems,
  };
}

const MODES = { good, malformed, connections };
if (!(mode in MODES)) {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(MODES[mode]()));
