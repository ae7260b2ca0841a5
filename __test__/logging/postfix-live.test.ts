/**
 * What the real Postfix 3.7 scache sends, compared with what our transports build for the same
 * message, pid and second. scache runs stand-alone (-S) with a private main.cf:
 *
 * - postlogd mode (maillog_file set): its records go to $queue_directory/public/postlog, where
 *   the test binds a receiver;
 * - syslog mode: glibc's syslog() always uses /dev/log, so scache runs in a private mount
 *   namespace (unshare -m, needs root) whose /dev holds the test's receiver as `log`;
 * - stderr (-V): captured from the child.
 *
 * Skipped where Postfix is not installed (or, for syslog, where unshare is not allowed).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogReceiver } from '../../ts/native.js';
import { createLogger } from '../../ts/logging/logger.js';
import { postlogRecord } from '../../ts/logging/postlog-transport.js';
import type { Severity } from '../../ts/logging/record.js';
import { StderrTransport } from '../../ts/logging/stderr-transport.js';
import { syslogRecord } from '../../ts/logging/syslog-transport.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { CapturingStream } from './helpers.js';

const SCACHE = '/usr/lib/postfix/sbin/scache';
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
const HOSTNAME = 'vm.example.com';
const TAG = 'postfix/scache';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const havePostfix = existsSync(SCACHE);
const canUnshare =
  havePostfix && process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true'], { env: { PATH } }).status === 0;

/** One attribute list: `name NUL value NUL ... NUL`. */
function request(name: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from('request\0'), Buffer.from(name), Buffer.from('\0\0')]);
}

const LONG_NAME = 'a'.repeat(1976) + '\u00e9'.repeat(20);

/** Inputs and command lines, and a message each run must log (others may come too). */
const CASES: Array<{ name: string; args: string[]; input: Buffer; severity: Severity; message: string }> = [
  {
    name: 'warning',
    args: [],
    input: request('foo'),
    severity: 'warning',
    message: 'unrecognized request: "foo", ignored',
  },
  {
    name: 'info',
    args: [],
    input: Buffer.from('request\0find_endp\0label\0x\0\0'),
    severity: 'info',
    message: 'statistics: address lookup hits=0 miss=1 success=0%',
  },
  {
    name: 'fatal',
    args: ['extra'],
    input: request('foo'),
    severity: 'fatal',
    message: 'unexpected command-line argument: extra',
  },
  {
    name: 'a message cut after 2000 bytes, inside a UTF-8 character',
    args: [],
    input: request(Buffer.from(LONG_NAME, 'utf8')),
    severity: 'warning',
    message: `unrecognized request: "${LONG_NAME}", ignored`,
  },
];

let root: string;

beforeAll(() => {
  root = tempDirectory('pfl-');
  mkdirSync(join(root, 'q', 'public'), { recursive: true });
  const common = `queue_directory = ${root}/q\nmyhostname = ${HOSTNAME}\ncompatibility_level = 3.6\n`;
  for (const [name, extra] of [
    ['postlog', 'maillog_file = /var/log/postfix-scache-live-test-never-written.log\n'],
    ['syslog', 'syslog_facility = local3\n'],
  ]) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'main.cf'), common + extra);
  }
});

afterAll(removeTempDirectories);

/** Runs scache -S to completion (its log sockets are read afterwards: few records per run). */
function scache(configDir: string, args: string[], input: Buffer, namespaceDev?: string): SpawnSyncReturns<Buffer> {
  const env = { MAIL_CONFIG: join(root, configDir), PATH };
  const command = [SCACHE, '-S', ...args];
  const options = { input, env, timeout: 10_000 };
  const result = namespaceDev
    ? spawnSync('unshare', ['-m', 'sh', '-c', WITH_PRIVATE_DEV_LOG, 'sh', namespaceDev, ...command], options)
    : spawnSync(SCACHE, command.slice(1), options);
  if (result.error) throw result.error;
  return result;
}

