/**
 * A private, throwaway Postfix 3.7 instance for the end-to-end test, built from Debian's binaries
 * (spec §5.6): its own config, queue, data and daemon directories under one temporary directory,
 * logging through postlogd into a file there, an smtpd on a loopback port to inject mail, and
 * relayhost pointing at an smtp-sink on another loopback port. Nothing under /etc/postfix or
 * /var/spool/postfix is touched; another Postfix may run on the machine, so processes are only
 * ever selected through this instance (its master's pid, or MAIL_CONFIG in their environment).
 *
 * Also: small /proc readers, an SMTP injector, and a poller.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export const POSTFIX_DAEMONS = '/usr/lib/postfix/sbin';
export const POSTFIX = '/usr/sbin/postfix';
export const SMTP_SINK = '/usr/sbin/smtp-sink';
/** The environment for every Postfix command (master passes its children only import_environment). */
export const COMMAND_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C',
  ...(process.env.TZ === undefined ? {} : { TZ: process.env.TZ }),
};

/** Why the test cannot run here, or undefined. */
export function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  if (spawnSync('id', ['postfix'], { env: COMMAND_ENV }).status !== 0) return 'no postfix user (mail_owner)';
  for (const path of [POSTFIX, SMTP_SINK, '/usr/sbin/postconf', join(POSTFIX_DAEMONS, 'master'), join(POSTFIX_DAEMONS, 'scache')]) {
    if (!existsSync(path)) return `Postfix is not installed (no ${path})`;
  }
  return undefined;
}

