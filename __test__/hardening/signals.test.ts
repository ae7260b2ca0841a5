/**
 * Signals and faults, stand-alone:
 *
 * - SIGTERM and SIGINT close every cached connection (their peers see end-of-file at once, long
 *   before their ttl), remove the socket, log the statistics and exit 0;
 * - a JavaScript exception — in a timer, in a handler of the core's events, or a rejected promise
 *   nobody handles — is logged as `fatal: uncaught exception: ...` and the process exits 1 at once:
 *   never a hang, never a silent abort. The faults are injected from outside the program (a module
 *   preloaded with `node --import`), so production code carries no test hook;
 * - a panic reported by the core (ScacheServer 'error'): under master, the daemon logs `panic:` and
 *   exits 1. Nothing a client can send makes the core panic (the fuzz tests in
 *   crates/scache-core/tests/fuzz.rs try), so this is checked with a stand-in server object; the
 *   core's own side — a panic on its thread becomes that event, and the descriptors it held are
 *   closed — is tested in crates/scache-core/tests/faults.rs.
 */
import { afterAll, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { saveEndpoint } from '../support/exchanges.js';
import { exited, killChildren, track } from '../support/processes.js';
import { REPO_ROOT } from '../support/servers.js';
import { removeTempDirectories } from '../support/temp.js';
import { now } from '../support/time.js';
import { CachedConnection, Client } from '../support/wire.js';
import { figure, startServerProcess } from './support.js';
import { E, P } from '../support/labels.js';

afterAll(async () => {
  await killChildren();
  removeTempDirectories();
});


const results: string[] = [];
afterAll(() => figure('signals and faults', results.join('; ')));

test.each(['SIGTERM', 'SIGINT'] as const)('%s closes every cached connection at once, removes the socket and exits 0', async (signal) => {
  const server = await startServerProcess();
  const client = Client.connect(server.path);
  const connections = Array.from({ length: 20 }, () => new CachedConnection());
  // ttl 100 s (clamped to the 2 s limit): only the shutdown can close them within a few ms.
  for (const cached of connections) saveEndpoint(client, E, P, cached, 100);
  const sentAt = now();
  server.child.kill(signal);
  expect(await exited(server.child)).toEqual({ code: 0, signal: null });
  const closedAt = await Promise.all(connections.map((cached) => cached.eofWithin(1000)));
  expect(closedAt.every((at) => at !== undefined)).toBe(true);
  const slowest = Math.max(...closedAt.map((at) => at! - sentAt));
  expect(slowest).toBeLessThan(1000);
  expect(existsSync(server.path)).toBe(false);
  expect(server.records()).toContain('statistics: max simultaneous domains=0 addresses=1 connection=20');
  client.close();
  connections.forEach((cached) => cached.destroy());
  results.push(`${signal}: 20 cached connections closed within ${slowest.toFixed(0)} ms, exit 0`);
});

const FAULTS = {
  'an exception thrown in a timer': `setTimeout(() => { throw new Error('injected fault'); }, 300);`,
  'an exception thrown while handling the core\'s events':
    `import { EventEmitter } from 'node:events';
     const emit = EventEmitter.prototype.emit;
     EventEmitter.prototype.emit = function (name, ...args) {
       if (name === 'clients' && args[0] === 1) throw new Error('injected fault');
       return emit.call(this, name, ...args);
     };`,
  'a rejected promise nobody handles': `setTimeout(() => Promise.reject(new Error('injected fault')), 300);`,
};

test.each(Object.entries(FAULTS))('%s: logged as fatal, exit status 1, at once', async (what, preload) => {
  const server = await startServerProcess({ nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(preload)}`] });
  const started = now();
  // The event fault needs a client to make the core report one.
  const client = what.includes('events') ? Client.connect(server.path) : undefined;
  expect(await exited(server.child)).toEqual({ code: 1, signal: null });
  const seconds = (now() - started) / 1000;
  client?.close();
  const fatal = server.records().find((line) => line.startsWith('fatal: '));
  expect(fatal).toMatch(/^fatal: uncaught exception: Error: injected fault/);
  expect(seconds).toBeLessThan(3);
  results.push(`${what}: "fatal: uncaught exception: Error: injected fault", exit 1 after ${seconds.toFixed(1)} s`);
});

test('a panic in the core, under master: logged as panic, exit status 1', async () => {
  // The daemon's supervisor with a stand-in for ScacheServer that reports a core panic.
  const script = `
    import { EventEmitter } from 'node:events';
    import { superviseDaemon } from ${JSON.stringify(join(REPO_ROOT, 'dist/daemon/lifecycle.js'))};
    import { createLogger, stderrTransport } from ${JSON.stringify(join(REPO_ROOT, 'dist/logging/logger.js'))};
    const server = new EventEmitter();
    let beats = 0;
    server.loopHeartbeat = () => beats++;
    server.close = async () => {};
    const logger = createLogger([stderrTransport('postfix/scache')]);
    superviseDaemon(server, logger, { maxIdleMs: 100000, daemonTimeoutMs: 18000000, verbose: false });
    setTimeout(() => server.emit('error', new Error('server thread panicked: injected panic')), 100);
  `;
  const child = track(spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  expect(await exited(child)).toEqual({ code: 1, signal: null });
  expect(stderr).toBe('postfix/scache: panic: server thread panicked: injected panic\n');
  results.push('a core panic under master: "panic: server thread panicked: ...", exit 1');
});
