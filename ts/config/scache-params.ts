/**
 * ScacheParams: the typed configuration an scache(8) process works with, built from the
 * values read at start-up (read-values.ts). Times are converted from Postfix's whole
 * seconds to milliseconds for Node timers; strings are ordinary (UTF-8 decoded) text.
 *
 * Note for users: real scache forces max_use to 0 (never exit for use count) right
 * after reading it; `maxUse` is the value read, for completeness.
 *
 * Trusts: every name used here was read by the start-up sequence.
 */
import { byteStringToText } from './byte-string.js';
import type { ReadValues } from './read-values.js';
import { syslogFacilityNumber } from './syslog-facility.js';

export interface ScacheParams {
  /** connection_cache_ttl_limit: upper bound for the TTL of a saved connection. */
  readonly connectionCacheTtlLimitMs: number;
  /** connection_cache_status_update_time: statistics logging interval. */
  readonly connectionCacheStatusUpdateTimeMs: number;
  /** max_idle: exit after this long without clients. */
  readonly maxIdleMs: number;
  /** max_use as read (scache itself then disables it). */
  readonly maxUse: number;
  /** ipc_timeout: per-I/O timeout on client streams. */
  readonly ipcTimeoutMs: number;
  /** ipc_idle / ipc_ttl: client-side limits for connections to this server. */
  readonly ipcIdleMs: number;
  readonly ipcTtlMs: number;
  /** daemon_timeout: watchdog limit for one event-loop callback. */
  readonly daemonTimeoutMs: number;
  readonly lineLengthLimit: number;
  readonly queueDirectory: string;
  readonly mailOwner: string;
  /** The directory main.cf was read from (not the possibly overridden $config_directory). */
  readonly configDirectory: string;
  readonly daemonDirectory: string;
  readonly importEnvironment: string;
  readonly syslogFacility: string;
  /** glibc facility number of syslogFacility (mail = 2); PRI = number * 8 + severity. */
  readonly syslogFacilityNumber: number;
  /** syslog_name as read; the log tag is `${syslogName}/${processName}`. */
  readonly syslogName: string;
  /** maillog_file: empty means syslog, otherwise postlogd logging. */
  readonly maillogFile: string;
  readonly maillogFilePrefixes: string;
  readonly postlogServiceName: string;
  readonly myhostname: string;
  readonly compatibilityLevel: string;
  /** basename(argv[0]); `$process_name` may expand differently if main.cf/-o replaced it. */
  readonly processName: string;
  readonly processId: number;
  readonly serviceName: string;
}

export interface ProcessIdentity {
  readonly processName: string;
  readonly processId: number;
  readonly serviceName: string;
  readonly configDirectory: string;
}

const MS_PER_SECOND = 1000;

export function buildScacheParams(values: ReadValues, identity: ProcessIdentity): ScacheParams {
  const text = (name: string): string => byteStringToText(values.string(name));
  const milliseconds = (name: string): number => values.number(name) * MS_PER_SECOND;
  const syslogFacility = text('syslog_facility');
  return Object.freeze({
    connectionCacheTtlLimitMs: milliseconds('connection_cache_ttl_limit'),
    connectionCacheStatusUpdateTimeMs: milliseconds('connection_cache_status_update_time'),
    maxIdleMs: milliseconds('max_idle'),
    maxUse: values.number('max_use'),
    ipcTimeoutMs: milliseconds('ipc_timeout'),
    ipcIdleMs: milliseconds('ipc_idle'),
    ipcTtlMs: milliseconds('ipc_ttl'),
    daemonTimeoutMs: milliseconds('daemon_timeout'),
    lineLengthLimit: values.number('line_length_limit'),
    queueDirectory: text('queue_directory'),
    mailOwner: text('mail_owner'),
    configDirectory: identity.configDirectory,
    daemonDirectory: text('daemon_directory'),
    importEnvironment: text('import_environment'),
    syslogFacility,
    syslogFacilityNumber: syslogFacilityNumber(syslogFacility) as number,
    syslogName: text('syslog_name'),
    maillogFile: text('maillog_file'),
    maillogFilePrefixes: text('maillog_file_prefixes'),
    postlogServiceName: text('postlog_service_name'),
    myhostname: text('myhostname'),
    compatibilityLevel: text('compatibility_level'),
    processName: identity.processName,
    processId: identity.processId,
    serviceName: identity.serviceName,
  });
}