/** Deliveries to the sink at the same time (main.cf smtp_destination_concurrency_limit). */
export const SMTP_CONCURRENCY = 2;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 100 ms until it returns something other than undefined/false; throws after `timeoutMs`. */
export async function poll<T>(what: string, timeoutMs: number, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

// ---- /proc --------------------------------------------------------------------------------------

export function alive(pid: number): boolean {
  try {
    // A zombie still has a /proc entry; it no longer runs.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

export function cmdline(pid: number): string[] {
  return readOr(`/proc/${pid}/cmdline`).split('\0').filter((word) => word !== '');
}

export function parentOf(pid: number): number | undefined {
  // The command name in parentheses may hold spaces: the fields after the last ')' are fixed.
  const stat = readOr(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return stat === '' ? undefined : Number(fields[1]);
}

export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

export function environment(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of readOr(`/proc/${pid}/environ`).split('\0')) {
    const at = entry.indexOf('=');
    if (at > 0) env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return env;
}

/** The Uid, Gid and Groups lines of /proc/<pid>/status, as numbers. */
export function credentials(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const numbers = (name: string) =>
    (status.match(new RegExp(`^${name}:(.*)$`, 'm'))?.[1] ?? '')
      .trim()
      .split(/\s+/)
      .filter((word) => word !== '')
      .map(Number);
  return { uid: numbers('Uid'), gid: numbers('Gid'), groups: numbers('Groups').sort((a, b) => a - b) };
}

interface TcpEntry {
  localPort: number;
  remotePort: number;
  state: string;
  inode: string;
}

function tcpTable(): TcpEntry[] {
  return readOr('/proc/net/tcp')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length > 9)
    .map((fields) => ({
      localPort: parseInt(fields[1].split(':')[1], 16),
      remotePort: parseInt(fields[2].split(':')[1], 16),
      state: fields[3],
      inode: fields[9],
    }));
}

const ESTABLISHED = '01';
const LISTEN = '0A';

export function listening(port: number): boolean {
  return tcpTable().some((entry) => entry.localPort === port && entry.state === LISTEN);
}

/** Connections the server on `port` (smtp-sink) still has open (its end not yet closed). */
export function serverSideConnections(port: number): number {
  return tcpTable().filter((entry) => entry.localPort === port && entry.state === ESTABLISHED).length;
}

/** Descriptors of `pid` that are TCP connections to `port`. */
export function connectionsHeldBy(pid: number, port: number): number {
  const inodes = new Set(tcpTable().filter((entry) => entry.remotePort === port).map((entry) => entry.inode));
  let count = 0;
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 0;
  }
  for (const fd of fds) {
    let target = '';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && inodes.has(inode)) count++;
  }
  return count;
}

/** A loopback TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---- users --------------------------------------------------------------------------------------

export function idOf(user: string): { uid: number; gid: number; groups: number[] } {
  const id = (flag: string) => {
    const result = spawnSync('id', [flag, user], { env: COMMAND_ENV, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`id ${flag} ${user}: ${result.stderr}`);
    return result.stdout.trim().split(/\s+/).map(Number);
  };
  return { uid: id('-u')[0], gid: id('-g')[0], groups: id('-G').sort((a, b) => a - b) };
}

// ---- smtp-sink ----------------------------------------------------------------------------------

export interface Sink {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** smtp-sink on 127.0.0.1:port, running as `user`, ending by itself after `messageLimit` messages. */
export async function startSink(port: number, messageLimit: number, user = 'postfix'): Promise<Sink> {
  const child = spawn(SMTP_SINK, ['-u', user, '-M', String(messageLimit), `127.0.0.1:${port}`, '64'], {
    env: COMMAND_ENV,
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    await poll(`smtp-sink to listen on port ${port}`, 15_000, () => {
      if (child.exitCode !== null) throw new Error(`smtp-sink exited with status ${child.exitCode}`);
      return listening(port);
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, child, stop };
}

// ---- SMTP injection -----------------------------------------------------------------------------

/** Sends one message per recipient over one SMTP session to 127.0.0.1:port; resolves with the queue ids. */
export async function sendMessages(port: number, recipients: readonly string[], timeoutMs = 60_000): Promise<string[]> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('latin1');
  const replies: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let failure: Error | undefined;
  let buffered = '';
  const fail = (error: Error) => {
    failure ??= error;
    for (const resolve of waiting.splice(0)) resolve('');
  };
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (!/^\d{3} /.test(line)) continue; // a continuation line of a multi-line reply
      const resolve = waiting.shift();
      if (resolve) resolve(line);
      else replies.push(line);
    }
  });
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('the SMTP server closed the connection')));
  const timer = setTimeout(() => {
    fail(new Error(`SMTP session timed out after ${timeoutMs} ms`));
    socket.destroy();
  }, timeoutMs);
  const reply = () =>
    new Promise<string>((resolve) => {
      if (replies.length > 0) resolve(replies.shift() as string);
      else if (failure) resolve('');
      else waiting.push(resolve);
    });
  const command = async (text: string | undefined, expected: string) => {
    if (text !== undefined) socket.write(`${text}\r\n`);
    const line = await reply();
    if (failure) throw failure;
    if (!line.startsWith(expected)) throw new Error(`SMTP ${text ?? 'greeting'}: expected ${expected}, got: ${line}`);
    return line;
  };
  const ids: string[] = [];
  try {
    await command(undefined, '220');
    await command('EHLO client.e2e.test', '250');
    for (const [index, recipient] of recipients.entries()) {
      await command('MAIL FROM:<sender@client.e2e.test>', '250');
      await command(`RCPT TO:<${recipient}>`, '250');
      await command('DATA', '354');
      const done = await command(`Subject: e2e message ${index + 1}\r\n\r\nmessage ${index + 1} for ${recipient}\r\n.`, '250');
      ids.push(/queued as ([0-9A-F]+)/.exec(done)?.[1] ?? '');
    }
    await command('QUIT', '221');
  } finally {
    clearTimeout(timer);
    socket.removeAllListeners('close');
    socket.destroy();
  }
  return ids;
}

/**
 * Connects to a scache socket and waits for the server's announcement (this starts it under master).
 * Retries while the socket is not there or refuses (e.g. while master re-reads master.cf).
 */
