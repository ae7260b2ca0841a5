/**
 * Who can reach the stand-alone socket, and what the logs reveal:
 *
 * - the socket is created mode 0600 (the mode is set on the socket before bind(), so it is never
 *   wider, even for an instant);
 * - `--group NAME` makes it 0660 and owned by that group: ts/cli/standalone.ts, right after the
 *   server has created it (0600), gives it to the group and only then adds the group's bits, so at
 *   no moment can anyone outside owner and group connect; polled here from the first moment the
 *   file exists. Run as root, a process of another user in that group can connect, and one outside
 *   it cannot;
 * - connection labels and properties never appear in the logs at non-verbose levels, whatever
 *   happens to the connections (saves, lookups, refused requests, failed descriptor transfers,
 *   clients vanishing, dead peers, expiry, statistics); with --verbose they do (transaction lines).
 */
import { afterAll, expect, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeFd, socketpair } from '../../ts/native.js';
import { attrs, DUMMY, FAIL, FD_BYTE, findDest, findEndp, findEndpReply, OK, saveDest, saveEndp, status } from '../support/attrs.js';
import { expectReply, findDestination, findEndpoint, missDestination, missEndpoint, saveBinding, saveEndpoint } from '../support/exchanges.js';
import { exited, killChildren, track } from '../support/processes.js';
import { CLI } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { now, sleep } from '../support/time.js';
import { CachedConnection, Client } from '../support/wire.js';
import { figure, startServerProcess } from './support.js';

afterAll(async () => {
  await killChildren();
  removeTempDirectories();
});

const results: string[] = [];
afterAll(() => figure('socket permissions and logs', results.join('; ')));

/** A group to give the socket to: as root any but root's; otherwise one we belong to. */
function someGroup(): { name: string; gid: number } {
  const groups = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => fields.length >= 3 && /^[0-9]+$/.test(fields[2]!))
    .map((fields) => ({ name: fields[0]!, gid: Number(fields[2]) }));
  const mine = new Set(process.getgroups?.() ?? []);
  const usable = process.getuid?.() === 0 ? groups.filter((group) => group.gid !== 0) : groups.filter((group) => mine.has(group.gid));
  return usable.find((group) => group.name === 'mail') ?? usable[0]!;
}

test('the socket is mode 0600 by default', async () => {
  const server = await startServerProcess();
  expect((lstatSync(server.path).mode & 0o777).toString(8)).toBe('600');
  await server.stop();
  results.push('default socket mode 0600');
});

