// The daemon's logger: winston with Postfix's severities and record formats. Every record carries
// the tag `<syslog_name>/<process_name>`; non-info records get Postfix's `warning: `-style prefix.
// Transports are chosen by the caller: stderr here, syslog and postlogd in daemon-logger.ts.
//
// Trusts: the transports to be synchronous and never to throw.

import winston from 'winston';
import { SEVERITIES, type Severity } from './record.js';

export { SEVERITIES, recordText, type Severity } from './record.js';
export { stderrTransport } from './stderr-transport.js';

export type PostfixLogger = winston.Logger & { [S in Severity]: winston.LeveledLogMethod };

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
