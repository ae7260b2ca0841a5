/**
 * `postfix-scache install` (ts/cli/install.ts): the launcher's exact text, that it runs with no PATH
 * and passes on argv, the name and the descriptors, that it refuses to overwrite what it did not
 * write, the printed master.cf line, and how daemon_directory is found. The CLI tests run the
 * built command (node dist/cli/main.js; `npm test` builds first). Everything happens in temporary
 * directories.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  defaultDaemonDirectory,
  FALLBACK_DAEMON_DIRECTORY,
  findPostconf,
  InstallError,
  installLauncher,
  launcherText,
  MARKER,
  masterCfLine,
  report,
} from '../../ts/cli/install.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO_ROOT, 'dist/cli/main.js');

const directories: string[] = [];
afterAll(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function temp(): string {
  const directory = mkdtempSync(join(tmpdir(), 'scache-install-'));
  directories.push(directory);
  return directory;
}

function executable(path: string, text: string): string {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
}

/** A stand-in for node: reports the name it was given. */
const FAKE_NODE = '#!/bin/sh\nprintf \'name:%s\\n\' "$POSTFIX_SCACHE_PROCESS_NAME"\n';

/** A directory with a fake node and a (dummy) main.js, as installLauncher needs them. */
function fixture() {
  const root = temp();
  const daemonDirectory = join(root, 'daemons');
  const nodeDirectory = join(root, 'bin');
  mkdirSync(daemonDirectory);
  mkdirSync(nodeDirectory);
  const node = executable(join(nodeDirectory, 'node'), FAKE_NODE);
  const script = join(root, 'main.js');
  writeFileSync(script, '// not run\n');
  return { root, daemonDirectory, node, script };
}

const LINE = 'scache    unix  -       -       n       -       1       postfix-scache';

describe('the launcher', () => {
  test('has exactly this text: absolute paths, the name passed on, exec with "$@"', () => {
    expect(launcherText('/usr/bin/node', '/opt/postfix-scache/dist/cli/main.js')).toBe(
      '#!/bin/sh\n' +
        '# postfix-scache launcher, written by "postfix-scache install"; it may rewrite this file.\n' +
        '# master(8) runs this with no PATH in the environment, so every path here is absolute.\n' +
        '# The name master ran it under is passed on: Postfix takes process_name (and the log tag) from it.\n' +
        'POSTFIX_SCACHE_PROCESS_NAME=${0##*/}\n' +
        'export POSTFIX_SCACHE_PROCESS_NAME\n' +
        "exec '/usr/bin/node' '/opt/postfix-scache/dist/cli/main.js' \"$@\"\n",
    );
  });

  test('quotes paths for /bin/sh', () => {
    expect(launcherText("/it's here/node", '/a b/main.js')).toContain(`exec '/it'\\''s here/node' '/a b/main.js' "$@"\n`);
  });

  test('runs with an empty environment (no PATH) and passes on argv, the name and descriptors 3-6', () => {
    // The real node, under a directory name that needs quoting, and a main.js that reports what it got.
    const { root, daemonDirectory } = fixture();
    const script = join(root, "it's a dir", 'main.js');
    mkdirSync(join(root, "it's a dir"));
    writeFileSync(
      script,
      "const { readlinkSync } = require('node:fs');\n" +
        'process.stdout.write(JSON.stringify({ argv: process.argv.slice(1), env: process.env, ' +
        'fds: [3, 4, 5, 6].map((fd) => readlinkSync(`/proc/self/fd/${fd}`)) }));\n',
    );
    // Descriptors 3-6 (master's flow-control pipe, status channel, listening socket) stand-ins: files.
    const files = [3, 4, 5, 6].map((fd) => join(root, `fd${fd}`));
    const fds = files.map((file) => openSync(file, 'w'));
    const { path } = installLauncher({ daemonDirectory, name: 'postfix-scache', node: process.execPath, script });
    // As master runs it: argv[0] as written in master.cf, only import_environment-like variables.
    const result = spawnSync(path, ['-l', '-n', 'scache', '-t', 'unix', '-u', 'two words'], {
      argv0: 'postfix-scache',
      env: { MAIL_CONFIG: '/etc/postfix', GENERATION: '4' },
      stdio: ['ignore', 'pipe', 'pipe', ...fds],
      encoding: 'utf8',
    });
    fds.forEach((fd) => closeSync(fd));
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const seen = JSON.parse(result.stdout) as { argv: string[]; env: Record<string, string>; fds: string[] };
    expect(seen.argv).toEqual([script, '-l', '-n', 'scache', '-t', 'unix', '-u', 'two words']);
    expect(seen.env.POSTFIX_SCACHE_PROCESS_NAME).toBe('postfix-scache');
    expect(seen.env.MAIL_CONFIG).toBe('/etc/postfix');
    expect(seen.env.GENERATION).toBe('4');
    expect(seen.env.PATH).toBeUndefined();
    expect(seen.fds).toEqual(files);
  });

  test('passes on the name it is installed under', () => {
    const { daemonDirectory, node, script } = fixture();
    const { path } = installLauncher({ daemonDirectory, name: 'scache-rs', node, script });
    const result = spawnSync(path, [], { env: {}, encoding: 'utf8' });
    expect(result.stdout).toContain('name:scache-rs\n');
  });
});

