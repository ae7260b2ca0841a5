/**
 * Helpers for the hardening suites: our server as a child process (optionally under a descriptor
 * limit, set with the shell's `ulimit` so that no extra tool is needed), its stderr with arrival
 * times, what /proc says about it (descriptors, CPU time, memory), load-generating workers run as
 * separate processes (worker.mjs) so that clients really run at the same time as the server and as
 * each other, and the figures each test reports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, running, track } from '../support/processes.js';
import { afterTag, CLI, logText, REPO_ROOT } from '../support/servers.js';
import { tempDirectory } from '../support/temp.js';
import { now, sleep } from '../support/time.js';

// ---------------------------------------------------------------------------------------------
// Figures

/**
 * Prints one measured figure as `reliability: <what>: <value>` (the README's Reliability section
 * quotes these lines), and appends it to $SCACHE_FIGURES_FILE when that is set.
 */
export function figure(what: string, value: string | number): void {
  const line = `reliability: ${what}: ${value}\n`;
  process.stdout.write(line);
  const file = process.env.SCACHE_FIGURES_FILE;
  if (file) appendFileSync(file, line);
}

/** A count from the environment (to scale a suite up or down), else `ciDefault`. */
export function scaled(name: string, ciDefault: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : ciDefault;
}

export interface Distribution {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function distribution(values: number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { n: sorted.length, min: sorted[0] ?? NaN, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

export function ms(value: number): string {
  return value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(2)} ms`;
}

export function describeMs(d: Distribution): string {
  return `n=${d.n} min ${ms(d.min)}, p50 ${ms(d.p50)}, p90 ${ms(d.p90)}, p99 ${ms(d.p99)}, max ${ms(d.max)}`;
}

// ---------------------------------------------------------------------------------------------
// /proc

/** Descriptors the process has open (those numbered below `below`, if given). */
export function openFds(pid: number, below = Infinity): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => Number(fd) < below).length;
}

/** CPU time (user + system, all threads) in clock ticks (1/100 s on Linux). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
  return Number(fields[11]) + Number(fields[12]);
}

/** CPU used over `ms` milliseconds, in percent of one CPU. */
export async function cpuPercentOver(pid: number, ms: number): Promise<number> {
  const before = cpuTicks(pid);
  const started = now();
  await sleep(ms);
  const ticks = cpuTicks(pid) - before;
  return (ticks * 10 * 100) / (now() - started);
}

/** Resident memory and its peak (VmRSS, VmHWM), in KiB. */
export function memoryKiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** How many threads the process runs. */
export function threads(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

// ---------------------------------------------------------------------------------------------
// Our server as a child process

export interface Line {
  at: number;
  text: string;
}

export interface ServerProcess {
  readonly path: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** stderr records (after the `postfix/postfix-scache: ` tag), with the time each arrived. */
  readonly lines: Line[];
  readonly records: () => string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string | undefined>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServerProcessOptions {
  /** RLIMIT_NOFILE (soft and hard) for the server, set by `ulimit -n` before node starts. */
  nofile?: number;
  /** Raises the soft RLIMIT_NOFILE to this (or to the hard limit, if that is lower). */
  raiseNofile?: number;
  args?: string[];
  /** Extra `node` options placed before the CLI (e.g. `--import` of a preload). */
  nodeArgs?: string[];
  path?: string;
}

/** Runs `node dist/cli/main.js --listen PATH ...` and waits until it is listening. */
export async function startServerProcess(options: ServerProcessOptions = {}): Promise<ServerProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const path = options.path ?? join(tempDirectory('scache-hard-'), 'scache');
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const argv = [...(options.nodeArgs ?? []), CLI, '--listen', path, ...(options.args ?? [])];
  let limit = options.nofile === undefined ? '' : `ulimit -n ${options.nofile} || exit 99; `;
  if (options.raiseNofile !== undefined) {
    limit += `ulimit -S -n ${options.raiseNofile} 2>/dev/null || ulimit -S -n "$(ulimit -H -n)"; `;
  }
  const child = track(
    spawn('/bin/sh', ['-c', `${limit}exec "$0" "$@"`, process.execPath, ...argv], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  const lines: Line[] = [];
  let partial = Buffer.alloc(0);
  child.stderr!.on('data', (chunk: Buffer) => {
    let data = Buffer.concat([partial, chunk]);
    const at = now();
    for (let end = data.indexOf(0x0a); end >= 0; end = data.indexOf(0x0a)) {
      lines.push({ at, text: afterTag(logText(data.subarray(0, end))) });
      data = data.subarray(end + 1);
    }
    partial = data;
  });
  const waitForLine = async (pattern: RegExp, timeoutMs = 5000) => {
    const deadline = now() + timeoutMs;
    for (;;) {
      const found = lines.find((line) => pattern.test(line.text));
      if (found) return found.text;
      if (now() > deadline || !running(child)) return undefined;
      await sleep(10);
    }
  };
  if ((await waitForLine(/^listening on /, 15_000)) === undefined) {
    child.kill('SIGKILL');
    throw new Error(`the server did not start: ${lines.map((line) => line.text).join('\n')}`);
  }
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  return {
    path,
    child,
    pid: child.pid!,
    lines,
    records: () => lines.map((line) => line.text).filter((text) => !text.startsWith('listening on ')),
    waitForLine,
    stop: () =>
      (stopping ??= (async () => {
        if (running(child)) child.kill('SIGTERM');
        return exited(child);
      })()),
  };
}

// ---------------------------------------------------------------------------------------------
// Workers

const WORKER = join(REPO_ROOT, '__test__/hardening/worker.mjs');

export interface Worker<T> {
  readonly child: ChildProcess;
  /** The worker's JSON report, once it has exited. */
  readonly result: Promise<T>;
}

/**
 * Starts `node worker.mjs <mode> <json>` with its descriptor soft limit raised to `nofile` (up to
 * the hard limit), and parses the JSON it prints when done.
 */
export function startWorker<T>(mode: string, options: object, nofile = 4096): Worker<T> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = track(
    spawn(
      '/bin/sh',
      ['-c', `ulimit -S -n ${nofile} 2>/dev/null || ulimit -S -n "$(ulimit -H -n)"; exec "$0" "$@"`, process.execPath, WORKER, mode, JSON.stringify(options)],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const result = exited(child).then(({ code, signal }) => {
    if (code !== 0) throw new Error(`worker ${mode} exited with ${code ?? signal}: ${err}${out}`);
    return JSON.parse(out) as T;
  });
  // A rejection nobody awaited yet must not be reported as unhandled.
  result.catch(() => {});
  return { child, result };
}

/** A file whose existence tells running workers to stop. */
export function stopFile(): { path: string; stop: () => void } {
  const path = join(tempDirectory('scache-stop-'), 'stop');
  return { path, stop: () => appendFileSync(path, '') };
}

export interface LatencyReport {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface GoodReport {
  cycles: number;
  errors: number;
  errorSamples: string[];
  /** One save_endp exchange, one find_endp exchange (request → reply → dummy → fd → dummy). */
  save: LatencyReport;
  find: LatencyReport;
  exchange: LatencyReport;
}

export interface MalformedReport {
  sent: number;
  perClass: Record<string, number>;
  expectedWarnings: number;
  errors: number;
  errorSamples: string[];
}