test('--group NAME: mode 0660, owned by the group, never reachable more widely on the way', async () => {
  const group = someGroup();
  const directory = tempDirectory('scache-group-');
  chmodSync(directory, 0o711);
  const path = join(directory, 'scache');
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = track(spawn(process.execPath, [CLI, '--listen', path, '--group', group.name], { env, stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // Watch the file from the moment it appears until it is final: every state seen must be owner
  // only, or owner and the intended group.
  const states = new Set<string>();
  const deadline = now() + 15_000;
  for (;;) {
    try {
      const stat = lstatSync(path);
      const mode = stat.mode & 0o777;
      states.add(`${mode.toString(8)} gid=${stat.gid}`);
      expect(mode & 0o007).toBe(0);
      if (mode & 0o070) expect(stat.gid).toBe(group.gid);
      if (mode === 0o660) break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (now() > deadline) throw new Error(`the socket never became 0660: ${[...states].join(', ')}; ${stderr}`);
  }
  for (let i = 0; i < 50 && !stderr.includes('listening on'); i++) await sleep(20);
  expect(stderr).toBe(`postfix/postfix-scache: listening on ${path}\n`);
  const final = lstatSync(path);
  expect([(final.mode & 0o777).toString(8), final.gid]).toEqual(['660', group.gid]);

  let access = 'not checked (needs root)';
  if (process.getuid?.() === 0) {
    // Another user: allowed in the group, refused outside it.
    const connect = (gid: number) =>
      spawnSync(process.execPath, ['-e', `require('net').connect(${JSON.stringify(path)}).on('connect', () => process.exit(0)).on('error', (e) => { console.log(e.code); process.exit(1); })`], {
        uid: 65534,
        gid,
        encoding: 'utf8',
        env: {},
      });
    const outsider = group.gid === 65534 ? 65533 : 65534;
    const inGroup = connect(group.gid);
    const outside = connect(outsider);
    expect([inGroup.status, outside.status, outside.stdout.trim()]).toEqual([0, 1, 'EACCES']);
    access = `uid 65534 in group ${group.name} connects, outside it gets EACCES`;
  }
  child.kill('SIGTERM');
  expect(await exited(child)).toEqual({ code: 0, signal: null });
  results.push(`--group ${group.name}: states seen while starting ${[...states].join(' -> ')}; ${access}`);
});

test('--group with an unknown group: fatal, exit status 1, no socket', async () => {
  const path = join(tempDirectory(), 'scache');
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const result = spawnSync(process.execPath, [CLI, '--listen', path, '--group', 'no-such-group-xyzzy'], { env, encoding: 'utf8' });
  expect(result.status).toBe(1);
  expect(result.stderr).toBe('postfix/postfix-scache: fatal: unknown group: no-such-group-xyzzy\n');
  expect(() => lstatSync(path)).toThrow();
});

const LABEL = 'smtp\n192.0.2.77\n25\nSECRET-LABEL\n';
const PROPERTY = 'tls_level=0\nSECRET-PROPERTY=1\n';
const DEST = 'smtp\nSECRET-DEST.example\n';
const DEST_PROPERTY = 'destination=SECRET-DEST-PROPERTY\n';

/** Everything that can happen to connections with secret labels and properties. */
async function everything(path: string): Promise<void> {
  const client = Client.connect(path);
  const [a, b, c, dead] = [new CachedConnection(), new CachedConnection(), new CachedConnection(), new CachedConnection()];
  saveEndpoint(client, LABEL, PROPERTY, a, 1);
  saveEndpoint(client, LABEL, PROPERTY, b, 1);
  saveEndpoint(client, LABEL, PROPERTY, dead, 1);
  saveBinding(client, DEST, DEST_PROPERTY, LABEL, 1);
  findDestination(client, DEST, DEST_PROPERTY, PROPERTY).close();
  findEndpoint(client, LABEL, PROPERTY).close();
  // The dead peer is evicted; then misses.
  dead.destroy();
  await sleep(100);
  missEndpoint(client, LABEL);
  missDestination(client, DEST);
  // Refused requests, with the secret attributes in their proper places.
  for (const ttl of ['0', 'abc', '4294967295']) {
    client.send(saveEndp(ttl, LABEL, PROPERTY));
    expectReply(client, status(1));
    client.send(saveDest(ttl, DEST, DEST_PROPERTY, LABEL));
    expectReply(client, status(1));
  }
  client.send(attrs(['request', 'save_endp'], ['ttl', '1'], ['label', LABEL]));
  expectReply(client, status(1));
  client.send(attrs(['request', 'save_endp'], ['ttl', '1'], ['label', LABEL], ['property', PROPERTY], ['x', 'y']));
  expectReply(client, DUMMY);
  client.send(FD_BYTE);
  expectReply(client, status(FAIL));
  // Descriptor transfers that fail, and clients that vanish.
  const [x, xPeer] = socketpair();
  const [y, yPeer] = socketpair();
  client.send(saveEndp(1, LABEL, PROPERTY));
  expectReply(client, DUMMY);
  client.sendDescriptors([x!, y!]);
  expectReply(client, status(FAIL));
  [x!, xPeer!, y!, yPeer!].forEach(closeFd);
  const vanishing = Client.connect(path);
  vanishing.send(saveEndp(1, LABEL, PROPERTY));
  expectReply(vanishing, DUMMY);
  vanishing.close();
  saveEndpoint(client, LABEL, PROPERTY, c, 1);
  const impatient = Client.connect(path);
  impatient.send(findEndp(LABEL));
  expectReply(impatient, findEndpReply(OK, PROPERTY));
  impatient.close();
  // Expiry.
  const expiring = new CachedConnection();
  saveEndpoint(client, LABEL, PROPERTY, expiring, 1);
  expect(await expiring.eofWithin(2500)).toBeDefined();
  client.send(findDest(DEST));
  expectReply(client, attrs(['status', '2'], ['property', ''], ['property', '']));
  client.close();
  [a, b, c, expiring].forEach((cached) => cached.destroy());
}

test('labels and properties never reach the logs at non-verbose levels; with --verbose they do', async () => {
  const quiet = await startServerProcess();
  await everything(quiet.path);
  await sleep(200);
  expect(await quiet.stop()).toEqual({ code: 0, signal: null });
  const lines = quiet.records();
  expect(lines.some((line) => line.startsWith('warning: '))).toBe(true);
  expect(lines.some((line) => line.startsWith('statistics: '))).toBe(true);
  expect(lines.filter((line) => /SECRET/.test(line))).toEqual([]);

  const verbose = await startServerProcess({ args: ['--verbose'] });
  await everything(verbose.path);
  await verbose.stop();
  expect(verbose.records().filter((line) => /SECRET/.test(line)).length).toBeGreaterThan(0);
  results.push(
    `a run through every outcome logged ${lines.length} records (${lines.filter((line) => line.startsWith('warning: ')).length} warnings), ` +
      'none with a label or property; with --verbose the transaction lines show them',
  );
}, 30_000);