describe('installLauncher', () => {
  test('writes DIR/NAME, mode 0755, and returns the master.cf line', () => {
    const { daemonDirectory, node, script } = fixture();
    const installed = installLauncher({ daemonDirectory, name: 'postfix-scache', node, script });
    const path = join(daemonDirectory, 'postfix-scache');
    expect(installed).toEqual({ path, replaced: false, text: launcherText(node, script), masterCfLine: LINE });
    expect(readFileSync(path, 'utf8')).toBe(launcherText(node, script));
    expect((statSync(path).mode & 0o7777).toString(8)).toBe('755');
  });

  test('the master.cf line names the command given', () => {
    expect(masterCfLine('postfix-scache')).toBe(LINE);
    expect(masterCfLine('scache-rs')).toBe('scache    unix  -       -       n       -       1       scache-rs');
  });

  test('replaces a launcher it wrote itself, with the new paths', () => {
    const { root, daemonDirectory, node, script } = fixture();
    installLauncher({ daemonDirectory, name: 'postfix-scache', node, script });
    const otherNode = executable(join(root, 'node2'), FAKE_NODE);
    const installed = installLauncher({ daemonDirectory, name: 'postfix-scache', node: otherNode, script });
    expect(installed.replaced).toBe(true);
    expect(readFileSync(installed.path, 'utf8')).toBe(launcherText(otherNode, script));
  });

  test('refuses to overwrite a file it did not write, and leaves it alone', () => {
    const { daemonDirectory, node, script } = fixture();
    const path = join(daemonDirectory, 'scache');
    writeFileSync(path, '\x7fELF the real scache');
    expect(() => installLauncher({ daemonDirectory, name: 'scache', node, script })).toThrow(
      new InstallError(
        `refusing to overwrite ${path}: it was not written by "postfix-scache install"; ` +
          'choose another --name, or move that file away yourself if it really should go',
      ),
    );
    expect(readFileSync(path, 'utf8')).toBe('\x7fELF the real scache');
  });

  test('refuses a file that only mentions the marker somewhere else', () => {
    const { daemonDirectory, node, script } = fixture();
    const path = join(daemonDirectory, 'postfix-scache');
    writeFileSync(path, `#!/bin/sh\n# my own wrapper\n${MARKER}\n`);
    expect(() => installLauncher({ daemonDirectory, name: 'postfix-scache', node, script })).toThrow(/refusing to overwrite/);
  });

  test('refuses a symbolic link (even to one of its launchers) and a directory', () => {
    const { daemonDirectory, node, script } = fixture();
    const ours = installLauncher({ daemonDirectory, name: 'postfix-scache', node, script });
    symlinkSync(ours.path, join(daemonDirectory, 'link'));
    expect(() => installLauncher({ daemonDirectory, name: 'link', node, script })).toThrow(/: it is a symbolic link;/);
    mkdirSync(join(daemonDirectory, 'dir'));
    expect(() => installLauncher({ daemonDirectory, name: 'dir', node, script })).toThrow(/: it is not a regular file;/);
  });

  test('refuses bad names, a relative or non-executable node, a missing directory or main.js', () => {
    const { root, daemonDirectory, node, script } = fixture();
    const base = { daemonDirectory, name: 'postfix-scache', node, script };
    for (const name of ['a/b', '', '..', '.hidden', 'two words', '-l']) {
      expect(() => installLauncher({ ...base, name })).toThrow(/^invalid --name/);
    }
    expect(() => installLauncher({ ...base, node: 'node' })).toThrow(
      new InstallError('--node node: give an absolute path (master(8) runs the launcher without PATH)'),
    );
    writeFileSync(join(root, 'plain'), '');
    expect(() => installLauncher({ ...base, node: join(root, 'plain') })).toThrow(/not an executable file/);
    expect(() => installLauncher({ ...base, node: join(root, 'nowhere') })).toThrow(/not an executable file/);
    expect(() => installLauncher({ ...base, daemonDirectory: join(root, 'nowhere') })).toThrow(
      new InstallError(
        `daemon directory ${join(root, 'nowhere')} does not exist or is not a directory (give Postfix's daemon_directory: postconf -h daemon_directory)`,
      ),
    );
    expect(() => installLauncher({ ...base, script: join(root, 'missing.js') })).toThrow(/main\.js is missing/);
    expect(existsSync(join(daemonDirectory, 'postfix-scache'))).toBe(false);
  });

  test('leaves no temporary file behind', () => {
    const { daemonDirectory, node, script } = fixture();
    installLauncher({ daemonDirectory, name: 'postfix-scache', node, script });
    expect(spawnSync('ls', ['-A', daemonDirectory], { encoding: 'utf8' }).stdout).toBe('postfix-scache\n');
  });
});

