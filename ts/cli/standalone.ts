// `postfix-scache [--listen PATH]` (what `npm start` runs): a private socket, Postfix's built-in
// defaults, logging to stderr, until SIGINT or SIGTERM — then every cached connection is closed,
// the socket removed and the statistics logged.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import yargs from 'yargs';
import { ScacheServer } from '../server/scache-server.js';
import { createLogger, stderrTransport } from '../logging/logger.js';
import { exitAfter, reportBugsTo } from './exit.js';

const PROGRAM = 'postfix-scache';

/** Where a stand-alone server listens unless told otherwise: private to the user running it. */
export function defaultSocketPath(): string {
  return `/tmp/${PROGRAM}-${process.getuid?.() ?? 0}/scache`;
}

export async function runStandAlone(argv: string[]): Promise<void> {
  const args = await yargs(argv)
    .scriptName(PROGRAM)
    .usage(
      '$0 [--listen PATH]\n\nServe the Postfix connection cache protocol on a UNIX socket.\n' +
        'Under master(8), Postfix daemon options are accepted instead (see README).',
    )
    .option('listen', {
      type: 'string',
      describe: 'socket path to create (mode 0600)',
      default: defaultSocketPath(),
      defaultDescription: '/tmp/postfix-scache-<uid>/scache',
    })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every transaction' })
    .strict()
    .help()
    .parseAsync();

  const logger = createLogger([stderrTransport(`postfix/${PROGRAM}`)]);
  reportBugsTo(logger);
  if (args.listen === defaultSocketPath()) {
    mkdirSync(dirname(args.listen), { recursive: true, mode: 0o700 });
  }
  let server: ScacheServer;
  try {
    server = ScacheServer.start({ listen: { path: args.listen }, verbose: args.verbose, logger });
  } catch (error) {
    logger.fatal((error as Error).message);
    return exitAfter(logger, 1);
  }
  const stop = () => void server.close().then(() => exitAfter(logger, 0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Only now: a supervisor may signal us as soon as it reads this line.
  logger.info(`listening on ${args.listen}`);
}
