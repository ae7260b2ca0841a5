/**
 * The npm packages, installed as a user would get them — offline, with no Rust toolchain:
 *
 * 1. `node npm/pack.mjs` packs the root package (no `.node`) and postfix-scache-linux-x64-gnu (the
 *    built `.node`), staged outside the checkout with `npm pack --ignore-scripts`;
 * 2. both are installed into a fresh directory with
 *    `env -i PATH=/usr/bin:/bin npm install --offline root.tgz platform.tgz` (npm's cache holds the
 *    JavaScript dependencies since the checkout's own `npm ci`; `cargo` is not on that PATH);
 * 3. the installed `postfix-scache` command serves, answers `status` and a client, and stops on
 *    SIGTERM; the README's example runs there unchanged (ScacheServer + ScacheClient, a connection
 *    saved and found); a TypeScript file type-checks against the installed declarations;
 * 4. the root package alone installs too, and then fails with an error naming the platform and the
 *    missing package.
 *
 * Needs `npm run build` first. Skipped (say so in its name) where npm cannot install offline: no npm
 * next to node, the dependencies not in npm's cache, a `cargo` on the minimal PATH, or a platform
 * other than linux-x64-gnu (the only binary built here).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { nativePlatform } from '../../ts/native.js';
import { exited, killChildren, track } from '../support/processes.js';
import { LineCapture, REPO_ROOT } from '../support/servers.js';
import { removeTempDirectories, tempDirectory } from '../support/temp.js';
import { readmeExample } from '../client/helpers.js';

const PLATFORM = 'linux-x64-gnu';

/** The PATH an installing user has: node and npm, the system's tools, and no Rust. */
function minimalPath(): string {
  const npm = ['/usr/bin/npm', '/bin/npm', join(dirname(process.execPath), 'npm')].find((candidate) => existsSync(candidate));
  const directories = [...new Set([dirname(process.execPath), ...(npm ? [dirname(npm)] : []), '/usr/bin', '/bin'])];
  return directories.join(delimiter);
}

const PATH = minimalPath();
const ENV = { PATH };

/** Why the offline install cannot work here, or undefined when it can (decided before the tests). */
function whyNot(): string | undefined {
  if (nativePlatform() !== PLATFORM) return `this is ${nativePlatform()}; only ${PLATFORM} is built here`;
  const tool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`], { env: ENV, encoding: 'utf8' }).stdout.trim();
  if (!tool('npm')) return `no npm on ${PATH}`;
  if (tool('cargo')) return `cargo is on the minimal PATH (${tool('cargo')}): it cannot be hidden`;
  // npm must find every runtime dependency in its cache: try exactly that, without installing.
  const probe = tempDirectory('scache-npm-probe-');
  const { dependencies } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: object };
  writeFileSync(join(probe, 'package.json'), JSON.stringify({ name: 'probe', version: '1.0.0', dependencies }));
  const run = spawnSync('npm', ['install', '--offline', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: probe,
    env: ENV,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (run.status !== 0) {
    const reason = /ENOTCACHED|code (\w+)/.exec(run.stderr)?.[0] ?? `exit status ${run.status}`;
    return `npm cannot install the dependencies offline (${reason}): run \`npm ci\` in the checkout once, with a network`;
  }
  return undefined;
}

const SKIP = whyNot();
const suite = SKIP === undefined ? describe : describe.skip;
const title = SKIP === undefined ? 'the npm packages, installed offline without Rust' : `SKIPPED — the npm packages, installed offline (${SKIP})`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, timeout = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: ENV, timeout, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: number | string }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

/** `tar tzf`: the paths in a tarball. */
function contents(tarball: string): string[] {
  return spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.trim().split('\n');
}

const timings: Record<string, number> = {};
async function timed<T>(name: string, step: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await step();
  } finally {
    timings[name] = Date.now() - started;
  }
}

afterAll(async () => {
  await killChildren();
  removeTempDirectories();
  if (Object.keys(timings).length > 0) {
    const total = Object.values(timings).reduce((sum, ms) => sum + ms, 0);
    console.info(`package install test: ${Object.entries(timings).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}; total ${total} ms`);
  }
});

