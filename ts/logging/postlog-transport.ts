// Records for postlogd(8), byte for byte as Postfix 3.7's msg_logger client sends them when
// maillog_file is set (spec §9.3): one datagram per record,
// `Mmm dd hh:mm:ss <first label of myhostname> tag[pid]: [severity: ]text`, with a zero-padded
// day, the message capped at 2000 bytes and no trailing newline (postlogd adds it).
//
// Trusts: the host name and tag (from the configuration).

import { DatagramTransport, type DatagramSink } from './datagram-transport.js';
import { truncatedText, type Severity } from './record.js';
import { postlogTimestamp } from './timestamp.js';

export interface PostlogIdentity {
  /** `<syslog_name>/<process_name>`. */
  tag: string;
  pid: number;
  /** myhostname; only its first label is used. */
  hostname: string;
}

export function postlogRecord(identity: PostlogIdentity, severity: Severity, message: string, date: Date): Buffer {
  const dot = identity.hostname.indexOf('.');
  const host = dot < 0 ? identity.hostname : identity.hostname.slice(0, dot);
  const header = `${postlogTimestamp(date)} ${host} ${identity.tag}[${identity.pid}]: `;
  return Buffer.concat([Buffer.from(header, 'utf8'), truncatedText(severity, message)]);
}

export class PostlogTransport extends DatagramTransport {
  constructor(identity: PostlogIdentity, sink: DatagramSink, now: () => Date = () => new Date()) {
    super(sink, (severity, message) => postlogRecord(identity, severity, message, now()));
  }
}
