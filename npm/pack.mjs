#!/usr/bin/env node
// Packs postfix-scache for npm the way napi-rs lays a native package out (`npm run pack:npm`):
//
//  - the root package (postfix-scache-<version>.tgz): dist/, native/index.js, native/index.d.ts —
//    no `.node` — with `optionalDependencies` naming every platform package under npm/. They are
//    added to a staged copy of package.json, as `napi prepublish` adds them at publish time: listed
//    in the repository's own package.json they would put it out of sync with package-lock.json
//    (`npm ci` refuses), since the platform packages are not on the registry;
//  - one platform package per built binary (postfix-scache-<platform>-<version>.tgz): npm/<platform>/
//    plus the `.node` built into native/ (or one already copied into npm/<platform>/).
//
// Everything is staged in a temporary directory: nothing in the checkout changes. Lifecycle scripts
// are not run (`npm pack --ignore-scripts`). Build first (`npm run build`).
//
// usage: node npm/pack.mjs [--out DIR] [--platform NAME]... [--json]
//   --out DIR        where the tarballs go (default: the current directory)
//   --platform NAME  pack only this platform package (default: every platform with a built binary)
//   --json           print {"root": PATH, "platforms": {NAME: PATH}} instead of one path a line

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NPM_DIR = join(ROOT, 'npm');

function fail(message) {
  process.stderr.write(`pack: ${message}\n`);
  process.exit(1);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** `npm pack` in `directory`; returns the tarball's path in `out`. */
function npmPack(directory, out) {
  const result = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
    cwd: directory,
    encoding: 'utf8',
  });
  if (result.status !== 0) fail(`npm pack in ${directory} failed:\n${result.stderr}`);
  const [packed] = JSON.parse(result.stdout);
  return join(out, packed.filename);
}

/** The platform packages under npm/: name (e.g. linux-x64-gnu), manifest and the binary it ships. */
function platforms() {
  return readdirSync(NPM_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(NPM_DIR, entry.name, 'package.json')))
    .map((entry) => {
      const manifest = readJson(join(NPM_DIR, entry.name, 'package.json'));
      return { name: entry.name, manifest, binary: manifest.main };
    });
}

/** Where the binary for `platform` is: the build output in native/, or a copy already in npm/. */
function builtBinary(platform) {
  for (const candidate of [join(ROOT, 'native', platform.binary), join(NPM_DIR, platform.name, platform.binary)]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: '.' },
    platform: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  },
});
const out = resolve(values.out);
mkdirSync(out, { recursive: true });

const rootManifest = readJson(join(ROOT, 'package.json'));
if (!existsSync(join(ROOT, 'dist', 'index.js')) || !existsSync(join(ROOT, 'native', 'index.js'))) {
  fail('dist/index.js or native/index.js is missing: run `npm run build` first');
}
const all = platforms();
for (const platform of all) {
  if (platform.manifest.version !== rootManifest.version) {
    fail(`npm/${platform.name} is version ${platform.manifest.version}, the root ${rootManifest.version}: they must match`);
  }
}
const wanted = values.platform ?? all.filter((platform) => builtBinary(platform)).map((platform) => platform.name);

const stage = mkdtempSync(join(tmpdir(), 'postfix-scache-pack-'));
try {
  // The root package.
  const rootStage = join(stage, 'root');
  mkdirSync(join(rootStage, 'native'), { recursive: true });
  const staged = { ...rootManifest };
  staged.optionalDependencies = Object.fromEntries(all.map((platform) => [platform.manifest.name, platform.manifest.version]));
  writeFileSync(join(rootStage, 'package.json'), `${JSON.stringify(staged, null, 2)}\n`);
  for (const file of ['README.md', 'LICENSE']) {
    if (existsSync(join(ROOT, file))) cpSync(join(ROOT, file), join(rootStage, file));
  }
  cpSync(join(ROOT, 'dist'), join(rootStage, 'dist'), { recursive: true });
  for (const file of ['index.js', 'index.d.ts']) cpSync(join(ROOT, 'native', file), join(rootStage, 'native', file));
  const result = { root: npmPack(rootStage, out), platforms: {} };

  // The platform packages.
  for (const name of wanted) {
    const platform = all.find((candidate) => candidate.name === name);
    if (!platform) fail(`no platform package npm/${name} (there are: ${all.map((p) => p.name).join(', ')})`);
    const binary = builtBinary(platform);
    if (!binary) fail(`no ${platform.binary} in native/ or npm/${name}/: build it first (npm run build)`);
    const platformStage = join(stage, name);
    cpSync(join(NPM_DIR, name), platformStage, { recursive: true });
    cpSync(binary, join(platformStage, platform.binary));
    result.platforms[name] = npmPack(platformStage, out);
  }

  process.stdout.write(
    values.json ? `${JSON.stringify(result)}\n` : `${[result.root, ...Object.values(result.platforms)].join('\n')}\n`,
  );
} finally {
  rmSync(stage, { recursive: true, force: true });
}
