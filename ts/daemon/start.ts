// Start-up of the daemon as master(8) runs it, in the order Postfix's multi_server_main() follows
// (spec §7.5): logging from the environment, main.cf and the options, the final logging, the
// checks on how we were started, the jail and the privilege drop, then the server.
//
// Every refusal is Postfix's `fatal:` text, logged where Postfix would log it, and exit status 1.
// Trusts: master for descriptors 5 (status) and 6.. (listening sockets) when not in -S mode.

import { isatty } from 'node:tty';
import { execFileSync } from 'node:child_process';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/index.js';
import { strerror } from '../config/strerror.js';
import { bootstrapLoggerOptions, createDaemonLogger, daemonLoggerOptions } from '../logging/daemon-logger.js';
import { closeLogger, type PostfixLogger } from '../logging/logger.js';
import { dropPrivileges } from '../native.js';
import { ScacheServer } from '../server/scache-server.js';
import { OptionError, parseDaemonOptions, type DaemonOptions } from './options.js';

/** master passes the status channel here and listening sockets from the next descriptor on. */
const MASTER_STATUS_FD = 5;
const MASTER_LISTEN_FD = 6;

/** A start-up refusal: Postfix's text after `fatal: `. */
class Fatal extends Error {}

export interface Started {
  server: ScacheServer;
  logger: PostfixLogger;
  config: LoadedConfig;
  options: DaemonOptions;
}

/**
 * Starts the daemon from master's argv (without the program name). `processName` is what Postfix
 * takes from argv[0] — the command master.cf names, passed on by the installed launcher.
 */
export async function startDaemon(argv: string[], processName: string, env = process.env): Promise<Started> {
  const pid = process.pid;
  let logger = createDaemonLogger(bootstrapLoggerOptions(env, processName, pid, false));
  let options: DaemonOptions | undefined;
  try {
    options = parseOptions(argv, processName, env);
    const config = loadConfig({ env, overrides: options.overrides, processName, serviceName: serviceOf(options, processName), processId: pid });
    config.warnings.forEach((warning) => logger.warning(warning));
    const bootstrap = logger;
    logger = createDaemonLogger(daemonLoggerOptions(config.params, options.stderr));
    await closeLogger(bootstrap);
    refuseTerminal(options, processName);
    const generation = checkInvocation(options, config, env);
    runDebugger(options, config);
    enterQueueDirectory(config);
    confine(options, config);
    const server = ScacheServer.start({
      listen: options.standAlone ? { stdio: true } : { fds: listenDescriptors(options) },
      master: options.standAlone ? undefined : { fd: MASTER_STATUS_FD, generation },
      ttlLimitMs: config.params.connectionCacheTtlLimitMs,
      ipcTimeoutMs: config.params.ipcTimeoutMs,
      statusUpdateTimeMs: config.params.connectionCacheStatusUpdateTimeMs,
      serviceName: config.params.serviceName,
      verbose: options.verbose > 0 || env.MAIL_VERBOSE !== undefined,
      logger,
      // postfix_scache_*: 0 leaves a limit to its default (RLIMIT_NOFILE's share; the global limit).
      connectionLimit: config.postfixScache.connectionLimit || undefined,
      endpointConnectionLimit: config.postfixScache.endpointConnectionLimit || undefined,
      evictDeadPeers: config.postfixScache.evictDeadPeers,
      maxAttributeBytes: config.postfixScache.maxAttributeLength,
    });
    return { server, logger, config, options };
  } catch (error) {
    if (reachesStderr(error, options)) {
      await closeLogger(logger);
      logger = createDaemonLogger(bootstrapLoggerOptions(env, processName, pid, true));
    }
    if (error instanceof ConfigError) error.warnings.forEach((warning) => logger.warning(warning));
    logger.fatal(fatalText(error));
    await closeLogger(logger);
    // Postfix pauses a second before a fatal exit, so that a broken service cannot respawn in a tight loop.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    process.exit(1);
  }
}

/**
 * Postfix reads main.cf before it looks at the options, so a broken main.cf is reported even when an
 * option is bad too; the options are needed first here only because `-o` values go into main.cf's
 * dictionary.
 */
