// `postfix-scache -l -t unix ...`: the command as master(8) runs it (see ts/daemon/).

import { basename } from 'node:path';
import { startDaemon } from '../daemon/start.js';
import { superviseDaemon } from '../daemon/lifecycle.js';
import { reportBugsTo } from './exit.js';

/** What Postfix calls argv[0]'s basename: the launcher master runs passes it on. */
function processName(): string {
  return basename(process.env.POSTFIX_SCACHE_PROCESS_NAME || 'postfix-scache');
}

/** master's argv starts with a single-dash option; ours never does. */
export function isMasterArgv(argv: string[]): boolean {
  return argv.length > 0 && /^-[^-]/.test(argv[0]);
}

export async function runUnderMaster(argv: string[]): Promise<void> {
  const { server, logger, config, options } = await startDaemon(argv, processName());
  reportBugsTo(logger);
  superviseDaemon(server, logger, {
    maxIdleMs: config.params.maxIdleMs,
    daemonTimeoutMs: config.params.daemonTimeoutMs,
    verbose: options.verbose > 0,
  });
}
