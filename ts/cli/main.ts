#!/usr/bin/env node
// The postfix-scache command. Two ways to run it:
//  - as master(8) runs a Postfix daemon: Postfix's generic options (`-l -t unix -u -c ...`, `-S`),
//    main.cf, syslog or postlogd logging — see ts/daemon/;
//  - stand-alone (`postfix-scache [--listen PATH]`, what `npm start` runs): a private socket,
//    built-in defaults, logging to stderr, until SIGINT or SIGTERM.
// The first argument decides: a single-dash option means master's argv.

import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startDaemon } from '../daemon/start.js';
import { superviseDaemon } from '../daemon/lifecycle.js';
import { ScacheServer } from '../server/scache-server.js';
import { closeLogger, createLogger, stderrTransport, type PostfixLogger } from '../logging/logger.js';

const PROGRAM = 'postfix-scache';

/** Where a stand-alone server listens unless told otherwise: private to the user running it. */
export function defaultSocketPath(): string {
  return `/tmp/${PROGRAM}-${process.getuid?.() ?? 0}/scache`;
}

/** What Postfix calls argv[0]'s basename: the launcher master runs passes it on. */
function processName(): string {
  return basename(process.env.POSTFIX_SCACHE_PROCESS_NAME || PROGRAM);
}

function isMasterArgv(argv: string[]): boolean {
  return argv.length > 0 && /^-[^-]/.test(argv[0]);
}

async function runUnderMaster(argv: string[]): Promise<void> {
  const { server, logger, config, options } = await startDaemon(argv, processName());
  bugLogger = logger;
  superviseDaemon(server, logger, {
    maxIdleMs: config.params.maxIdleMs,
    daemonTimeoutMs: config.params.daemonTimeoutMs,
    verbose: options.verbose > 0,
  });
}

async function runStandAlone(argv: string[]): Promise<void> {
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

  const logger = createLogger([stderrTransport(`postfix/${processName()}`)]);
  bugLogger = logger;
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
  const stop = () => void server.close().then(() => exit(logger, 0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Only now: a supervisor may signal us as soon as it reads this line.
  logger.info(`listening on ${args.listen}`);
}

async function exit(logger: PostfixLogger, status: number): Promise<never> {
  await closeLogger(logger);
  process.exit(status);
}

/** Where a bug is reported once the daemon's logger exists. */
let bugLogger: PostfixLogger | undefined;

/** A bug must end the process loudly, never leave it hanging half-alive (master restarts it). */
function exitOnUncaught(): void {
  const die = async (error: unknown) => {
    const text = `uncaught exception: ${(error as Error)?.stack ?? String(error)}`;
    if (bugLogger === undefined) {
      process.stderr.write(`${PROGRAM}: fatal: ${text}\n`);
    } else {
      bugLogger.fatal(text);
      await closeLogger(bugLogger);
    }
    process.exit(1);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}

exitOnUncaught();
const argv = hideBin(process.argv);
await (isMasterArgv(argv) ? runUnderMaster(argv) : runStandAlone(argv));
