/**
 * Starting the servers under test:
 *
 * - OUR server embedded in this process (`ScacheServer.start`) with a winston logger that keeps
 *   every record in memory, as Postfix would log it after the tag (`warning: ...`, `statistics: ...`);
 * - OUR server as a child process through the CLI (`node dist/cli/main.js --listen PATH`), stderr
 *   captured line by line;
 * - the REAL Postfix scache(8), started the way master(8) starts it (see `startPostfixScache`).
 *
 * All three expose the same `ServerUnderTest` face, so a test script runs unchanged on each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import TransportStream from 'winston-transport';
import { closeFd, listenUnix, socketpair } from '../../ts/native.js';
import { createLogger, recordText, type PostfixLogger } from '../../ts/logging/logger.js';
import { ScacheServer, type ScacheServerOptions } from '../../ts/server/scache-server.js';
import { exited, running, track } from './processes.js';
import { tempDirectory } from './temp.js';
import { waitFor } from './time.js';

export interface ServerUnderTest {
  /** The socket clients connect to. */
  readonly path: string;
  /** Log records so far, as Postfix writes them after `tag[pid]: `. */
  readonly records: readonly string[];
  /** Clients connected right now (our embedded server only). */
  readonly clientCount?: () => number;
  /** Bytes written on the master status channel so far (the real scache only). */
  readonly statusBytes?: () => number;
  stop(): Promise<void>;
}

export interface StartOptions {
  /**
   * Runs once the listening socket exists and before the server serves it (e.g. to leave a
   * connection in the listen queue that the server will find there when it starts).
   */
  beforeStart?: (path: string) => void;
  /** The GENERATION environment value master passes (default '1'). */
  generation?: string;
  /** More options after `-l -t unix -V` (e.g. `-n name`). */
  extraArgs?: string[];
}

