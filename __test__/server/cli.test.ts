/**
 * The postfix-scache command (node dist/cli/main.js; build first): serving, its socket, refusing
 * a live socket, replacing a stale one, SIGTERM. Each test runs its own child process, killed at
 * the end whatever happens.
 */
import { afterAll, expect, test } from '@jest/globals';
import { existsSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeFd, listenUnix } from '../../ts/native.js';
import { attrs, BAD, status } from '../support/attrs.js';
import { expectReply, findEndpoint, missEndpoint, saveEndpoint } from '../support/exchanges.js';
import { cleanup, newCached, newClient, onCleanup, owned } from '../support/harness.js';
import { exited, killChildren } from '../support/processes.js';
import { afterTag, spawnCli, startCli } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { sameOpenFile } from '../support/wire.js';
import { sleep } from '../support/time.js';
import { E, P } from '../support/labels.js';

afterAll(async () => {
  await cleanup();
  await killChildren();
  removeTempDirectories();
});

const TAG = 'postfix/postfix-scache: ';

async function cli(path?: string) {
  const server = await startCli(path);
  onCleanup(() => server.stop());
  return server;
}

test.concurrent('serves clients: announcement, save_endp and find_endp with a real descriptor, warnings on stderr', async () => {
  const server = await cli();
  expect(server.stderr.lines).toEqual([`${TAG}listening on ${server.path}`]);
  const client = newClient(server.path);
  const cached = newCached();
  saveEndpoint(client, E, P, cached);
  const other = newClient(server.path);
  expect(await sameOpenFile(owned(findEndpoint(other, E, P)), cached)).toBeUndefined();
  missEndpoint(client, E);
  client.send(attrs(['request', 'foo']));
  expectReply(client, status(BAD));
  expect(await server.stderr.waitForLine(/unrecognized/, 2000)).toBe(`${TAG}warning: unrecognized request: "foo", ignored`);
});

test.concurrent('creates its socket with mode 0600', async () => {
  const server = await cli();
  const stat = statSync(server.path);
  expect(stat.isSocket()).toBe(true);
  expect((stat.mode & 0o7777).toString(8)).toBe('600');
});

test.concurrent('a second server on the same path fails with a clear error and exit status 1; the first keeps serving', async () => {
  const first = await cli();
  const { child, stderr } = spawnCli(['--listen', first.path]);
  expect(await exited(child)).toEqual({ code: 1, signal: null });
  expect(stderr.lines).toEqual([`${TAG}fatal: ${first.path}: a server is already listening on this socket`]);
  missEndpoint(newClient(first.path), E);
});

test.concurrent('refuses a path that holds something other than a socket, and leaves it alone', async () => {
  const path = join(tempDirectory(), 'scache');
  writeFileSync(path, 'precious');
  const { child, stderr } = spawnCli(['--listen', path]);
  expect(await exited(child)).toEqual({ code: 1, signal: null });
  expect(stderr.lines).toEqual([`${TAG}fatal: ${path}: exists and is not a socket`]);
  expect(readFileSync(path, 'utf8')).toBe('precious');
});

test.concurrent('replaces a stale socket file left by a dead server', async () => {
  const path = join(tempDirectory(), 'scache');
  closeFd(listenUnix(path)); // bound, then closed: the file stays, nobody listens
  expect(statSync(path).isSocket()).toBe(true);
  const server = await cli(path);
  missEndpoint(newClient(server.path), E);
  expect((statSync(path).mode & 0o7777).toString(8)).toBe('600');
});

test.concurrent('SIGTERM: exit status 0, cached connections closed, socket removed, statistics logged', async () => {
  const server = await cli();
  const client = newClient(server.path);
  const [a, b] = [newCached(), newCached()];
  saveEndpoint(client, E, P, a, 100);
  saveEndpoint(client, E, P, b, 100);
  // The CLI prints "listening on" before it installs its SIGTERM handler (ts/cli/main.ts), so a
  // signal sent the moment that line appears can still meet the default action (death by SIGTERM,
  // no cleanup). Give it a moment; see the report on that race.
  await sleep(200);
  server.child.kill('SIGTERM');
  expect(await exited(server.child)).toEqual({ code: 0, signal: null });
  expect(await a.eofWithin(1000)).toBeDefined();
  expect(await b.eofWithin(1000)).toBeDefined();
  expect(await client.closedWithin(1000)).toBe(true);
  expect(existsSync(server.path)).toBe(false);
  const records = server.stderr.lines.slice(1).map(afterTag);
  expect(records).toHaveLength(2);
  expect(records[0]).toMatch(/^statistics: start interval [A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]$/);
  expect(records[1]).toBe('statistics: max simultaneous domains=0 addresses=1 connection=2');
});
