/**
 * The README's embedding example (a test harness that reuses an SMTP connection through the cache)
 * runs as it is printed, against the built package (dist/index.js in place of 'postfix-scache'; build
 * first). __test__/package/ runs it again, unchanged, in an installed copy of the package.
 */
import { afterAll, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { readmeExample } from './helpers.js';

afterAll(() => removeTempDirectories());

test('the README example keeps one SMTP connection across two sends through the cache', async () => {
  const example = readmeExample(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), 'smtp-reuse');
  expect(example).toContain("from 'postfix-scache';");
  const entry = pathToFileURL(join(REPO_ROOT, 'dist/index.js')).href;
  const script = join(tempDirectory(), 'example.mjs');
  writeFileSync(script, example.replace("from 'postfix-scache';", `from ${JSON.stringify(entry)};`));
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const run = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [script], { env, timeout: 20_000 }, (error, _stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stderr }),
    ),
  );
  expect(run.stderr).not.toMatch(/AssertionError|Error:/);
  expect(run.code).toBe(0);
  // The server's statistics at close (its default logger is stderr): one address lookup, a hit.
  expect(run.stderr).toContain('postfix/scache: statistics: address lookup hits=1 miss=0 success=100%');
});
