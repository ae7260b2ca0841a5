#!/usr/bin/env node
// The postfix-scache command. Stand-alone, it serves a private socket until SIGINT or SIGTERM,
// logging to stderr with Postfix's built-in defaults.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ScacheServer } from '../server/scache-server.js';
import { closeLogger, createLogger, stderrTransport, type PostfixLogger } from '../logging/logger.js';

const PROGRAM = 'postfix-scache';

/** Where a stand-alone server listens unless told otherwise: private to the user running it. */
export function defaultSocketPath(): string {
  return `/tmp/${PROGRAM}-${process.getuid?.() ?? 0}/scache`;
}

async function main(argv: string[]): Promise<void> {
  const args = await yargs(argv)
    .scriptName(PROGRAM)
    .usage('$0 [--listen PATH]\n\nServe the Postfix connection cache protocol on a UNIX socket.')
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
  if (args.listen === defaultSocketPath()) {
    mkdirSync(dirname(args.listen), { recursive: true, mode: 0o700 });
  }
  let server: ScacheServer;
  try {
    server = ScacheServer.start({ listen: { path: args.listen }, verbose: args.verbose, logger });
  } catch (error) {
    logger.fatal((error as Error).message);
    return exit(logger, 1);
  }
  logger.info(`listening on ${args.listen}`);
  const stop = () => void server.close().then(() => exit(logger, 0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function exit(logger: PostfixLogger, status: number): Promise<never> {
  await closeLogger(logger);
  process.exit(status);
}

await main(hideBin(process.argv));