describe('daemon_directory', () => {
  test('comes from `postconf -h daemon_directory`', () => {
    const root = temp();
    const postconf = executable(
      join(root, 'postconf'),
      `#!/bin/sh\n[ "$*" = "-h daemon_directory" ] || { echo "bad arguments: $*" >&2; exit 1; }\necho /opt/postfix/libexec\n`,
    );
    expect(defaultDaemonDirectory(postconf)).toBe('/opt/postfix/libexec');
  });

  test('is Debian’s when there is no postconf', () => {
    expect(defaultDaemonDirectory(undefined)).toBe(FALLBACK_DAEMON_DIRECTORY);
    expect(FALLBACK_DAEMON_DIRECTORY).toBe('/usr/lib/postfix/sbin');
  });

  test('a failing postconf is an error that says what to do', () => {
    const root = temp();
    const postconf = executable(join(root, 'postconf'), '#!/bin/sh\necho "postconf: fatal: open /nowhere/main.cf: No such file or directory" >&2\nexit 1\n');
    expect(() => defaultDaemonDirectory(postconf)).toThrow(
      new InstallError(`${postconf} -h daemon_directory failed: postconf: fatal: open /nowhere/main.cf: No such file or directory; give --daemon-directory`),
    );
  });

  test('postconf is looked for in the directories given, in order, absolute ones only', () => {
    const first = temp();
    const second = temp();
    executable(join(second, 'postconf'), '#!/bin/sh\n');
    writeFileSync(join(first, 'postconf'), 'not executable');
    expect(findPostconf(['relative', first, second])).toBe(join(second, 'postconf'));
    expect(findPostconf([first])).toBeUndefined();
  });
});

describe('the command (node dist/cli/main.js install)', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin' }) =>
    spawnSync(process.execPath, [CLI, 'install', ...args], { env, encoding: 'utf8' });

  test('writes the launcher for this checkout and prints the master.cf line', () => {
    const { daemonDirectory, node } = fixture();
    const result = run(['--daemon-directory', daemonDirectory, '--node', node]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const path = join(daemonDirectory, 'postfix-scache');
    const installed = { path, replaced: false, text: launcherText(node, realpathSync(CLI)), masterCfLine: LINE };
    expect(result.stdout).toBe(report(installed));
    expect(result.stdout).toContain(`\n\n${LINE}\n\n`);
    expect(readFileSync(path, 'utf8')).toBe(installed.text);

    const again = run(['--daemon-directory', daemonDirectory, '--node', node]);
    expect(again.status).toBe(0);
    expect(again.stdout.split('\n')[0]).toBe(`postfix-scache: replaced ${path}`);
  });

  test('prints exactly this', () => {
    expect(report({ path: '/usr/lib/postfix/sbin/postfix-scache', replaced: false, text: '', masterCfLine: LINE })).toBe(
      'postfix-scache: wrote /usr/lib/postfix/sbin/postfix-scache\n' +
        'Use it for the scache service: in master.cf (postconf -M scache/unix shows the current line), replace the scache line with\n' +
        '\n' +
        `${LINE}\n` +
        '\n' +
        'and run "postfix reload". Keep the service name scache, private and unprivileged "-" and the process limit 1;\n' +
        'chroot may be n or y. See the README section "Drop-in under master(8)".\n',
    );
  });

  test('--name, and node defaulting to the node running it', () => {
    const { daemonDirectory } = fixture();
    const result = run(['--daemon-directory', daemonDirectory, '--name', 'scache-rs']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('\nscache    unix  -       -       n       -       1       scache-rs\n');
    expect(readFileSync(join(daemonDirectory, 'scache-rs'), 'utf8')).toBe(launcherText(process.execPath, realpathSync(CLI)));
  });

  test('asks postconf for daemon_directory (MAIL_CONFIG selects the instance)', () => {
    const { root, daemonDirectory, node } = fixture();
    const bin = join(root, 'sbin');
    mkdirSync(bin);
    executable(join(bin, 'postconf'), `#!/bin/sh\n[ "$MAIL_CONFIG" = /etc/postfix-b ] && echo ${daemonDirectory}\n`);
    const result = run(['--node', node], { PATH: `${bin}:/usr/bin:/bin`, MAIL_CONFIG: '/etc/postfix-b' });
    expect(result.stderr).toBe('');
    expect(result.stdout.split('\n')[0]).toBe(`postfix-scache: wrote ${join(daemonDirectory, 'postfix-scache')}`);
  });

  test('refusing to overwrite: exit status 1, a clear message on stderr, nothing on stdout', () => {
    const { daemonDirectory, node } = fixture();
    writeFileSync(join(daemonDirectory, 'scache'), 'stock');
    const result = run(['--daemon-directory', daemonDirectory, '--node', node, '--name', 'scache']);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `postfix-scache install: refusing to overwrite ${join(daemonDirectory, 'scache')}: it was not written by "postfix-scache install"; ` +
        'choose another --name, or move that file away yourself if it really should go\n',
    );
    expect(readFileSync(join(daemonDirectory, 'scache'), 'utf8')).toBe('stock');
  });

  test('an unknown option: exit status 1', () => {
    const result = run(['--daemon-dir', '/tmp']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^postfix-scache install: Unknown argument/);
  });
});