/** Inside a private mount namespace: a /dev that holds $1/log and the real null, zero, urandom. */
const WITH_PRIVATE_DEV_LOG = `set -e
dev="$1"; shift
for f in null zero urandom random; do touch "$dev/$f"; mount --bind "/dev/$f" "$dev/$f"; done
mount --bind "$dev" /dev
exec "$@"`;

function drain(receiver: LogReceiver): Buffer[] {
  const records: Buffer[] = [];
  for (let record = receiver.receive(200); record !== null; record = receiver.receive(0)) records.push(record);
  return records;
}

/** pid and local time from a record's header: `... Mmm dd hh:mm:ss ... tag[pid]: `. */
function header(record: Buffer): { pid: number; date: Date } {
  const match = /(\w{3}) ([ \d]\d) (\d\d):(\d\d):(\d\d) .*?\[(\d+)\]: /.exec(record.toString('latin1'));
  if (!match) throw new Error(`no header in ${record.toString('latin1')}`);
  const [, month, day, hours, minutes, seconds, pid] = match;
  const date = new Date(new Date().getFullYear(), MONTHS.indexOf(month!), Number(day), +hours!, +minutes!, +seconds!);
  return { pid: Number(pid), date };
}

/** Our record for each (pid, time) Postfix used, as latin1 text (byte for byte, readable on failure). */
function ours(records: Buffer[], build: (pid: number, date: Date) => Buffer): string[] {
  return records.map((record) => header(record)).map(({ pid, date }) => build(pid, date).toString('latin1'));
}

const latin1 = (records: Buffer[]): string[] => records.map((record) => record.toString('latin1'));

(havePostfix ? describe : describe.skip)('postlogd mode: Postfix 3.7 scache and our PostlogTransport', () => {
  let receiver: LogReceiver;
  beforeAll(() => {
    receiver = new LogReceiver(join(root, 'q', 'public', 'postlog'));
  });
  afterAll(() => receiver.close());

  test.each(CASES)('$name', ({ args, input, severity, message }) => {
    scache('postlog', args, input);
    const records = drain(receiver);
    expect(records.length).toBeGreaterThan(0);
    const expected = ours(records, (pid, date) =>
      postlogRecord({ tag: TAG, pid, hostname: HOSTNAME }, severity, message, date),
    );
    expect(latin1(records).filter((record) => expected.includes(record))).toHaveLength(1);
  });

  test('stderr (-V) matches our StderrTransport', () => {
    const result = scache('postlog', ['-V'], request('foo'));
    drain(receiver);
    const stream = new CapturingStream();
    createLogger([new StderrTransport(TAG, stream)]).warning('unrecognized request: "foo", ignored');
    expect(result.stderr.toString('latin1').split(/(?<=\n)/)).toContain(stream.text);
  });
});

(canUnshare ? describe : describe.skip)('syslog mode: Postfix 3.7 scache via glibc and our SyslogTransport', () => {
  let dev: string;
  let receiver: LogReceiver;
  beforeAll(() => {
    dev = join(root, 'dev');
    mkdirSync(dev);
    receiver = new LogReceiver(join(dev, 'log'));
  });
  afterAll(() => receiver.close());

  test.each(CASES)('$name (syslog_facility = local3)', ({ args, input, severity, message }) => {
    scache('syslog', args, input, dev);
    const records = drain(receiver);
    expect(records.length).toBeGreaterThan(0);
    const expected = ours(records, (pid, date) =>
      syslogRecord({ tag: TAG, pid, facility: 19 }, severity, message, date),
    );
    expect(latin1(records).filter((record) => expected.includes(record))).toHaveLength(1);
  });

  test('syslog_facility = kern is logged as mail, by glibc and by us', () => {
    scache('syslog', ['-o', 'syslog_facility=kern'], request('foo'), dev);
    const records = drain(receiver);
    const expected = ours(records, (pid, date) =>
      syslogRecord({ tag: TAG, pid, facility: 0 }, 'warning', 'unrecognized request: "foo", ignored', date),
    );
    expect(latin1(records).filter((record) => expected.includes(record))).toHaveLength(1);
    expect(latin1(records)[0]).toMatch(/^<20>/);
  });
});
