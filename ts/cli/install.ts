// `postfix-scache install`: puts a launcher for this daemon into Postfix's daemon_directory, where
// master(8) looks for the commands master.cf names, and prints the master.cf line that uses it.
//
// master runs `$daemon_directory/<command>` with an environment cleaned down to import_environment
// (no PATH) and with descriptors 0-6 set up (spec §7.1, §7.3, §13). The launcher is therefore a
// /bin/sh script that names node and our main.js by absolute path, `exec`s so that the descriptors
// and the process (master's child, in master's process group) stay the same, and passes on the name
// master ran it under, which Postfix's process_name and log tag come from.
//
// The launcher carries a marker line; a file without it is never overwritten (it may be Postfix's own
// scache, or someone else's work).
//
// Trusts: the options for what they say (an operator runs this as root); nothing in the file found at
// the launcher's path.

import { execFileSync } from 'node:child_process';
import { accessSync, closeSync, constants, fchmodSync, lstatSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';

/** Where Debian (and Ubuntu) keep Postfix's daemons; used when postconf cannot be asked. */
export const FALLBACK_DAEMON_DIRECTORY = '/usr/lib/postfix/sbin';
export const DEFAULT_NAME = 'postfix-scache';
/** Where postconf is looked for besides PATH (root's PATH may lack the sbin directories). */
const POSTCONF_DIRECTORIES = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin'];

/** The second line of every launcher this command writes: how it recognises its own files. */
export const MARKER = '# postfix-scache launcher, written by "postfix-scache install"; it may rewrite this file.';

/** A refusal, with the text shown to the operator. */
export class InstallError extends Error {}

export interface InstallOptions {
  /** Postfix's daemon_directory: where master(8) looks for the command. */
  daemonDirectory: string;
  /** The launcher's file name: the command to write in master.cf. */
  name: string;
  /** The node binary, by absolute path. */
  node: string;
  /** This package's dist/cli/main.js, by absolute path. */
  script: string;
}

export interface Installed {
  /** The launcher's path. */
  path: string;
  /** Whether an earlier launcher written by this command was replaced. */
  replaced: boolean;
  /** The launcher's text. */
  text: string;
  /** The master.cf line that runs it. */
  masterCfLine: string;
}

/** `word` quoted for /bin/sh. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The launcher: absolute paths only, argv and descriptors passed on by exec. */
export function launcherText(node: string, script: string): string {
  return [
    '#!/bin/sh',
    MARKER,
    '# master(8) runs this with no PATH in the environment, so every path here is absolute.',
    '# The name master ran it under is passed on: Postfix takes process_name (and the log tag) from it.',
    'POSTFIX_SCACHE_PROCESS_NAME=${0##*/}',
    'export POSTFIX_SCACHE_PROCESS_NAME',
    `exec ${shellQuote(node)} ${shellQuote(script)} "$@"`,
    '',
  ].join('\n');
}

/**
 * The master.cf line for the launcher: service `scache` (smtp(8) connects to private/scache), type
 * unix, private and unprivileged as Postfix's own, chroot n (y works too, see README), no wakeup,
 * process limit 1 (the daemon refuses any other).
 */
export function masterCfLine(name: string): string {
  return `scache    unix  -       -       n       -       1       ${name}`;
}

/** What master.cf can hold as a command and master can run from daemon_directory. */
function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name)) {
    throw new InstallError(
      `invalid --name ${JSON.stringify(name)}: use a plain file name (letters, digits, ".", "_", "+", "-")`,
    );
  }
}

function checkNode(node: string): void {
  if (!isAbsolute(node)) {
    throw new InstallError(`--node ${node}: give an absolute path (master(8) runs the launcher without PATH)`);
  }
  try {
    if (!statSync(node).isFile()) throw new InstallError(`--node ${node}: not a file`);
    accessSync(node, constants.X_OK);
  } catch (error) {
    if (error instanceof InstallError) throw error;
    throw new InstallError(`--node ${node}: not an executable file (${(error as Error).message})`);
  }
}

function checkScript(script: string): void {
  if (!isAbsolute(script)) throw new InstallError(`${script}: the daemon's main.js must be an absolute path`);
  try {
    if (!statSync(script).isFile()) throw new Error('not a file');
  } catch {
    throw new InstallError(`${script}: the daemon's main.js is missing (run "npm run build" first)`);
  }
}

function checkDirectory(directory: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch {
    // reported below
  }
  if (!isDirectory) {
    throw new InstallError(
      `daemon directory ${directory} does not exist or is not a directory (give Postfix's daemon_directory: postconf -h daemon_directory)`,
    );
  }
}

