// The text part of a log record, as Postfix's msg(3) output functions build it: a `severity: `
// prefix for everything but info, then the message made printable (printable.ts). Datagram
// records (syslog, postlogd) cap the message at 2000 bytes, as Postfix's `%.*s` with
// MSG_SYSLOG_RECLEN / MSG_LOGGER_RECLEN does; stderr records are not capped.
//
// Trusts: nothing; messages may hold anything a client sent.

import { printable } from './printable.js';

/** Postfix's severities, most severe first (winston's convention). */
export const SEVERITIES = { panic: 0, fatal: 1, error: 2, warning: 3, info: 4 } as const;
export type Severity = keyof typeof SEVERITIES;

/** The longest message text (without the severity prefix) a datagram record carries, in bytes. */
export const MAX_TEXT_BYTES = 2000;

function severityPrefix(severity: string): string {
  return severity === 'info' ? '' : `${severity}: `;
}

/** The text after the tag: `[severity: ]message`, sanitised and not truncated (stderr). */
export function recordText(severity: string, message: string): string {
  return severityPrefix(severity) + printable(message);
}

/**
 * `[severity: ]message` with the message cut after MAX_TEXT_BYTES bytes of UTF-8. The cut may fall
 * inside a multi-byte character, exactly as C's `%.2000s` does, so the bytes match Postfix's.
 */
export function truncatedText(severity: string, message: string): Buffer {
  const text = Buffer.from(printable(message), 'utf8');
  return Buffer.concat([Buffer.from(severityPrefix(severity), 'utf8'), text.subarray(0, MAX_TEXT_BYTES)]);
}
