// The logger a Postfix daemon would have, chosen from its configuration as maillog_client_init()
// chooses (spec §9): postlogd when maillog_file is set, syslog otherwise (never both), plus stderr
// with -V. Warnings are rate-limited on every transport. Also the two ways of getting the
// options: from the final configuration, and from the inherited environment before the
// configuration is read (spec §7.5 step 3).
//
// Trusts: the configuration module for validated values; the environment only for what Postfix
// itself takes from it (MAIL_LOGTAG, POSTLOG_SERVICE, POSTLOG_HOSTNAME).

import type winston from 'winston';
import type { ScacheParams } from '../config/index.js';
import { LogSocket } from '../native.js';
import type { DatagramSink } from './datagram-transport.js';
import { createLogger, type PostfixLogger } from './logger.js';
import { PostlogTransport } from './postlog-transport.js';
import { RateLimitedTransport } from './rate-limited-transport.js';
import { StderrTransport } from './stderr-transport.js';
import { SYSLOG_PATH, SyslogTransport } from './syslog-transport.js';
import type { WarningLimiterOptions } from './warning-limiter.js';

/** LOG_MAIL, the facility before syslog_facility is read. */
const MAIL_FACILITY = 2;
/** What Postfix calls itself in postlog records when it knows no host name. */
const UNKNOWN_HOSTNAME = 'amnesiac';
/** syslog_name's default (without multi_instance_name). */
const DEFAULT_SYSLOG_NAME = 'postfix';

/** Where records go besides stderr: Postfix uses exactly one of these at a time. */
export type LogDestination =
  | { kind: 'syslog'; facility: number; path?: string }
  | { kind: 'postlog'; path: string; hostname: string };

export interface DaemonLoggerOptions {
  /** `<syslog_name>/<process_name>`, e.g. `postfix/scache`. */
  tag: string;
  pid: number;
  /** syslog (facility = glibc's number, path default /dev/log), or postlogd (host name = myhostname). */
  destination: LogDestination;
  /** -V: also write records to stderr. */
  stderr: boolean;
  /** Warning rate limit and its clocks (warning-limiter.ts). */
  warnings?: WarningLimiterOptions;
  /** Record time (default: now). */
  now?: () => Date;
  /** Opens a datagram sink (default: the native LogSocket). */
  openSocket?: (path: string) => DatagramSink;
  /** Default process.stderr. */
  stderrStream?: NodeJS.WritableStream;
}

export function createDaemonLogger(options: DaemonLoggerOptions): PostfixLogger {
  const openSocket = options.openSocket ?? ((path: string) => new LogSocket(path));
  const { tag, pid, destination } = options;
  const transports: winston.transport[] = [];
  if (destination.kind === 'syslog') {
    const socket = openSocket(destination.path ?? SYSLOG_PATH);
    transports.push(new SyslogTransport({ tag, pid, facility: destination.facility }, socket, options.now));
  } else {
    const socket = openSocket(destination.path);
    transports.push(new PostlogTransport({ tag, pid, hostname: destination.hostname }, socket, options.now));
  }
  if (options.stderr) transports.push(new StderrTransport(tag, options.stderrStream));
  return createLogger(transports.map((transport) => new RateLimitedTransport(transport, options.warnings)));
}

/** The options for the final configuration (spec §7.5 step 8): maillog_file selects postlogd. */
export function daemonLoggerOptions(params: ScacheParams, stderr: boolean): DaemonLoggerOptions {
  const destination: LogDestination =
    params.maillogFile === ''
      ? { kind: 'syslog', facility: params.syslogFacilityNumber }
      : {
          kind: 'postlog',
          path: `${params.queueDirectory}/public/${params.postlogServiceName}`,
          hostname: params.myhostname || UNKNOWN_HOSTNAME,
        };
  return { tag: `${params.syslogName}/${params.processName}`, pid: params.processId, destination, stderr };
}

/**
 * The options before any configuration is read (spec §7.5 step 3): postlogd at POSTLOG_SERVICE if
 * master passed one, else syslog with the mail facility; the tag prefix from MAIL_LOGTAG. Empty
 * POSTLOG_* values count as unset, an empty MAIL_LOGTAG does not (as in Postfix).
 */
export function bootstrapLoggerOptions(
  env: NodeJS.ProcessEnv,
  processName: string,
  pid: number,
  stderr: boolean,
): DaemonLoggerOptions {
  const destination: LogDestination = env.POSTLOG_SERVICE
    ? { kind: 'postlog', path: env.POSTLOG_SERVICE, hostname: env.POSTLOG_HOSTNAME || UNKNOWN_HOSTNAME }
    : { kind: 'syslog', facility: MAIL_FACILITY };
  return { tag: `${env.MAIL_LOGTAG ?? DEFAULT_SYSLOG_NAME}/${processName}`, pid, destination, stderr };
}