function parseOptions(argv: string[], processName: string, env: NodeJS.ProcessEnv): DaemonOptions {
  try {
    return parseDaemonOptions(argv);
  } catch (error) {
    if (error instanceof OptionError) {
      loadConfig({ env, processName, serviceName: processName, processId: process.pid });
    }
    throw error;
  }
}

function serviceOf(options: DaemonOptions, processName: string): string {
  return options.serviceName ?? processName;
}

/** Without -d or -S, a terminal on stdin means someone started a daemon by hand. */
function refuseTerminal(options: DaemonOptions, processName: string): void {
  if (!options.notDaemon && !options.standAlone && isatty(0)) {
    // Postfix writes this one to stderr under the bare program name, whatever the logging.
    process.stderr.write(`${processName}: fatal: do not run this command by hand\n`);
    process.exit(1);
  }
}

/** The checks multi_server makes on its options and environment; returns the generation. */
function checkInvocation(options: DaemonOptions, config: LoadedConfig, env: NodeJS.ProcessEnv): number {
  if (options.leftover.length > 0) {
    // Postfix only notices this at the first request (Q9); refusing at once tells the operator sooner.
    throw new Fatal(`unexpected command-line argument: ${options.leftover[0]}`);
  }
  if (!options.standAlone && !options.solitary) {
    throw new Fatal(`service ${config.params.serviceName} requires a process limit of 1`);
  }
  if (!options.standAlone) {
    if (options.transport === undefined) throw new Fatal('no transport type specified');
    if (options.transport !== 'unix') {
      // Descriptors travel only over UNIX-domain sockets, so inet or pass could never work.
      throw new Fatal(`unsupported transport type: ${options.transport}`);
    }
  }
  const generation = env.GENERATION;
  if (generation === undefined) return 0;
  if (!/^[0-9]+$/.test(generation)) throw new Fatal(`bad generation: ${generation}`);
  return parseInt(generation, 8) >>> 0;
}

function listenDescriptors(options: DaemonOptions): number[] {
  const count = options.socketCount === undefined ? 1 : Number(options.socketCount);
  if (!Number.isInteger(count) || count <= 0) throw new Fatal(`invalid socket_count: ${options.socketCount}`);
  return Array.from({ length: count }, (_, index) => MASTER_LISTEN_FD + index);
}

/** -D: run debugger_command (as Postfix's debug_process() does) and carry on. */
function runDebugger(options: DaemonOptions, config: LoadedConfig): void {
  if (!options.debugger && process.env.MAIL_DEBUG === undefined) return;
  const command = config.lookup('debugger_command');
  if (command === '') throw new Fatal('no debugger_command variable set up');
  execFileSync('/bin/sh', ['-c', command], { stdio: 'inherit' });
}

function enterQueueDirectory(config: LoadedConfig): void {
  const directory = config.params.queueDirectory;
  try {
    process.chdir(directory);
  } catch (error) {
    throw new Fatal(`chdir("${directory}"): ${strerror(error)}`);
  }
}

/** -u and -c: drop to mail_owner and enter the queue directory's jail, from Rust (spec §7.8). */
function confine(options: DaemonOptions, config: LoadedConfig): void {
  if (!options.unprivileged && !options.chroot) return;
  // The local time zone is read from /etc/localtime on first use, which the jail may not have.
  new Date().toString();
  try {
    dropPrivileges(
      options.unprivileged ? config.params.mailOwner : undefined,
      options.chroot ? config.params.queueDirectory : undefined,
    );
  } catch (error) {
    throw new Fatal((error as Error).message);
  }
}

/**
 * -V takes effect when getopt sees it: after main.cf was read (so its errors never reach stderr) and
 * after any option before it (so a bad option reaches stderr only when -V came first).
 */
function reachesStderr(error: unknown, options: DaemonOptions | undefined): boolean {
  if (error instanceof OptionError) return error.stderr;
  const mainCfError = error instanceof ConfigError && MAIN_CF_ERROR.test(error.message);
  return options?.stderr === true && !mainCfError;
}

/** Fatal texts of reading main.cf itself: `open <path>: ...`, `<path>, line N: ...`. */
const MAIN_CF_ERROR = /^open |, line \d+: /;

function fatalText(error: unknown): string {
  if (error instanceof Fatal || error instanceof ConfigError || error instanceof OptionError) return error.message;
  return `unexpected error: ${(error as Error)?.stack ?? String(error)}`;
}