/** Waits until at least `count` records exist; false on timeout. */
export function waitForRecords(server: ServerUnderTest, count: number, timeoutMs = 2000): Promise<boolean> {
  return waitFor(() => server.records.length >= count, timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// Our server, embedded

/** A winston transport that keeps each record's text (`[severity: ]message`) in memory. */
export class MemoryTransport extends TransportStream {
  readonly records: string[] = [];

  override log(info: { level: string; message: unknown }, next: () => void): void {
    this.records.push(recordText(info.level, String(info.message)));
    next();
  }
}

export function memoryLogger(): { logger: PostfixLogger; records: string[] } {
  const transport = new MemoryTransport();
  return { logger: createLogger([transport]), records: transport.records };
}

export interface EmbeddedServer extends ServerUnderTest {
  readonly server: ScacheServer;
}

/**
 * Starts our server in this process, listening on a fresh socket path (created by the server; with
 * `beforeStart`, created here and handed over as an inherited listening descriptor).
 */
export function startEmbedded(
  options: Omit<ScacheServerOptions, 'listen' | 'logger'> = {},
  { beforeStart }: StartOptions = {},
): EmbeddedServer {
  const path = join(tempDirectory(), 'scache');
  const { logger, records } = memoryLogger();
  let listen: ScacheServerOptions['listen'] = { path };
  if (beforeStart) {
    listen = { fds: [listenUnix(path)] };
    beforeStart(path);
  }
  const server = ScacheServer.start({ ...options, listen, logger });
  let stopping: Promise<void> | undefined;
  return {
    path,
    records,
    server,
    clientCount: () => server.clients,
    stop: () => (stopping ??= server.close()),
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes with captured stderr

/**
 * A log line's bytes as text: valid UTF-8 decoded, every byte of an invalid sequence written as
 * `\xNN` (so a test can tell exactly which bytes a daemon let through into its log).
 */
export function logText(line: Uint8Array): string {
  let text = '';
  let i = 0;
  while (i < line.length) {
    const byte = line[i]!;
    const length = byte < 0x80 ? 1 : byte >= 0xc2 && byte <= 0xdf ? 2 : byte >= 0xe0 && byte <= 0xef ? 3 : byte >= 0xf0 && byte <= 0xf4 ? 4 : 0;
    const sequence = length ? line.subarray(i, i + length) : undefined;
    const valid =
      sequence !== undefined &&
      sequence.length === length &&
      sequence.subarray(1).every((b) => b >= 0x80 && b < 0xc0) &&
      Buffer.from(Buffer.from(sequence).toString('utf8'), 'utf8').equals(sequence);
    if (valid) {
      text += Buffer.from(sequence).toString('utf8');
      i += length;
    } else {
      text += `\\x${byte.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return text;
}

/** stderr of a child process, split into lines as they arrive (decoded with logText). */
export class LineCapture {
  readonly lines: string[] = [];
  private partial = Buffer.alloc(0);

  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (chunk: Buffer) => {
      let data = Buffer.concat([this.partial, chunk]);
      for (let end = data.indexOf(0x0a); end >= 0; end = data.indexOf(0x0a)) {
        this.lines.push(logText(data.subarray(0, end)));
        data = data.subarray(end + 1);
      }
      this.partial = data;
    });
    stream.on('end', () => {
      if (this.partial.length) this.lines.push(logText(this.partial));
      this.partial = Buffer.alloc(0);
    });
  }

  /** Waits for a line matching `pattern`; returns it, or undefined on timeout. */
  async waitForLine(pattern: RegExp, timeoutMs = 5000): Promise<string | undefined> {
    let found: string | undefined;
    await waitFor(() => (found = this.lines.find((line) => pattern.test(line))) !== undefined, timeoutMs);
    return found;
  }
}

/** The record text of a `-V`-style stderr line `tag: text`: everything after the first `: `. */
export function afterTag(line: string): string {
  const at = line.indexOf(': ');
  return at < 0 ? line : line.slice(at + 2);
}

// ---------------------------------------------------------------------------------------------
// Our server through the CLI

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'dist/cli/main.js');

export interface CliProcess extends ServerUnderTest {
  readonly child: ChildProcess;
  readonly stderr: LineCapture;
}

/** Runs `node dist/cli/main.js ...args` (build first: `npm run build`). */
export function spawnCli(args: string[]): { child: ChildProcess; stderr: LineCapture } {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  // Without Jest's NODE_OPTIONS (--experimental-vm-modules), which is none of the CLI's business.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = track(spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] }));
  return { child, stderr: new LineCapture(child.stderr!) };
}

/** Starts the CLI on a fresh socket (or `path`) and waits until it says it is listening. */
export async function startCli(path = join(tempDirectory(), 'scache'), extraArgs: string[] = []): Promise<CliProcess> {
  const { child, stderr } = spawnCli(['--listen', path, ...extraArgs]);
  const ready = await stderr.waitForLine(/listening on /, 10_000);
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`the CLI did not start: ${stderr.lines.join('\n')}`);
  }
  return {
    path,
    child,
    stderr,
    get records() {
      return stderr.lines.map(afterTag).filter((text) => !text.startsWith('listening on '));
    },
    async stop() {
      if (running(child)) child.kill('SIGTERM');
      await exited(child);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The real Postfix scache

export const POSTFIX_SCACHE = process.env.POSTFIX_SCACHE ?? '/usr/lib/postfix/sbin/scache';

export interface PostfixScache extends ServerUnderTest {
  readonly child: ChildProcess;
  readonly stderr: LineCapture;
  /** Our end of the status channel: destroying it is what master does on `postfix reload`. */
  readonly statusChannel: net.Socket;
  /** The first 4096 bytes scache wrote on its status channel (fd 5): 12-byte TAKEN/AVAIL records. */
  readonly status: () => Buffer;
}

/**
 * Starts /usr/lib/postfix/sbin/scache as master(8) would (spec §7.1, §7.3):
 *
 * - argv `scache -l -t unix -V` plus `-o name=value` for each entry of `parameters`;
 * - environment `MAIL_CONFIG=<dir>`, `GENERATION=1`, `LANG=C` and nothing else (master passes no PATH);
 *   `<dir>/main.cf` sets `queue_directory = <dir>` and `compatibility_level = 3.6` and is dated an
 *   hour back (a main.cf changed in the last second makes Postfix wait and read it again);
 * - fds 0 and 1 /dev/null; 2 a pipe we read (`-V` copies every record to stderr as
 *   `postfix/scache: warning: ...`); 3 and 4 open (/dev/null: scache only sets close-on-exec on
 *   them, and dies if they are not open); 5 one end of a socketpair whose other end we keep open and
 *   drain (the status channel: EOF there would make scache exit); 6 a listening, non-blocking UNIX
 *   stream socket bound at `<dir>/scache`, created by the binding (`listenUnix`) so that Node does not
 *   accept on it.
 *
 * The socket exists before the process starts, so clients can connect at once (the kernel queues them).
 */
export function startPostfixScache(parameters: Record<string, string> = {}, options: StartOptions = {}): PostfixScache {
  if (!existsSync(POSTFIX_SCACHE)) {
    throw new Error(`${POSTFIX_SCACHE} is missing: install Postfix (Debian: apt-get install postfix)`);
  }
  return startLikeMaster({ file: POSTFIX_SCACHE, args: [], env: {} }, parameters, options);
}

/**
 * Starts OUR daemon exactly as startPostfixScache starts Postfix's (same argv, descriptors and
 * environment), through the CLI, under the process name `scache` (what the installed launcher
 * passes on when master.cf names the command `scache`).
 */
export function startOursUnderMaster(parameters: Record<string, string> = {}, options: StartOptions = {}): PostfixScache {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  return startLikeMaster(
    { file: process.execPath, args: [CLI], env: { POSTFIX_SCACHE_PROCESS_NAME: 'scache' } },
    parameters,
    options,
  );
}

/** A program to start as master(8) starts a service: `file ...args -l -t unix -V -o ...`. */
interface MasterStyleProgram {
  file: string;
  args: string[];
  env: Record<string, string>;
}

function startLikeMaster(
  program: MasterStyleProgram,
  parameters: Record<string, string>,
  { beforeStart, generation = '1', extraArgs = [] }: StartOptions,
): PostfixScache {
  const directory = tempDirectory('scache-postfix-');
  const mainCf = join(directory, 'main.cf');
  writeFileSync(mainCf, `queue_directory = ${directory}\ncompatibility_level = 3.6\n`);
  const anHourAgo = new Date(Date.now() - 3600_000);
  utimesSync(mainCf, anHourAgo, anHourAgo);

  const path = join(directory, 'scache');
  const listenFd = listenUnix(path);
  beforeStart?.(path);
  const [statusOurs, statusTheirs] = socketpair();
  const devNull = openSync('/dev/null', 'r+');
  const args = [...program.args, '-l', '-t', 'unix', '-V', ...extraArgs];
  for (const [name, value] of Object.entries(parameters)) args.push('-o', `${name}=${value}`);
  let child: ChildProcess;
  try {
    child = track(
      spawn(program.file, args, {
        argv0: 'scache',
        env: { MAIL_CONFIG: directory, GENERATION: generation, LANG: 'C', ...program.env },
        stdio: ['ignore', 'ignore', 'pipe', devNull, devNull, statusTheirs, listenFd],
      }),
    );
  } finally {
    // The child has its own copies now (or none, if the spawn failed).
    closeFd(listenFd);
    closeFd(statusTheirs);
    closeSync(devNull);
  }
  const statusChannel = new net.Socket({ fd: statusOurs, readable: true, writable: true });
  // Drained as it comes (a full channel would block scache); only counted, beyond the first 4 KiB.
  let status = Buffer.alloc(0);
  let statusBytes = 0;
  statusChannel.on('data', (chunk: Buffer) => {
    statusBytes += chunk.length;
    if (status.length < 4096) status = Buffer.concat([status, chunk]).subarray(0, 4096);
  });
  statusChannel.on('error', () => {});
  const stderr = new LineCapture(child.stderr!);
  let stopping: Promise<void> | undefined;
  return {
    path,
    child,
    stderr,
    statusChannel,
    status: () => status,
    statusBytes: () => statusBytes,
    get records() {
      return stderr.lines.map(afterTag);
    },
    stop: () =>
      (stopping ??= (async () => {
        // SIGTERM, as `postfix stop` does: no exit handler, cached descriptors die with the process.
        if (running(child)) child.kill('SIGTERM');
        await exited(child);
        statusChannel.destroy();
      })()),
  };
}
