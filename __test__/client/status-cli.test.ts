/**
 * `postfix-scache status` (ts/cli/status.ts), run as the built command (node dist/cli/main.js; build
 * first) against our server — as the CLI in a child process — holding a few connections and
 * bindings: the human table, --json, --limit, and clear errors for an absent socket and for
 * Postfix's own scache. The table's exact layout is checked on a fixed snapshot.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ScacheClient, type CacheStatus } from '../../ts/index.js';
import { duration, formatStatus, oneLine } from '../../ts/cli/status.js';
import { defaultSocketPath } from '../../ts/cli/standalone.js';
import { killChildren } from '../support/processes.js';
import { CLI, startCli, startPostfixScache } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { closeAll, connectedPair, onClose } from './helpers.js';
import { D } from '../support/labels.js';

afterAll(async () => {
  await closeAll();
  await killChildren();
  removeTempDirectories();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function status(args: string[]): Promise<Run> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'status', ...args], { env }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

const E1 = 'smtp\n192.0.2.1\n25\n0\n';
const E2 = 'smtp\n2001:db8::25\n25\n0\n';

/** Our server (the CLI) holding 3 connections under 2 endpoints and 2 destination bindings. */
async function populatedServer() {
  const server = await startCli();
  onClose(() => server.stop());
  const cache = await ScacheClient.connect(server.path);
  onClose(() => cache.close());
  for (const [label, property] of [
    [E1, 'tls_level=0\nreuse_count=0\n'],
    [E1, 'tls_level=0\nreuse_count=3\n'],
    [E2, 'tls_level=0\nreuse_count=1\n'],
  ] as const) {
    const { local } = await connectedPair('tcp');
    expect(await cache.saveEndp(2, label, property, local)).toBe('ok');
  }
  expect(await cache.saveDest(2, D, 'destination=example.com\n', E1)).toBe('ok');
  expect(await cache.saveDest(2, D, 'destination=example.com\n', E2)).toBe('ok');
  return server;
}

