// Records for a local syslog daemon, byte for byte as glibc's syslog() sends them after Postfix's
// `openlog(tag, LOG_PID | LOG_NDELAY, LOG_MAIL)` and `syslog(facility | level, "%.2000s", text)`
// (spec §9.2): `<PRI>Mmm dd hh:mm:ss tag[pid]: text`, no host name, no trailing newline.
//
// Trusts: the facility number (validated by the configuration) and the tag.

import { DatagramTransport, type DatagramSink } from './datagram-transport.js';
import { truncatedText, type Severity } from './record.js';
import { syslogTimestamp } from './timestamp.js';

/** Where glibc's syslog() sends. */
export const SYSLOG_PATH = '/dev/log';

/** LOG_MAIL: openlog()'s facility, which glibc substitutes when a record names facility 0. */
const OPENLOG_FACILITY = 2;

/** Postfix's severities as syslog levels: LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT, LOG_CRIT. */
const SYSLOG_LEVELS: Readonly<Record<Severity, number>> = { info: 6, warning: 4, error: 3, fatal: 2, panic: 2 };

export interface SyslogIdentity {
  /** `<syslog_name>/<process_name>`. */
  tag: string;
  pid: number;
  /** glibc's facility number (mail = 2). */
  facility: number;
}

export function syslogRecord(identity: SyslogIdentity, severity: Severity, message: string, date: Date): Buffer {
  // Facility 0 (kern) means "none given" to glibc, which then uses openlog()'s LOG_MAIL.
  const facility = identity.facility === 0 ? OPENLOG_FACILITY : identity.facility;
  // Postfix drops LOG_PID for a tag that already holds a '[' (msg_syslog_init()'s forwarding hack).
  const pid = identity.tag.includes('[') ? '' : `[${identity.pid}]`;
  const header = `<${facility * 8 + SYSLOG_LEVELS[severity]}>${syslogTimestamp(date)} ${identity.tag}${pid}: `;
  return Buffer.concat([Buffer.from(header, 'utf8'), truncatedText(severity, message)]);
}

export class SyslogTransport extends DatagramTransport {
  constructor(identity: SyslogIdentity, sink: DatagramSink, now: () => Date = () => new Date()) {
    super(sink, (severity, message) => syslogRecord(identity, severity, message, now()));
  }
}
