// `postfix-scache [--listen PATH] [--group NAME]` (what `npm start` runs): a private socket (mode
// 0600; with --group, 0660 and owned by that group), Postfix's built-in defaults, logging to stderr
// (warnings rate-limited, as under master), until SIGINT or SIGTERM — then every cached connection
// is closed, the socket removed and the statistics logged.

import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import yargs from 'yargs';
import { ScacheServer } from '../server/scache-server.js';
import { createLogger, stderrTransport } from '../logging/logger.js';
import { RateLimitedTransport } from '../logging/rate-limited-transport.js';
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
      '$0 [--listen PATH] [--group NAME]\n\nServe the Postfix connection cache protocol on a UNIX socket.\n' +
        'Under master(8), Postfix daemon options are accepted instead (see README).',
    )
    .option('listen', {
      type: 'string',
      describe: 'socket path to create (mode 0600)',
      default: defaultSocketPath(),
      defaultDescription: '/tmp/postfix-scache-<uid>/scache',
    })
    .option('group', {
      type: 'string',
      describe: 'let this group use the socket too (mode 0660, owned by the group)',
    })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every transaction' })
    .strict()
    .help()
    .parseAsync();

  const logger = createLogger([new RateLimitedTransport(stderrTransport(`postfix/${PROGRAM}`))]);
  reportBugsTo(logger);
  let gid: number | undefined;
  try {
    gid = args.group === undefined ? undefined : groupId(args.group);
  } catch (error) {
    logger.fatal((error as Error).message);
    return exitAfter(logger, 1);
  }
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
  if (gid !== undefined) {
    try {
      shareWithGroup(args.listen, gid, args.listen === defaultSocketPath());
    } catch (error) {
      logger.fatal(`${args.listen}: cannot give the socket to group ${args.group}: ${(error as Error).message}`);
      await server.close();
      return exitAfter(logger, 1);
    }
  }
  const stop = () => void server.close().then(() => exitAfter(logger, 0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Only now: a supervisor may signal us as soon as it reads this line.
  logger.info(`listening on ${args.listen}`);
}

/**
 * Opens the socket to `gid`. The server created it mode 0600, so it is first given to the group
 * while still private, and only then made group-writable: at no moment may anyone but the owner
 * and that group connect. The default directory (0700) becomes 0710 for the group, so that its
 * members can reach the socket without listing the directory.
 */
function shareWithGroup(path: string, gid: number, inDefaultDirectory: boolean): void {
  if (inDefaultDirectory) {
    chownSync(dirname(path), -1, gid);
    chmodSync(dirname(path), 0o710);
  }
  chownSync(path, -1, gid);
  chmodSync(path, 0o660);
}

/** A group name from /etc/group, or a numeric gid. */
function groupId(name: string): number {
  if (/^[0-9]+$/.test(name)) return Number(name);
  let groups = '';
  try {
    groups = readFileSync('/etc/group', 'utf8');
  } catch {
    // No group file: only numeric ids can be used.
  }
  for (const line of groups.split('\n')) {
    const [group, , id] = line.split(':');
    if (group === name && id !== undefined && /^[0-9]+$/.test(id)) return Number(id);
  }
  throw new Error(`unknown group: ${name}`);
}
