/**
 * The native datagram sender and receiver, live: records arrive byte for byte on a private socket
 * bound in the test; a missing or full log socket never blocks or throws, it drops and counts; a
 * restarted receiver is found again. Needs `npm run build` (the addon).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LogReceiver, LogSocket } from '../../ts/native.js';
import { createDaemonLogger } from '../../ts/logging/daemon-logger.js';
import type { DatagramTransport } from '../../ts/logging/datagram-transport.js';
import { closeLogger, type PostfixLogger } from '../../ts/logging/logger.js';
import type { RateLimitedTransport } from '../../ts/logging/rate-limited-transport.js';
import { suppressedText } from '../../ts/logging/warning-limiter.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';

afterAll(removeTempDirectories);

const AT = new Date(2024, 11, 4, 19, 37, 30);

/** Everything queued on the receiver, waiting up to `firstMs` for the first record. */
function drain(receiver: LogReceiver, firstMs = 100): Buffer[] {
  const records: Buffer[] = [];
  for (let record = receiver.receive(firstMs); record !== null; record = receiver.receive(0)) records.push(record);
  return records;
}

function droppedBy(logger: PostfixLogger): number {
  const wrapper = logger.transports[0] as unknown as RateLimitedTransport;
  return (wrapper.inner as DatagramTransport).dropped;
}

describe('LogSocket', () => {
  test('sends each record as one datagram, byte for byte', () => {
    const path = join(tempDirectory('scache-log-'), 'log');
    const receiver = new LogReceiver(path);
    const socket = new LogSocket(path);
    const binary = Buffer.from([0x3c, 0x32, 0x32, 0x3e, 0xff, 0x00, 0xc3]);
    expect(socket.send(binary)).toBe(true);
    expect(socket.send('text \u00e9')).toBe(true);
    expect(socket.send(Buffer.alloc(0))).toBe(true);
    expect(drain(receiver)).toEqual([binary, Buffer.from('text \u00e9', 'utf8'), Buffer.alloc(0)]);
    expect(socket.dropped).toBe(0);
    socket.close();
    expect(socket.send('after close')).toBe(false);
    expect(socket.dropped).toBe(1);
    expect(receiver.receive(0)).toBeNull();
    receiver.close();
  });

  test('a missing socket is not an error: records are dropped and counted', () => {
    const socket = new LogSocket(join(tempDirectory('scache-log-'), 'nobody-here'));
    const started = performance.now();
    let sent = 0;
    for (let i = 0; i < 10_000; i++) if (socket.send('lost')) sent++;
    expect(performance.now() - started).toBeLessThan(2000);
    expect(sent).toBe(0);
    expect(socket.dropped).toBe(10_000);
  });

  test('a path that cannot be a socket address throws at once', () => {
    expect(() => new LogSocket(`/tmp/${'x'.repeat(200)}`)).toThrow(/log socket/);
  });

  test('the receiver restarting: records are dropped for at most a second, then flow again', async () => {
    const path = join(tempDirectory('scache-log-'), 'log');
    const first = new LogReceiver(path);
    const socket = new LogSocket(path);
    expect(socket.send('one')).toBe(true);
    expect(drain(first)).toEqual([Buffer.from('one')]);
    first.close();
    rmSync(path);
    const second = new LogReceiver(path);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(socket.send('two')).toBe(true);
    expect(drain(second)).toEqual([Buffer.from('two')]);
    expect(socket.dropped).toBe(0);
    second.close();
  });
});