suite(title, () => {
  let out: string;
  let root: string;
  let platform: string;
  let app: string;

  beforeAll(async () => {
    for (const built of ['dist/index.js', 'dist/cli/main.js', `native/postfix-scache.${PLATFORM}.node`]) {
      if (!existsSync(join(REPO_ROOT, built))) throw new Error(`${built} is missing: run \`npm run build\` first`);
    }
    out = tempDirectory('scache-pkg-');
    const packed = await timed('pack', () => run(process.execPath, [join(REPO_ROOT, 'npm/pack.mjs'), '--out', out, '--json'], REPO_ROOT));
    expect(packed).toMatchObject({ code: 0 });
    const result = JSON.parse(packed.stdout) as { root: string; platforms: Record<string, string> };
    root = result.root;
    platform = result.platforms[PLATFORM]!;
    expect(platform).toBeDefined();

    app = join(out, 'app');
    mkdirSync(app);
    const install = await timed('install', () =>
      run('npm', ['install', '--offline', '--no-audit', '--no-fund', root, platform], app, 45_000),
    );
    expect(install).toMatchObject({ code: 0 });
  }, 60_000);

  test('the root tarball: dist (JavaScript and declarations), the loader, optionalDependencies; no binary, tests or sources', () => {
    const files = contents(root);
    expect(files).toEqual(
      expect.arrayContaining([
        'package/package.json',
        'package/README.md',
        'package/dist/index.js',
        'package/dist/index.d.ts',
        'package/dist/cli/main.js',
        'package/dist/client/scache-client.js',
        'package/native/index.js',
        'package/native/index.d.ts',
      ]),
    );
    const unwanted = files.filter((file) => /\.node$|\.map$|^package\/(__test__|ts|crates|target|npm|bench|node_modules)\//.test(file));
    expect(unwanted).toEqual([]);
    const manifest = JSON.parse(spawnSync('tar', ['xzOf', root, 'package/package.json'], { encoding: 'utf8' }).stdout) as {
      optionalDependencies: Record<string, string>;
      version: string;
    };
    expect(manifest.optionalDependencies).toEqual({
      'postfix-scache-linux-arm64-gnu': manifest.version,
      'postfix-scache-linux-arm64-musl': manifest.version,
      'postfix-scache-linux-x64-gnu': manifest.version,
      'postfix-scache-linux-x64-musl': manifest.version,
    });
    // The checkout's own package.json does not list them (npm ci would refuse), nor was it changed.
    expect(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).optionalDependencies).toBeUndefined();
  });

  test('the platform tarball: the binary and its manifest (os, cpu, libc)', () => {
    expect(contents(platform).sort()).toEqual(
      ['package/README.md', 'package/package.json', `package/postfix-scache.${PLATFORM}.node`].sort(),
    );
    const manifest = JSON.parse(spawnSync('tar', ['xzOf', platform, 'package/package.json'], { encoding: 'utf8' }).stdout);
    expect(manifest).toMatchObject({ name: `postfix-scache-${PLATFORM}`, os: ['linux'], cpu: ['x64'], libc: ['glibc'] });
    // Packing staged a copy: the checkout's npm/ has no binary.
    expect(existsSync(join(REPO_ROOT, 'npm', PLATFORM, `postfix-scache.${PLATFORM}.node`))).toBe(false);
  });

  test('the installed command serves, answers status and a client, and stops on SIGTERM', async () => {
    const socket = join(app, 'scache');
    const command = join(app, 'node_modules/.bin/postfix-scache');
    const child = track(spawn(command, ['--listen', socket], { cwd: app, env: ENV, stdio: ['ignore', 'ignore', 'pipe'] }));
    const stderr = new LineCapture(child.stderr!);
    expect(await stderr.waitForLine(/listening on /, 10_000)).toBe(`postfix/postfix-scache: listening on ${socket}`);

    writeFileSync(
      join(app, 'client.mjs'),
      "import { ScacheClient } from 'postfix-scache';\n" +
        'const client = await ScacheClient.connect(process.argv[2]);\n' +
        "console.log(await client.saveDest(60, 'smtp\\nexample.com\\n', 'q\\n', 'smtp\\n192.0.2.1\\n25\\n0\\n'));\n" +
        'client.close();\n',
    );
    expect(await run('node', ['client.mjs', socket], app)).toEqual({ code: 0, stdout: 'ok\n', stderr: '' });
    const status = await run(command, ['status', '--socket', socket, '--json'], app);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ destinationsCount: 1, endpointsCount: 0, connectionsCount: 0 });

    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(existsSync(socket)).toBe(false);
  });

  test("the README's example runs there as printed: ScacheServer and ScacheClient, a connection saved and found", async () => {
    writeFileSync(join(app, 'example.mjs'), readmeExample(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), 'smtp-reuse'));
    const example = await timed('example', () => run('node', ['example.mjs'], app));
    expect(example.stderr).not.toMatch(/Error/);
    expect(example.code).toBe(0);
  });

  test('the installed declarations type-check a TypeScript user of the API', async () => {
    writeFileSync(
      join(app, 'check.mts'),
      "import net from 'node:net';\n" +
        "import { ScacheServer, ScacheClient, ScacheClientError, type CacheStatus, type FoundEndpoint, type ScacheObservation } from 'postfix-scache';\n" +
        "const server: ScacheServer = ScacheServer.start({ listen: { path: '/tmp/x' }, ttlLimitMs: 1000, observe: true });\n" +
        "server.on('observation', (o: ScacheObservation) => o.action === 'hit');\n" +
        "const client: ScacheClient = await ScacheClient.connect('/tmp/x', { timeoutMs: 100 });\n" +
        "const found: FoundEndpoint | null = await client.findEndp('E');\n" +
        "const socket: net.Socket | undefined = found?.socket;\n" +
        'const status: CacheStatus = await client.status(10);\n' +
        "const saved: 'ok' | 'bad' | 'fail' = await client.saveDest(1, 'D', 'Q', 'E');\n" +
        "const kind: string | undefined = new ScacheClientError('timeout', '/x', 'status', 'slow').kind;\n" +
        'void [socket, status.connectionsCount, saved, kind];\n',
    );
    const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2023', '--skipLibCheck', 'false'];
    const typeRoots = join(REPO_ROOT, 'node_modules/@types');
    const checked = await timed('typecheck', () =>
      run(process.execPath, [tsc, ...args, '--typeRoots', typeRoots, '--types', 'node', 'check.mts'], app, 45_000),
    );
    expect(checked.stdout + checked.stderr).toBe('');
    expect(checked.code).toBe(0);
  }, 50_000);

  test('the root package alone: installs, then fails with an error naming the platform and the missing package', async () => {
    const solo = join(out, 'solo');
    mkdirSync(solo);
    const install = await timed('install root only', () => run('npm', ['install', '--offline', '--no-audit', '--no-fund', root], solo, 45_000));
    expect(install.code).toBe(0);
    expect(existsSync(join(solo, 'node_modules', `postfix-scache-${PLATFORM}`))).toBe(false);
    const expected =
      `postfix-scache needs its native addon for ${PLATFORM}, from the package postfix-scache-${PLATFORM}, which is not ` +
      `installed. It is an optional dependency of postfix-scache: install it (npm install postfix-scache-${PLATFORM}@0.1.0), ` +
      'and do not install with --omit=optional or --no-optional';

    const imported = await run('node', ['--input-type=module', '-e', "await import('postfix-scache').catch((e) => console.log(e.message))"], solo);
    expect(imported.stdout).toBe(`${expected}\n`);

    const command = await run(join(solo, 'node_modules/.bin/postfix-scache'), ['--listen', join(solo, 'scache')], solo);
    expect(command).toEqual({ code: 1, stdout: '', stderr: `postfix-scache: fatal: ${expected}\n` });
  }, 50_000);
});
