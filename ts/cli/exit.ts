// How the command ends: after the logger has written everything, and — for a bug — loudly, through
// the daemon's own logger once there is one, never by hanging half-alive (master restarts us).

import { closeLogger, type PostfixLogger } from '../logging/logger.js';

const PROGRAM = 'postfix-scache';

/** Where a bug is reported once the command has a logger. */
let bugLogger: PostfixLogger | undefined;

export function reportBugsTo(logger: PostfixLogger): void {
  bugLogger = logger;
}

/** Ends the process once `logger` has written every queued record. */
export async function exitAfter(logger: PostfixLogger, status: number): Promise<never> {
  await closeLogger(logger);
  process.exit(status);
}

/** Makes an uncaught exception or unhandled rejection a fatal error with exit status 1. */
export function exitOnUncaught(): void {
  const die = async (error: unknown) => {
    const text = `uncaught exception: ${(error as Error)?.stack ?? String(error)}`;
    if (bugLogger === undefined) {
      process.stderr.write(`${PROGRAM}: fatal: ${text}\n`);
      process.exit(1);
    }
    bugLogger.fatal(text);
    await exitAfter(bugLogger, 1);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}