/** Whether `path` is absent (false) or a launcher this command wrote (true); anything else is refused. */
function ownLauncherAt(path: string): boolean {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new InstallError(`${path}: ${(error as Error).message}`);
  }
  const refuse = (why: string) =>
    new InstallError(
      `refusing to overwrite ${path}: ${why}; ` +
        'choose another --name, or move that file away yourself if it really should go',
    );
  if (stat.isSymbolicLink()) throw refuse('it is a symbolic link');
  if (!stat.isFile()) throw refuse('it is not a regular file');
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[1] !== MARKER) throw refuse('it was not written by "postfix-scache install"');
  return true;
}

/** Writes the launcher (atomically: a new file renamed into place) and returns what was done. */
export function installLauncher(options: InstallOptions): Installed {
  checkName(options.name);
  checkNode(options.node);
  checkScript(options.script);
  const directory = resolve(options.daemonDirectory);
  checkDirectory(directory);
  const path = join(directory, options.name);
  const replaced = ownLauncherAt(path);
  const text = launcherText(options.node, options.script);
  const temporary = join(directory, `.${options.name}.install-${process.pid}`);
  let fd: number;
  try {
    fd = openSync(temporary, 'wx', 0o755);
  } catch (error) {
    throw new InstallError(`cannot write in ${directory}: ${(error as Error).message}`);
  }
  let open = true;
  try {
    writeSync(fd, text);
    fchmodSync(fd, 0o755); // whatever the umask
    open = false;
    closeSync(fd);
    renameSync(temporary, path);
  } catch (error) {
    if (open) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // nothing to remove
    }
    throw new InstallError(`cannot install ${path}: ${(error as Error).message}`);
  }
  return { path, replaced, text, masterCfLine: masterCfLine(options.name) };
}

/** The first executable `postconf` in `directories`. */
export function findPostconf(directories: readonly string[]): string | undefined {
  for (const directory of directories) {
    if (!isAbsolute(directory)) continue;
    const candidate = join(directory, 'postconf');
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

/** daemon_directory as `postconf` reports it (MAIL_CONFIG selects the instance), or Debian's default. */
export function defaultDaemonDirectory(postconf: string | undefined): string {
  if (postconf === undefined) return FALLBACK_DAEMON_DIRECTORY;
  let output: string;
  try {
    output = execFileSync(postconf, ['-h', 'daemon_directory'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new InstallError(
      `${postconf} -h daemon_directory failed${stderr ? `: ${stderr}` : ''}; give --daemon-directory`,
    );
  }
  const directory = output.trim();
  if (!isAbsolute(directory)) {
    throw new InstallError(`${postconf} -h daemon_directory printed ${JSON.stringify(directory)}; give --daemon-directory`);
  }
  return directory;
}

/** This package's main.js, beside the compiled install.js. */
function defaultScript(): string {
  const path = fileURLToPath(new URL('./main.js', import.meta.url));
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** What the operator is told after a successful install. */
export function report(installed: Installed): string {
  return [
    `postfix-scache: ${installed.replaced ? 'replaced' : 'wrote'} ${installed.path}`,
    'Use it for the scache service: in master.cf (postconf -M scache/unix shows the current line), replace the scache line with',
    '',
    installed.masterCfLine,
    '',
    'and run "postfix reload". Keep the service name scache, private and unprivileged "-" and the process limit 1;',
    'chroot may be n or y. See the README section "Drop-in under master(8)".',
    '',
  ].join('\n');
}

/** `postfix-scache install ...`: returns the exit status. */
export async function runInstall(
  argv: string[],
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args;
  try {
    args = await yargs(argv)
      .scriptName('postfix-scache install')
      .usage(
        '$0 [--daemon-directory DIR] [--name NAME] [--node PATH]\n\n' +
          "Write the launcher master(8) runs as DIR/NAME and print the master.cf line for it.",
      )
      .option('daemon-directory', {
        type: 'string',
        describe: "Postfix's daemon_directory",
        defaultDescription: '`postconf -h daemon_directory`, else /usr/lib/postfix/sbin',
      })
      .option('name', { type: 'string', default: DEFAULT_NAME, describe: 'the command name for master.cf' })
      .option('node', { type: 'string', default: process.execPath, describe: 'the node binary (absolute path)' })
      .strict()
      .help()
      .version(false)
      .exitProcess(false)
      .fail((message, error) => {
        throw error ?? new InstallError(message);
      })
      .parseAsync();
  } catch (error) {
    io.stderr.write(`postfix-scache install: ${(error as Error).message}\n`);
    return 1;
  }
  if ((args as { help?: boolean }).help) return 0;
  try {
    const searchPath = [...(env.PATH ?? '').split(delimiter), ...POSTCONF_DIRECTORIES];
    const daemonDirectory = args.daemonDirectory ?? defaultDaemonDirectory(findPostconf(searchPath));
    const installed = installLauncher({ daemonDirectory, name: args.name, node: args.node, script: defaultScript() });
    io.stdout.write(report(installed));
    return 0;
  } catch (error) {
    if (!(error instanceof InstallError)) throw error;
    io.stderr.write(`postfix-scache install: ${error.message}\n`);
    return 1;
  }
}