describe('against our server', () => {
  test('prints counts, then destinations and connections with ages and remaining ttls', async () => {
    const server = await populatedServer();
    const run = await status(['--socket', server.path]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(`postfix-scache at ${server.path}: 1 destination, 2 endpoints, 3 connections`);
    expect(lines[1]).toBe('');
    expect(lines[2]).toMatch(/^DESTINATION +ENDPOINT +TTL +PROPERTY$/);
    expect(lines[3]).toMatch(/^smtp example\.com +smtp 192\.0\.2\.1 25 0 +(1\.\d|2\.0)s +destination=example\.com$/);
    expect(lines[4]).toMatch(/^smtp example\.com +smtp 2001:db8::25 25 0 +(1\.\d|2\.0)s +destination=example\.com$/);
    expect(lines[5]).toBe('');
    expect(lines[6]).toMatch(/^ENDPOINT +AGE +TTL +PROPERTY$/);
    expect(lines[7]).toMatch(/^smtp 192\.0\.2\.1 25 0 +\d+ms +(1\.\d|2\.0)s +tls_level=0 reuse_count=0$/);
    expect(lines[8]).toMatch(/^smtp 192\.0\.2\.1 25 0 +\d+ms +(1\.\d|2\.0)s +tls_level=0 reuse_count=3$/);
    expect(lines[9]).toMatch(/^smtp 2001:db8::25 25 0 +\d+ms +(1\.\d|2\.0)s +tls_level=0 reuse_count=1$/);
    expect(lines.slice(10)).toEqual(['']);
    // The columns line up.
    expect(lines[7]!.indexOf('ms')).toBeLessThan(lines[6]!.indexOf('TTL'));
    expect(lines[3]!.indexOf('smtp 192')).toBe(lines[2]!.indexOf('ENDPOINT'));
  });

  test('--json: the same status for programs, with the socket', async () => {
    const server = await populatedServer();
    const run = await status(['--socket', server.path, '--json']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const document = JSON.parse(run.stdout) as CacheStatus & { socket: string };
    expect(document).toMatchObject({ socket: server.path, destinationsCount: 1, endpointsCount: 2, connectionsCount: 3 });
    expect(document.destinations).toEqual([
      {
        label: D,
        bindings: [
          { endpoint: E1, property: 'destination=example.com\n', ttlMs: expect.any(Number) },
          { endpoint: E2, property: 'destination=example.com\n', ttlMs: expect.any(Number) },
        ],
      },
    ]);
    const connections = document.endpoints.flatMap((endpoint) => endpoint.connections.map((c) => [endpoint.label, c.property]));
    expect(connections).toEqual([
      [E1, 'tls_level=0\nreuse_count=0\n'],
      [E1, 'tls_level=0\nreuse_count=3\n'],
      [E2, 'tls_level=0\nreuse_count=1\n'],
    ]);
    for (const endpoint of document.endpoints) {
      for (const connection of endpoint.connections) {
        expect(connection.ageMs).toBeGreaterThanOrEqual(0);
        expect(connection.ttlMs).toBeLessThanOrEqual(2000);
      }
    }
  });

  test('--limit N lists at most N destinations and N endpoints, and says so', async () => {
    const server = await populatedServer();
    const run = await status(['--socket', server.path, '--limit', '1']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('1 destination, 2 endpoints, 3 connections');
    expect(run.stdout).toContain('(1 of 2 endpoints listed: raise --limit)\n');
    expect(run.stdout).toMatch(/^smtp 192\.0\.2\.1 25 0 +\d+ms/m);
    expect(run.stdout).not.toMatch(/^smtp 2001:db8::25 25 0 +\d+ms/m);
    const json = JSON.parse((await status(['--socket', server.path, '--limit', '0', '--json'])).stdout) as CacheStatus;
    expect(json).toMatchObject({ endpointsCount: 2, endpoints: [], destinations: [] });
    expect((await status(['--socket', server.path, '--limit', '-1'])).code).toBe(1);
  });

  test('an empty cache: just the counts', async () => {
    const server = await startCli();
    onClose(() => server.stop());
    const run = await status(['--socket', server.path]);
    expect(run).toEqual({
      code: 0,
      stdout: `postfix-scache at ${server.path}: 0 destinations, 0 endpoints, 0 connections\n`,
      stderr: '',
    });
  });
});

describe('clear errors, exit status 1', () => {
  test('no socket there', async () => {
    const path = join(tempDirectory(), 'absent');
    expect(await status(['--socket', path])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `postfix-scache status: no server answers at ${path} (No such file or directory); ` +
        `start one with \`postfix-scache --listen ${path}\`, or name its socket with --socket\n`,
    });
  });

  test('the default socket is the stand-alone server’s', async () => {
    if (existsSync(defaultSocketPath())) return; // a server of this user runs there: nothing to prove
    const run = await status([]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`no server answers at ${defaultSocketPath()} `);
  });

  test("Postfix's own scache", async () => {
    const postfix = startPostfixScache();
    onClose(() => postfix.stop());
    expect(await status(['--socket', postfix.path])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `postfix-scache status: ${postfix.path} is not postfix-scache: it does not know the status request ` +
        "(Postfix's own scache answers status=1)\n",
    });
  });
});

describe('the table', () => {
  test('durations: milliseconds, tenths of seconds, seconds, minutes, hours', () => {
    expect([0, 999, 1000, 1999, 9999, 10_000, 59_999, 60_000, 125_000, 3_600_000, 3_725_000].map(duration)).toEqual([
      '0ms',
      '999ms',
      '1.0s',
      '1.9s',
      '9.9s',
      '10s',
      '59s',
      '1m00s',
      '2m05s',
      '1h00m',
      '1h02m',
    ]);
  });

  test('labels and properties on one line: fields joined by spaces, control bytes escaped, empty as -', () => {
    expect(oneLine('smtp\n192.0.2.1\n25\n0\n')).toBe('smtp 192.0.2.1 25 0');
    expect(oneLine('a=1\nb=2\n\n')).toBe('a=1 b=2');
    expect(oneLine('bad\x01\ttext')).toBe('bad\\x01\\x09text');
    expect(oneLine('')).toBe('-');
  });

  test('exact layout', () => {
    const snapshot: CacheStatus = {
      destinationsCount: 2,
      endpointsCount: 1,
      connectionsCount: 2,
      destinations: [{ label: 'smtp\nexample.com\n', bindings: [{ endpoint: 'smtp\n192.0.2.1\n25\n0\n', property: 'q=1\n', ttlMs: 1500 }] }],
      endpoints: [
        {
          label: 'smtp\n192.0.2.1\n25\n0\n',
          connections: [
            { property: 'reuse_count=0\n', ageMs: 12_000, ttlMs: 48_000 },
            { property: '', ageMs: 5, ttlMs: 59_995 },
          ],
        },
      ],
    };
    expect(formatStatus(snapshot, '/s')).toBe(
      'postfix-scache at /s: 2 destinations, 1 endpoint, 2 connections\n' +
        '\n' +
        'DESTINATION       ENDPOINT             TTL   PROPERTY\n' +
        'smtp example.com  smtp 192.0.2.1 25 0  1.5s  q=1\n' +
        '(1 of 2 destinations listed: raise --limit)\n' +
        '\n' +
        'ENDPOINT             AGE  TTL  PROPERTY\n' +
        'smtp 192.0.2.1 25 0  12s  48s  reuse_count=0\n' +
        'smtp 192.0.2.1 25 0  5ms  59s  -\n',
    );
  });
});
