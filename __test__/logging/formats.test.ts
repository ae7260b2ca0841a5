/**
 * The three record formats, byte for byte, for every severity, against fixed times and pids.
 * Expected syslog bytes are those glibc 2.36's syslog() produced for Postfix's openlog()/syslog()
 * calls (spec §9.2, and postfix-live.test.ts); postlog bytes are those Postfix 3.7.11's
 * msg_logger client sent (spec §9.3); stderr is msg_vstream's -V form (spec §9.4).
 * Dates are built from local-time fields, so the expectations hold in any time zone.
 */
import { describe, expect, test } from '@jest/globals';
import { createLogger } from '../../ts/logging/logger.js';
import { postlogRecord, PostlogTransport } from '../../ts/logging/postlog-transport.js';
import { SEVERITIES, type Severity } from '../../ts/logging/record.js';
import { StderrTransport } from '../../ts/logging/stderr-transport.js';
import { syslogRecord, SyslogTransport } from '../../ts/logging/syslog-transport.js';
import { postlogTimestamp, syslogTimestamp } from '../../ts/logging/timestamp.js';
import { CapturingSink, CapturingStream } from './helpers.js';

const DEC_4 = new Date(2024, 11, 4, 19, 37, 30);
const JAN_15 = new Date(2025, 0, 15, 0, 5, 9);
const SCACHE = { tag: 'postfix/scache', pid: 13604 };
const ALL = Object.keys(SEVERITIES) as Severity[];

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('time stamps', () => {
  test('syslog pads the day with a space, postlog with a zero; both use C month names', () => {
    expect(syslogTimestamp(DEC_4)).toBe('Dec  4 19:37:30');
    expect(postlogTimestamp(DEC_4)).toBe('Dec 04 19:37:30');
    expect(syslogTimestamp(JAN_15)).toBe('Jan 15 00:05:09');
    expect(postlogTimestamp(JAN_15)).toBe('Jan 15 00:05:09');
    const months = Array.from({ length: 12 }, (_, month) => syslogTimestamp(new Date(2024, month, 1)).slice(0, 3));
    expect(months.join(' ')).toBe('Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec');
    expect(postlogTimestamp(new Date(2024, 1, 29, 23, 59, 59))).toBe('Feb 29 23:59:59');
  });
});

describe('syslog records (glibc syslog() after openlog(tag, LOG_PID|LOG_NDELAY, LOG_MAIL))', () => {
  const mail = { ...SCACHE, facility: 2 };

  test('each severity, as captured from glibc 2.36 (spec §9.2)', () => {
    const record = (severity: Severity, text: string) => syslogRecord(mail, severity, text, DEC_4);
    expect(record('info', 'statistics: start interval Dec  4 19:31:07')).toEqual(
      bytes('<22>Dec  4 19:37:30 postfix/scache[13604]: statistics: start interval Dec  4 19:31:07'),
    );
    expect(record('warning', 'unrecognized request: "foo", ignored')).toEqual(
      bytes('<20>Dec  4 19:37:30 postfix/scache[13604]: warning: unrecognized request: "foo", ignored'),
    );
    expect(record('error', 'x')).toEqual(bytes('<19>Dec  4 19:37:30 postfix/scache[13604]: error: x'));
    expect(record('fatal', 'watchdog timeout')).toEqual(
      bytes('<18>Dec  4 19:37:30 postfix/scache[13604]: fatal: watchdog timeout'),
    );
    expect(record('panic', 'watchdog_create: timeout 2 is too small')).toEqual(
      bytes('<18>Dec  4 19:37:30 postfix/scache[13604]: panic: watchdog_create: timeout 2 is too small'),
    );
  });

  test('PRI is facility * 8 + level; kern (0) becomes openlog()\'s mail, as glibc does', () => {
    const pri = (facility: number, severity: Severity) =>
      syslogRecord({ ...SCACHE, facility }, severity, 'm', JAN_15).toString('latin1').split('>')[0];
    expect(ALL.map((severity) => pri(23, severity))).toEqual(['<186', '<186', '<187', '<188', '<190']);
    expect(ALL.map((severity) => pri(19, severity))).toEqual(['<154', '<154', '<155', '<156', '<158']);
    expect(ALL.map((severity) => pri(0, severity))).toEqual(['<18', '<18', '<19', '<20', '<22']);
    expect(syslogRecord({ ...SCACHE, pid: 7, facility: 16 }, 'info', 'm', JAN_15)).toEqual(
      bytes('<134>Jan 15 00:05:09 postfix/scache[7]: m'),
    );
  });

  test('a tag holding "[" gets no pid (msg_syslog_init()\'s forwarding hack)', () => {
    expect(syslogRecord({ tag: 'po[st/scache', pid: 99, facility: 2 }, 'warning', 'w', DEC_4)).toEqual(
      bytes('<20>Dec  4 19:37:30 po[st/scache: warning: w'),
    );
  });

  test('no trailing newline; non-printable characters become "?", UTF-8 is kept', () => {
    expect(syslogRecord(mail, 'info', 'a\tb\x01c\u00e9\n', DEC_4)).toEqual(
      Buffer.from('<22>Dec  4 19:37:30 postfix/scache[13604]: a?b?c\u00e9?', 'utf8'),
    );
  });
});

