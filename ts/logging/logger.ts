// The daemon's logger: winston with Postfix's severities and record formats. Every record carries
// the tag `<syslog_name>/<process_name>`; non-info records get Postfix's `warning: `-style prefix.
// Transports are chosen by the caller (stderr here; syslog and postlogd where configured).

import winston from 'winston';
import { printable } from './printable.js';

/** Postfix's severities, most severe first (winston's convention). */
export const SEVERITIES = { panic: 0, fatal: 1, error: 2, warning: 3, info: 4 } as const;
export type Severity = keyof typeof SEVERITIES;

export type PostfixLogger = winston.Logger & { [S in Severity]: winston.LeveledLogMethod };

/** The text after the tag: `[severity: ]message`, sanitised. */
export function recordText(severity: string, message: string): string {
  const prefix = severity === 'info' ? '' : `${severity}: `;
  return prefix + printable(message);
}

/** stderr in Postfix's `-v`/`-V` form: `tag: [severity: ]text`. */
export function stderrTransport(tag: string): winston.transport {
  return new winston.transports.Stream({
    stream: process.stderr,
    format: winston.format.printf(({ level, message }) => `${tag}: ${recordText(level, String(message))}`),
  });
}

export function createLogger(transports: winston.transport[]): PostfixLogger {
  return winston.createLogger({ levels: SEVERITIES, level: 'info', transports }) as PostfixLogger;
}

/** Ends the logger once every queued record has reached its transports (before process.exit). */
export function closeLogger(logger: PostfixLogger): Promise<void> {
  return new Promise((resolve) => {
    logger.once('finish', () => resolve());
    logger.end();
  });
}
