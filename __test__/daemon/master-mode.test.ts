/**
 * Our daemon as master(8) runs it, side by side with Postfix's scache started the same way (argv,
 * descriptors 0-6, environment; see startLikeMaster in support/servers.ts): the status records on
 * fd 5, exit on master disconnect (postfix reload) and after max_idle, -S, and the refusals.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attrs, findEndp, findEndpReply, FAIL, show } from '../support/attrs.js';
import { killChildren, exited } from '../support/processes.js';
import { CLI, POSTFIX_SCACHE, startOursUnderMaster, startPostfixScache, type PostfixScache } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { waitFor } from '../support/time.js';
import { WireConnection } from '../../ts/native.js';

afterAll(async () => {
  await killChildren();
  removeTempDirectories();
});

const SIDES = { ours: startOursUnderMaster, postfix: startPostfixScache } as const;
const MISS = findEndpReply(FAIL, '');

/** One find_endp miss on a fresh connection; returns the reply bytes. */
function missOnce(server: PostfixScache): string {
  const client = WireConnection.connect(server.path);
  try {
    client.read(36, 5000);
    client.write(Buffer.from(findEndp('smtp\nx\n25\n0\n')));
    return show(client.read(MISS.length, 5000));
  } finally {
    client.close();
  }
}

/** The 12-byte status records written so far, as [pid, generation, avail]. */
function records(server: PostfixScache): Array<[number, number, number]> {
  const bytes = server.status();
  const out: Array<[number, number, number]> = [];
  for (let at = 0; at + 12 <= bytes.length; at += 12) {
    out.push([bytes.readInt32LE(at), bytes.readUInt32LE(at + 4), bytes.readInt32LE(at + 8)]);
  }
  return out;
}

describe.each(Object.entries(SIDES))('%s under a master-like parent', (_side, start) => {
  test('input is bracketed by TAKEN and AVAIL records carrying the pid and the octal GENERATION', async () => {
    const server = start({}, { generation: '17' });
    expect(missOnce(server)).toBe(show(MISS));
    expect(await waitFor(() => records(server).length >= 2, 5000)).toBe(true);
    const [taken, available] = records(server);
    expect(taken).toEqual([server.child.pid, 0o17, 0]);
    expect(available).toEqual([server.child.pid, 0o17, 1]);
    await server.stop();
  });

  test('master going away (postfix reload) ends the process with status 0 after its statistics', async () => {
    const server = start();
    missOnce(server);
    server.statusChannel.destroy();
    expect(await exited(server.child)).toEqual({ code: 0, signal: null });
    expect(server.records).toContain('statistics: address lookup hits=0 miss=1 success=0%');
  });

  test('max_idle without clients ends the process with status 0', async () => {
    const started = Date.now();
    const server = start({ max_idle: '1s' });
    expect(await exited(server.child)).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  test('-n names the stream in warnings', async () => {
    const server = start({}, { extraArgs: ['-n', 'cachex'] });
    const client = WireConnection.connect(server.path);
    client.read(36, 5000);
    client.write(Buffer.from(attrs(['foo', 'bar'])));
    expect(await server.stderr.waitForLine(/unexpected attribute foo from cachex socket \(expecting: request\)/)).toBeDefined();
    client.close();
    await server.stop();
  });
});

describe('refusals, compared with Postfix', () => {
  const config = tempDirectory('scache-refusals-');
  writeFileSync(join(config, 'main.cf'), `queue_directory = ${config}\n`);

  function run(file: string, args: string[]): { status: number | null; stderr: string } {
    const result = spawnSync(file, args, {
      env: { MAIL_CONFIG: config, POSTFIX_SCACHE_PROCESS_NAME: 'scache', PATH: process.env.PATH },
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    // Only the text after the tag: Postfix 3.7 can garble its -V tag (see support/servers.ts).
    const lines = result.stderr.split('\n').filter(Boolean).map((line) => line.slice(line.indexOf(': ') + 2));
    return { status: result.status, stderr: lines.join('\n') };
  }

  test.each([
    [['-V', '-t', 'unix'], 'fatal: service scache requires a process limit of 1'],
    [['-V', '-l'], 'fatal: no transport type specified'],
    [['-V', '-x'], 'fatal: invalid option: x'],
    [['-V', '-l', '-t', 'unix', '-o', 'connection_cache_ttl_limit=0'], 'fatal: invalid connection_cache_ttl_limit: 0 (min 1)'],
    [['-V', '-l', '-t', 'unix', '-o', 'connection_cache_ttl_limit=2x'], 'fatal: parameter connection_cache_ttl_limit: bad time value or unit: 2x'],
  ])('%j: %s', (args, message) => {
    const ours = run(process.execPath, [CLI, ...args]);
    expect(ours).toEqual({ status: 1, stderr: message });
    const postfix = run(POSTFIX_SCACHE, args);
    expect(postfix).toEqual({ status: 1, stderr: message });
  });

  test('-S serves standard input, answers pipelined requests, then exits 0 with statistics', () => {
    const input = Buffer.concat([Buffer.from(findEndp('a')), Buffer.from(findEndp('b'))]);
    for (const file of [[process.execPath, CLI], [POSTFIX_SCACHE]]) {
      const result = spawnSync(file[0]!, [...file.slice(1), '-S', '-V'], {
        env: { MAIL_CONFIG: config, POSTFIX_SCACHE_PROCESS_NAME: 'scache' },
        input,
      });
      expect(result.status).toBe(0);
      expect(show(result.stdout)).toBe(show(Buffer.concat([Buffer.from(MISS), Buffer.from(MISS)])));
      expect(result.stderr.toString()).toContain('statistics: address lookup hits=0 miss=2 success=0%');
    }
  });
});
