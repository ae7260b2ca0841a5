/**
 * Which transports a daemon gets, from the final configuration (maillog_file selects postlogd,
 * never both) and from the inherited environment before the configuration is read (spec §7.5).
 * Sinks are captured instead of opened, so no socket is needed.
 */
import { describe, expect, test } from '@jest/globals';
import { builtinDefaults } from '../../ts/config/index.js';
import {
  bootstrapLoggerOptions,
  createDaemonLogger,
  daemonLoggerOptions,
  type DaemonLoggerOptions,
} from '../../ts/logging/daemon-logger.js';
import { closeLogger } from '../../ts/logging/logger.js';
import { CapturingSink, CapturingStream } from './helpers.js';

const AT = new Date(2024, 11, 4, 19, 37, 30);
const identity = { processName: 'scache', serviceName: 'scache', processId: 9759, hostname: 'vm.example.com' };

function open(options: DaemonLoggerOptions) {
  const sinks = new Map<string, CapturingSink>();
  const stderr = new CapturingStream();
  const logger = createDaemonLogger({
    ...options,
    now: () => AT,
    stderrStream: stderr,
    openSocket: (path) => {
      const sink = new CapturingSink();
      sinks.set(path, sink);
      return sink;
    },
  });
  return { logger, sinks, stderr };
}

describe('daemonLoggerOptions (final configuration)', () => {
  test('defaults: syslog, mail facility, tag postfix/scache', () => {
    const options = daemonLoggerOptions(builtinDefaults(identity).params, false);
    expect(options).toEqual({
      tag: 'postfix/scache',
      pid: 9759,
      destination: { kind: 'syslog', facility: 2 },
      stderr: false,
    });
  });

  test('maillog_file selects postlogd at $queue_directory/public/$postlog_service_name', () => {
    const { params } = builtinDefaults({
      ...identity,
      overrides: [
        'maillog_file=/var/log/postfix.log',
        'queue_directory=/var/spool/pf',
        'postlog_service_name=plog',
        'syslog_name=postfix/foo',
        'syslog_facility=local3',
      ],
    });
    expect(daemonLoggerOptions(params, true)).toEqual({
      tag: 'postfix/foo/scache',
      pid: 9759,
      destination: { kind: 'postlog', path: '/var/spool/pf/public/plog', hostname: 'vm.example.com' },
      stderr: true,
    });
  });

  test('syslog_facility and syslog_name shape the syslog records', () => {
    const { params } = builtinDefaults({ ...identity, overrides: ['syslog_facility=local3', 'syslog_name=pf'] });
    const { logger, sinks } = open(daemonLoggerOptions(params, false));
    logger.warning('w');
    expect([...sinks.keys()]).toEqual(['/dev/log']);
    expect(sinks.get('/dev/log')!.texts).toEqual(['<156>Dec  4 19:37:30 pf/scache[9759]: warning: w']);
  });
});

describe('createDaemonLogger', () => {
  test('syslog mode opens only the syslog socket', () => {
    const { logger, sinks, stderr } = open({
      tag: 'postfix/scache',
      pid: 1,
      destination: { kind: 'syslog', facility: 2, path: '/run/x/log' },
      stderr: false,
    });
    logger.info('i');
    expect([...sinks.keys()]).toEqual(['/run/x/log']);
    expect(sinks.get('/run/x/log')!.texts).toEqual(['<22>Dec  4 19:37:30 postfix/scache[1]: i']);
    expect(stderr.text).toBe('');
  });

  test('postlog mode opens only the postlog socket; -V adds stderr', () => {
    const { logger, sinks, stderr } = open({
      tag: 'postfix/scache',
      pid: 1,
      destination: { kind: 'postlog', path: '/q/public/postlog', hostname: 'mx.example.com' },
      stderr: true,
    });
    logger.warning('w');
    expect([...sinks.keys()]).toEqual(['/q/public/postlog']);
    expect(sinks.get('/q/public/postlog')!.texts).toEqual(['Dec 04 19:37:30 mx postfix/scache[1]: warning: w']);
    expect(stderr.text).toBe('postfix/scache: warning: w\n');
  });

  test('closing the logger closes its sockets', async () => {
    const { logger, sinks } = open({ tag: 't', pid: 1, destination: { kind: 'syslog', facility: 2 }, stderr: true });
    await closeLogger(logger);
    expect(sinks.get('/dev/log')!.closed).toBe(true);
  });

  test('a sink that drops everything does not disturb the logger', () => {
    const stderr = new CapturingStream();
    const full = new CapturingSink(() => false);
    const logger = createDaemonLogger({
      tag: 't',
      pid: 1,
      destination: { kind: 'syslog', facility: 2 },
      stderr: true,
      stderrStream: stderr,
      openSocket: () => full,
    });
    for (let i = 0; i < 50; i++) logger.info(`r${i}`);
    expect(full.dropped).toBe(50);
    expect(stderr.chunks).toHaveLength(50);
  });
});

describe('bootstrapLoggerOptions (inherited environment)', () => {
  test('POSTLOG_SERVICE selects postlogd; POSTLOG_HOSTNAME and MAIL_LOGTAG are used', () => {
    const env = { POSTLOG_SERVICE: '/tmp/pfq/public/postlog', POSTLOG_HOSTNAME: 'vm', MAIL_LOGTAG: 'postfix' };
    expect(bootstrapLoggerOptions(env, 'scache', 5, false)).toEqual({
      tag: 'postfix/scache',
      pid: 5,
      destination: { kind: 'postlog', path: '/tmp/pfq/public/postlog', hostname: 'vm' },
      stderr: false,
    });
  });

  test('without POSTLOG_SERVICE: syslog, mail facility; without MAIL_LOGTAG: "postfix"', () => {
    expect(bootstrapLoggerOptions({}, 'scache-rs', 5, true)).toEqual({
      tag: 'postfix/scache-rs',
      pid: 5,
      destination: { kind: 'syslog', facility: 2 },
      stderr: true,
    });
  });

  test('empty POSTLOG_* values count as unset; an empty MAIL_LOGTAG does not', () => {
    expect(bootstrapLoggerOptions({ POSTLOG_SERVICE: '', MAIL_LOGTAG: '' }, 'scache', 5, false).destination).toEqual({
      kind: 'syslog',
      facility: 2,
    });
    expect(bootstrapLoggerOptions({ MAIL_LOGTAG: '' }, 'scache', 5, false).tag).toBe('/scache');
    expect(
      bootstrapLoggerOptions({ POSTLOG_SERVICE: '/p', POSTLOG_HOSTNAME: '' }, 'scache', 5, false).destination,
    ).toEqual({ kind: 'postlog', path: '/p', hostname: 'amnesiac' });
  });
});