export async function wakeScache(path: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await announcement(path, Math.max(1000, deadline - Date.now()));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

function announcement(path: string, timeoutMs: number): Promise<void> {
  const expected = 'protocol\0connection_cache_protocol\0\0';
  return new Promise<void>((resolve, reject) => {
    const socket = net.connect(path);
    let received = '';
    const timer = setTimeout(() => finish(new Error(`no announcement on ${path} within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.length >= expected.length) {
        finish(received === expected ? undefined : new Error(`unexpected announcement ${JSON.stringify(received)}`));
      }
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error(`${path} closed before the announcement`)));
  });
}

// ---- the instance -------------------------------------------------------------------------------

export interface Delivery {
  queueId: string;
  recipient: string;
  /** 1 for a fresh connection, N for the Nth use of a cached one. */
  connUse: number;
  status: string;
}

const DELIVERY = /postfix\/smtp\[\d+\]: ([0-9A-F]+): to=<([^>]+)>, relay=[^,]+,(?: conn_use=(\d+),)? .*\bstatus=(\w+)/;

export interface InstanceOptions {
  /** Directory for the instance (created). */
  root: string;
  sinkPort: number;
  smtpdPort: number;
}

export class PostfixInstance {
  readonly config: string;
  readonly queue: string;
  readonly data: string;
  readonly daemonDirectory: string;
  readonly maillog: string;
  /** Where the instance's smtpd takes mail. */
  readonly smtpdPort: number;
  /** Every master pid this instance had (for cleanup). */
  private readonly masters = new Set<number>();

  constructor(private readonly options: InstanceOptions) {
    const { root } = options;
    this.config = join(root, 'etc');
    this.queue = join(root, 'queue');
    this.data = join(root, 'data');
    this.daemonDirectory = join(root, 'libexec');
    this.maillog = join(root, 'maillog');
    this.smtpdPort = options.smtpdPort;
  }

  /**
   * Creates the directories (queue: root-owned, Postfix creates its subdirectories; data: owned by
   * mail_owner), copies Debian's daemons into the private daemon_directory (master looks there for
   * every command in master.cf) and writes main.cf. master.cf comes with `configure`.
   */
  create(owner: { uid: number; gid: number }): void {
    const { root } = this.options;
    for (const directory of [root, this.config, this.queue, this.data, this.daemonDirectory]) {
      mkdirSync(directory, { recursive: true });
      chmodSync(directory, 0o755);
    }
    chownSync(this.data, owner.uid, owner.gid);
    chmodSync(this.data, 0o700);
    for (const name of readdirSync(POSTFIX_DAEMONS)) {
      const source = join(POSTFIX_DAEMONS, name);
      const stat = statSync(source);
      if (!stat.isFile()) continue;
      const target = join(this.daemonDirectory, name);
      copyFileSync(source, target);
      chmodSync(target, stat.mode & 0o7777);
    }
    writeFileSync(join(this.config, 'main.cf'), this.mainCf());
  }

  private mainCf(): string {
    const { root, sinkPort } = this.options;
    return [
      '# A throwaway instance for the postfix-scache end-to-end test.',
      'compatibility_level = 3.6',
      `queue_directory = ${this.queue}`,
      `data_directory = ${this.data}`,
      `daemon_directory = ${this.daemonDirectory}`,
      `maillog_file = ${this.maillog}`,
      `maillog_file_prefixes = ${root}`,
      'myhostname = e2e.example.test',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'mydestination = localhost',
      'mynetworks = 127.0.0.0/8',
      'alias_maps =',
      'alias_database =',
      `relayhost = [127.0.0.1]:${sinkPort}`,
      // Without brackets and port (spec §5.4): this forces caching on for the relayhost.
      'smtp_connection_cache_destinations = 127.0.0.1',
      // At most 2 deliveries at a time to the sink, so at most 2 connections are ever opened: every
      // other delivery finds an idle connection in the cache (smtp saves its session before it tells
      // qmgr the delivery is done). Reuse then depends on the cache server alone, not on how fast
      // qmgr ramps up parallel deliveries, which on a loaded machine varies from run to run.
      `smtp_destination_concurrency_limit = ${SMTP_CONCURRENCY}`,
      'connection_cache_ttl_limit = 30s',
      'smtp_connection_cache_time_limit = 20s',
      'smtp_tls_security_level = none',
      'smtpd_tls_security_level = none',
      '',
    ].join('\n');
  }

  /**
   * Writes master.cf: Postfix's services without the port-25 listener, an smtpd on the injection
   * port, postlogd, and `scacheLine` for the scache service.
   */
  configure(scacheLine: string): void {
    const lines = [
      `127.0.0.1:${this.options.smtpdPort} inet n - n - - smtpd`,
      'pickup    unix  n       -       n       60      1       pickup',
      'cleanup   unix  n       -       n       -       0       cleanup',
      'qmgr      unix  n       -       n       300     1       qmgr',
      'tlsmgr    unix  -       -       n       1000?   1       tlsmgr',
      'rewrite   unix  -       -       n       -       -       trivial-rewrite',
      'bounce    unix  -       -       n       -       0       bounce',
      'defer     unix  -       -       n       -       0       bounce',
      'trace     unix  -       -       n       -       0       bounce',
      'verify    unix  -       -       n       -       1       verify',
      'flush     unix  n       -       n       1000?   0       flush',
      'proxymap  unix  -       -       n       -       -       proxymap',
      'smtp      unix  -       -       n       -       -       smtp',
      'relay     unix  -       -       n       -       -       smtp',
      'showq     unix  n       -       n       -       -       showq',
      'error     unix  -       -       n       -       -       error',
      'retry     unix  -       -       n       -       -       error',
      'discard   unix  -       -       n       -       -       discard',
      'local     unix  -       n       n       -       -       local',
      'anvil     unix  -       -       n       -       1       anvil',
      scacheLine,
      'postlog   unix-dgram n  -       n       -       1       postlogd',
      '',
    ];
    writeFileSync(join(this.config, 'master.cf'), lines.join('\n'));
  }

  /** Runs `postfix -c <config> <args>`; throws with its output if it fails. */
  postfix(...args: string[]): string {
    const result = spawnSync(POSTFIX, ['-c', this.config, ...args], { env: COMMAND_ENV, encoding: 'utf8', timeout: 60_000 });
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    if (result.status !== 0) {
      throw new Error(`postfix -c ${this.config} ${args.join(' ')} failed (${result.status ?? result.signal}): ${output}\n${this.logTail()}`);
    }
    return output;
  }

  start(): void {
    this.postfix('start');
    const master = this.masterPid();
    if (master === undefined) throw new Error(`postfix start: no master running\n${this.logTail()}`);
    this.masters.add(master);
  }

  /** The running master's pid, from its pid file. */
  masterPid(): number | undefined {
    const text = readOr(join(this.queue, 'pid', 'master.pid')).trim();
    const pid = Number(text);
    return text !== '' && Number.isInteger(pid) && alive(pid) ? pid : undefined;
  }

  /** The master's live children whose command line (argv) satisfies `wanted`. */
  children(wanted: (argv: string[]) => boolean): number[] {
    const master = this.masterPid();
    if (master === undefined) return [];
    return allPids().filter((pid) => parentOf(pid) === master && alive(pid) && wanted(cmdline(pid)));
  }

  /** Every live process of this instance: started with this MAIL_CONFIG (master and all its children). */
  processes(): number[] {
    return allPids().filter((pid) => pid !== process.pid && alive(pid) && environment(pid).get('MAIL_CONFIG') === this.config);
  }

  /** Stops the instance if it runs, then kills (SIGKILL) whatever of it is left. Never throws. */
  async destroy(): Promise<void> {
    if (this.masterPid() !== undefined) {
      try {
        this.postfix('stop');
      } catch {
        // killed below
      }
    }
    for (const pid of [...this.masters, ...this.processes()]) {
      try {
        if (alive(pid) && (this.masters.has(pid) || environment(pid).get('MAIL_CONFIG') === this.config)) {
          process.kill(pid, 'SIGKILL');
        }
      } catch {
        // gone already
      }
    }
    await poll('the instance to be gone', 10_000, () => this.processes().length === 0).catch(() => undefined);
  }

  log(): string[] {
    return readOr(this.maillog).split('\n').filter((line) => line !== '');
  }

  logTail(lines = 40): string {
    return `--- last lines of ${this.maillog} ---\n${this.log().slice(-lines).join('\n')}`;
  }

  deliveries(): Delivery[] {
    const found: Delivery[] = [];
    for (const line of this.log()) {
      const match = DELIVERY.exec(line);
      if (match) found.push({ queueId: match[1], recipient: match[2], connUse: Number(match[3] ?? 1), status: match[4] });
    }
    return found;
  }

  /** Waits until each recipient has a `status=sent` delivery; fails at once on a bounce or deferral. */
  async waitForDeliveries(recipients: readonly string[], timeoutMs: number): Promise<Delivery[]> {
    const wanted = new Set(recipients);
    return poll(`${recipients.length} deliveries`, timeoutMs, () => {
      const mine = this.deliveries().filter((delivery) => wanted.has(delivery.recipient));
      const bad = mine.find((delivery) => delivery.status !== 'sent');
      if (bad) throw new Error(`delivery to ${bad.recipient}: status=${bad.status}\n${this.logTail()}`);
      return mine.length >= wanted.size ? mine : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.logTail()}`);
    });
  }
}