describe('the daemon logger on real sockets', () => {
  test('syslog mode: glibc-format records on the syslog socket', async () => {
    const path = join(tempDirectory('scache-log-'), 'dev-log');
    const receiver = new LogReceiver(path);
    const logger = createDaemonLogger({
      tag: 'postfix/scache',
      pid: 4242,
      destination: { kind: 'syslog', facility: 2, path },
      stderr: false,
      now: () => AT,
    });
    logger.info('statistics: start interval Dec  4 19:31:07');
    logger.warning('unrecognized request: "foo", ignored');
    logger.fatal('watchdog timeout');
    await closeLogger(logger);
    expect(drain(receiver).map(String)).toEqual([
      '<22>Dec  4 19:37:30 postfix/scache[4242]: statistics: start interval Dec  4 19:31:07',
      '<20>Dec  4 19:37:30 postfix/scache[4242]: warning: unrecognized request: "foo", ignored',
      '<18>Dec  4 19:37:30 postfix/scache[4242]: fatal: watchdog timeout',
    ]);
    receiver.close();
  });

  test('postlog mode: postlogd-format records on the postlog socket', async () => {
    const path = join(tempDirectory('scache-log-'), 'postlog');
    const receiver = new LogReceiver(path);
    const logger = createDaemonLogger({
      tag: 'postfix/scache',
      pid: 4242,
      destination: { kind: 'postlog', path, hostname: 'vm.example.com' },
      stderr: false,
      now: () => AT,
    });
    logger.info('statistics: domain lookup hits=1 miss=2 success=33%');
    logger.error('e');
    await closeLogger(logger);
    expect(drain(receiver).map(String)).toEqual([
      'Dec 04 19:37:30 vm postfix/scache[4242]: statistics: domain lookup hits=1 miss=2 success=33%',
      'Dec 04 19:37:30 vm postfix/scache[4242]: error: e',
    ]);
    receiver.close();
  });

  test('10,000 records to a socket nobody reads: the calls return promptly, the rest is dropped', async () => {
    const path = join(tempDirectory('scache-log-'), 'unread');
    const receiver = new LogReceiver(path);
    const logger = createDaemonLogger({
      tag: 't',
      pid: 1,
      destination: { kind: 'syslog', facility: 2, path },
      stderr: false,
    });
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) logger.info(`record ${i} ${'x'.repeat(100)}`);
    expect(performance.now() - started).toBeLessThan(5000);
    const dropped = droppedBy(logger);
    const queued = drain(receiver).length;
    expect(queued).toBeGreaterThan(0);
    expect(dropped).toBe(10_000 - queued);
    expect(dropped).toBeGreaterThan(9000);
    // Once read, the socket carries records again.
    logger.info('after');
    await closeLogger(logger);
    expect(drain(receiver).map(String)).toEqual([expect.stringMatching(/ t\[1\]: after$/)]);
    receiver.close();
  });

  test('10,000 records with no log daemon at all: prompt, all dropped', async () => {
    const path = join(tempDirectory('scache-log-'), 'absent');
    const logger = createDaemonLogger({
      tag: 't',
      pid: 1,
      destination: { kind: 'postlog', path, hostname: 'h' },
      stderr: false,
    });
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) logger.info(`record ${i}`);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(droppedBy(logger)).toBe(10_000);
    await closeLogger(logger);
  });

  test('a warning flood reaches the socket as 100 warnings and one suppressed line', async () => {
    const path = join(tempDirectory('scache-log-'), 'flood');
    const receiver = new LogReceiver(path);
    let now = 0;
    const logger = createDaemonLogger({
      tag: 't',
      pid: 1,
      destination: { kind: 'syslog', facility: 2, path },
      stderr: false,
      now: () => AT,
      warnings: { now: () => now, schedule: () => () => {} },
    });
    const received: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      logger.warning(`malformed request ${i}`);
      if (i % 5 === 0) received.push(...drain(receiver, 0).map(String));
    }
    now = 1000;
    logger.info('statistics');
    await closeLogger(logger);
    received.push(...drain(receiver).map(String));
    expect(received).toHaveLength(102);
    expect(received[99]).toBe('<20>Dec  4 19:37:30 t[1]: warning: malformed request 99');
    expect(received[100]).toBe(`<20>Dec  4 19:37:30 t[1]: warning: ${suppressedText(9900, 100)}`);
    expect(received[101]).toBe('<22>Dec  4 19:37:30 t[1]: statistics');
    receiver.close();
  });
});