describe('postlog records (Postfix 3.7 msg_logger client)', () => {
  const vm = { tag: 'postfix/scache', pid: 9759, hostname: 'vm.example.com' };
  const at = new Date(2024, 11, 4, 19, 31, 17);

  test('each severity; the host is the first label of myhostname (spec §9.3)', () => {
    const record = (severity: Severity, text: string) => postlogRecord(vm, severity, text, at);
    expect(record('info', 'statistics: domain lookup hits=1 miss=2 success=33%')).toEqual(
      bytes('Dec 04 19:31:17 vm postfix/scache[9759]: statistics: domain lookup hits=1 miss=2 success=33%'),
    );
    expect(record('warning', 'close(5): Bad file descriptor')).toEqual(
      bytes('Dec 04 19:31:17 vm postfix/scache[9759]: warning: close(5): Bad file descriptor'),
    );
    expect(record('error', 'x')).toEqual(bytes('Dec 04 19:31:17 vm postfix/scache[9759]: error: x'));
    expect(record('fatal', 'unexpected command-line argument: extra')).toEqual(
      bytes('Dec 04 19:31:17 vm postfix/scache[9759]: fatal: unexpected command-line argument: extra'),
    );
    expect(record('panic', 'p')).toEqual(bytes('Dec 04 19:31:17 vm postfix/scache[9759]: panic: p'));
  });

  test('a host name without dots is used whole; the pid is always there', () => {
    expect(postlogRecord({ tag: 'po[st/x', pid: 1, hostname: 'amnesiac' }, 'info', 'i', JAN_15)).toEqual(
      bytes('Jan 15 00:05:09 amnesiac po[st/x[1]: i'),
    );
  });
});

describe('the 2000-byte cap on datagram records (%.2000s)', () => {
  const mail = { ...SCACHE, facility: 2 };
  const vm = { ...SCACHE, hostname: 'vm' };
  const syslogHeader = '<20>Dec  4 19:37:30 postfix/scache[13604]: warning: ';
  const postlogHeader = 'Dec 04 19:37:30 vm postfix/scache[13604]: warning: ';

  test('the message is cut after 2000 bytes; the severity prefix does not count', () => {
    const long = 'a'.repeat(1990) + '0123456789' + 'overflow';
    expect(syslogRecord(mail, 'warning', long, DEC_4)).toEqual(bytes(syslogHeader + long.slice(0, 2000)));
    expect(postlogRecord(vm, 'warning', long, DEC_4)).toEqual(bytes(postlogHeader + long.slice(0, 2000)));
    const exact = 'b'.repeat(2000);
    expect(syslogRecord(mail, 'warning', exact, DEC_4)).toEqual(bytes(syslogHeader + exact));
  });

  test('the cut counts bytes and may split a UTF-8 character, as C does', () => {
    const message = 'a'.repeat(1999) + '\u00e9\u00e9';
    const expected = Buffer.concat([bytes(syslogHeader), bytes('a'.repeat(1999)), Buffer.of(0xc3)]);
    expect(syslogRecord(mail, 'warning', message, DEC_4)).toEqual(expected);
    expect(postlogRecord(vm, 'warning', message, DEC_4)).toEqual(
      Buffer.concat([bytes(postlogHeader), bytes('a'.repeat(1999)), Buffer.of(0xc3)]),
    );
  });
});

describe('through winston', () => {
  test('each severity method reaches the syslog and postlog transports as one record', () => {
    const syslog = new CapturingSink();
    const postlog = new CapturingSink();
    const logger = createLogger([
      new SyslogTransport({ ...SCACHE, facility: 2 }, syslog, () => DEC_4),
      new PostlogTransport({ ...SCACHE, hostname: 'mx1.example.org' }, postlog, () => JAN_15),
    ]);
    logger.info('i');
    logger.warning('w');
    logger.error('e');
    logger.fatal('f');
    logger.panic('p');
    expect(syslog.texts).toEqual([
      '<22>Dec  4 19:37:30 postfix/scache[13604]: i',
      '<20>Dec  4 19:37:30 postfix/scache[13604]: warning: w',
      '<19>Dec  4 19:37:30 postfix/scache[13604]: error: e',
      '<18>Dec  4 19:37:30 postfix/scache[13604]: fatal: f',
      '<18>Dec  4 19:37:30 postfix/scache[13604]: panic: p',
    ]);
    expect(postlog.texts).toEqual([
      'Jan 15 00:05:09 mx1 postfix/scache[13604]: i',
      'Jan 15 00:05:09 mx1 postfix/scache[13604]: warning: w',
      'Jan 15 00:05:09 mx1 postfix/scache[13604]: error: e',
      'Jan 15 00:05:09 mx1 postfix/scache[13604]: fatal: f',
      'Jan 15 00:05:09 mx1 postfix/scache[13604]: panic: p',
    ]);
  });

  test('the clock is read per record', () => {
    const sink = new CapturingSink();
    const times = [DEC_4, JAN_15];
    const logger = createLogger([new SyslogTransport({ ...SCACHE, facility: 2 }, sink, () => times.shift()!)]);
    logger.info('one');
    logger.info('two');
    expect(sink.texts).toEqual([
      '<22>Dec  4 19:37:30 postfix/scache[13604]: one',
      '<22>Jan 15 00:05:09 postfix/scache[13604]: two',
    ]);
  });
});

describe('stderr records (msg_vstream, -V)', () => {
  test('tag, severity prefix for non-info, newline; no pid, no time, no cap', () => {
    const stream = new CapturingStream();
    const logger = createLogger([new StderrTransport('postfix/scache', stream)]);
    logger.info('statistics: start interval Dec  4 19:36:35');
    logger.warning('unrecognized request: "foo", ignored');
    logger.error('e');
    logger.fatal('f');
    logger.panic('p\x7f');
    const long = 'x'.repeat(2500);
    logger.info(long);
    expect(stream.text).toBe(
      'postfix/scache: statistics: start interval Dec  4 19:36:35\n' +
        'postfix/scache: warning: unrecognized request: "foo", ignored\n' +
        'postfix/scache: error: e\n' +
        'postfix/scache: fatal: f\n' +
        'postfix/scache: panic: p?\n' +
        `postfix/scache: ${long}\n`,
    );
  });
});
