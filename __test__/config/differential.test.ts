/**
 * Differential tests against the installed Postfix 3.7:
 *
 * - postconf: `postconf -c DIR -x -h smtpd_banner` expands a value the way Postfix's
 *   expansion does (postconf knows every default up front, so only values built from
 *   main.cf entries and read-order-independent defaults are compared).
 * - the real scache daemon: `scache -V -S` reads the same main.cf and -o options; its
 *   stderr (enabled by -V, i.e. for everything after option parsing) shows the warnings
 *   and the fatal. Each case ends with a fatal so the expanded value becomes visible:
 *   `connection_cache_status_update_time = X<expression>` is read last and fails with
 *   "bad time value or unit: X<expanded text>".
 *
 * Both groups are skipped, with the reason in their titles, where Postfix is absent.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, MASTER_ONLY, READ_ORDER } from '../../ts/config/index.js';
import { configDirectoryWith, removeConfigDirectories } from './helpers.js';

afterAll(removeConfigDirectories);

const POSTCONF = '/usr/sbin/postconf';
const SCACHE = '/usr/lib/postfix/sbin/scache';

/** What our module makes of a main.cf (and -o list): the value of `name`, or the failure. */
function ours(directory: string, name: string, overrides: string[] = [], serviceName = 'scache'):
  | { value: string }
  | { warnings: readonly string[]; fatal: string } {
  try {
    const config = loadConfig({
      configDir: directory,
      env: {},
      overrides,
      processName: 'scache',
      serviceName,
      processId: process.pid,
      hostname: hostname(),
    });
    return { value: config.lookup(name) };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { warnings: error.warnings, fatal: error.message };
  }
}

const collapseWhitespace = (text: string): string => text.replace(/\s+/g, ' ').trim();

const postconfCases: Array<[string, string]> = [
  ['continuation and comment lines', 'smtpd_banner = 1\n\n   2\n# comment\n  3\n\t4 # not a comment\n'],
  ['$$, $name, ${name}, $(name)', 'a = A\nsmtpd_banner = $$a $a ${a} $(a) ${ a }\n'],
  ['${name?text} and ${name:text}', 'a = A\ne =\nsmtpd_banner = [${a?yes}][${b?yes}][${a:no}][${b:no}][${e:empty}]\n'],
  ['braced branches', 'a = A\nsmtpd_banner = [${a?{ t }:{ f }}][${b?{ t }:{ f }}][${b?{t}:f x}][${a?x:y}]\n'],
  ['relational operators', 'smtpd_banner = ${{10} > {9}?{num}:{str}} ${{a10} > {a9}?{gt}:{le}} ${{x}=={x}}\n'],
  ['compatibility level operators', 'compatibility_level = 3.6\nsmtpd_banner = ${{$compatibility_level} <level {2}?{old}:{new}} ${{3.6} <level {3.10}?{lt}}\n'],
  ['recursive references', 'one = <$two>\ntwo = ${three?{[$three]}}\nthree = 3\nsmtpd_banner = $one\n'],
  ['defaults that every reader sees', 'smtpd_banner = $mail_name $queue_directory $daemon_directory $myhostname $mydomain\n'],
  ['chain of 100 references', `${Array.from({ length: 100 }, (_, i) => `c${i + 1} = ${'${'}c${i + 2}}x`).join('\n')}\nsmtpd_banner = $c1\n`],
  ['attribute name syntax error', 'a = A\nsmtpd_banner = ${a b}\n'],
  ['truncated reference', 'smtpd_banner = X${a\n'],
  ['self reference', 'smtpd_banner = $smtpd_banner\n'],
  ['bad operator', 'smtpd_banner = ${{1} = {2}}\n'],
  ['unexpected input', 'a = A\nsmtpd_banner = ${a?{x}:{y}:z}\n'],
];

interface ProcessOutcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, ...output }));
  });
}

/** Starts every case's external run at once (a fatal costs a Postfix program a 1 s sleep). */
function startedTogether<T>(titles: string[], start: (title: string) => Promise<T>): (title: string) => Promise<T> {
  const runs = new Map<string, Promise<T>>();
  return (title) => {
    if (runs.size === 0) for (const each of titles) runs.set(each, start(each));
    return runs.get(title) as Promise<T>;
  };
}

const havePostconf = existsSync(POSTCONF);
(havePostconf ? describe : describe.skip)(
  havePostconf ? 'expansion agrees with postconf -x' : `expansion vs postconf (skipped: ${POSTCONF} not installed)`,
  () => {
    const directories = new Map(
      postconfCases.map(([title, mainCf]) => {
        const directory = configDirectoryWith(mainCf);
        writeFileSync(join(directory, 'master.cf'), '');
        return [title, directory] as const;
      }),
    );
    const postconfRun = startedTogether([...directories.keys()], (title) =>
      run(POSTCONF, ['-c', directories.get(title) as string, '-x', '-h', 'smtpd_banner']),
    );

    test.each(postconfCases)('%s', async (title) => {
      const postconf = await postconfRun(title);
      const result = ours(directories.get(title) as string, 'smtpd_banner');
      if ('value' in result) {
        expect(postconf.status).toBe(0);
        expect(collapseWhitespace(result.value)).toBe(collapseWhitespace(postconf.stdout));
      } else {
        expect(postconf.status).toBe(1);
        expect(result.warnings.length).toBeGreaterThan(0);
        for (const warning of result.warnings) expect(postconf.stderr).toContain(`postconf: warning: ${warning}\n`);
      }
    });
  },
);

/** How the table's default reads in `postconf -d` (booleans and numbers as Postfix formats them). */
function defaultAsPostconfShowsIt(spec: (typeof READ_ORDER)[number]): string | undefined {
  switch (spec.kind) {
    case 'computed-string':
      return undefined;
    case 'bool':
      return spec.defaultValue ? 'yes' : 'no';
    case 'int':
    case 'long':
      return String(spec.defaultValue);
    default:
      return spec.defaultValue;
  }
}

(havePostconf ? describe : describe.skip)(
  havePostconf ? 'parameter table agrees with postconf -d' : `parameter table vs postconf -d (skipped: ${POSTCONF} not installed)`,
  () => {
    test('every fixed default equals the installed Postfix\'s built-in default', async () => {
      const specs = [...READ_ORDER, ...MASTER_ONLY].filter((spec) => defaultAsPostconfShowsIt(spec) !== undefined);
      const postconf = await run(POSTCONF, ['-d', ...specs.map((spec) => spec.name)]);
      expect(postconf.status).toBe(0);
      const installed = new Map(
        postconf.stdout.trimEnd().split('\n').map((line) => {
          const [name, value] = line.split(/ = ?/, 2) as [string, string | undefined];
          return [name, value ?? ''] as const;
        }),
      );
      for (const spec of specs) expect(`${spec.name} = ${defaultAsPostconfShowsIt(spec)}`).toBe(`${spec.name} = ${installed.get(spec.name)}`);
      expect(specs.length).toBeGreaterThan(100);
    });
  },
);

interface DaemonCase {
  title: string;
  mainCf: string;
  options?: string[];
}

/** Cases end in connection_cache_status_update_time = X... so the daemon always dies with a telling fatal. */
const daemonCases: DaemonCase[] = [
  { title: 'continuation lines', mainCf: 'connection_cache_status_update_time = X1\n\n   2\n# comment\n  3\n' },
  { title: 'expansion forms', mainCf: 'a = A\ne =\nconnection_cache_status_update_time = X$$a$a${a}$(a)[${a?y}${b?y}${e:n}${a?{t}:{f}}${b?{t}:f x}${a?x:y}]\n' },
  { title: 'relational forms', mainCf: 'connection_cache_status_update_time = X${{10} > {9}?{num}:{str}}${{a10} > {a9}?{gt}:{le}}${{x}=={x}}${{3.6} <level {3.10}?{lt}}\n' },
  { title: 'compatibility-dependent defaults', mainCf: 'connection_cache_status_update_time = X$relay_domains,$smtputf8_enable,$respectful_logging,$mydomain\n' },
  { title: 'read order: syslog_name read before daemon_directory', mainCf: 'syslog_name = s$daemon_directory\nconnection_cache_status_update_time = X$syslog_name\n' },
  { title: 'materialised defaults', mainCf: 'connection_cache_status_update_time = X$mail_name,$max_use,$ipc_timeout,$myorigin,$max_idle\n' },
  { title: 'process_id not yet set', mainCf: 'syslog_name = $process_id\n' },
  { title: '-o with $service_name', mainCf: 'connection_cache_status_update_time = X$syslog_name\n', options: ['-o', 'syslog_name=postfix/$service_name'] },
  { title: '-n and -o service_name', mainCf: 'connection_cache_status_update_time = X$service_name,$process_name\n', options: ['-n', 'nn', '-o', 'service_name=x', '-o', 'process_name=pn'] },
  { title: '-o precedence and -i', mainCf: 'max_idle = 1s\nconnection_cache_status_update_time = X$max_idle\n', options: ['-o', 'max_idle=  5s  ', '-i', '7'] },
  { title: '-o syntax', mainCf: '', options: ['-o', 'a b=c'] },
  { title: '-o missing name', mainCf: '', options: ['-o', '=foo'] },
  { title: 'ttl 0', mainCf: '', options: ['-o', 'connection_cache_ttl_limit=0'] },
  { title: 'ttl 2x', mainCf: '', options: ['-o', 'connection_cache_ttl_limit=2x'] },
  { title: '1ms is a minute', mainCf: 'connection_cache_ttl_limit = 1ms\nconnection_cache_status_update_time = 10sec\nmax_idle = s\n' },
  { title: 'max_use', mainCf: 'max_use = 99999999999\n' },
  { title: 'line_length_limit', mainCf: 'line_length_limit = 511\n' },
  { title: 'syslog_facility', mainCf: 'syslog_facility = MAIL\n' },
  { title: 'maillog_file prefix', mainCf: 'maillog_file = /tmp/x\n' },
  { title: 'myhostname', mainCf: 'myhostname = -a.b\n' },
  { title: 'macro error', mainCf: 'a = A\nconnection_cache_status_update_time = X${a b}\n' },
  { title: 'nesting', mainCf: 'a = $a\nconnection_cache_status_update_time = X$a\n' },
  { title: 'bad conversion', mainCf: 'connection_cache_status_update_time = X${{99999999999999999999}=={1}?{a}}\n' },
];

interface DaemonOutcome {
  warnings: string[];
  fatal?: string;
  status: number | null;
}

/** Runs the real scache stand-alone with -V (stderr logging) and collects its messages. */
async function runDaemon(directory: string, options: string[]): Promise<DaemonOutcome> {
  const { status, stderr } = await run(SCACHE, ['-V', '-S', ...options], { MAIL_CONFIG: directory });
  const outcome: DaemonOutcome = { warnings: [], status };
  for (const line of stderr.split('\n')) {
    // The -V tag can be garbage in 3.7 (it points at a reused buffer), so only the severity is trusted.
    const match = /: (warning|fatal): (.*)$/.exec(line);
    if (match?.[1] === 'warning') outcome.warnings.push(match[2] as string);
    if (match?.[1] === 'fatal') outcome.fatal = match[2] as string;
  }
  return outcome;
}

/** Our equivalent of the daemon's -n / -o / -i options. */
function oursForOptions(directory: string, options: string[]): { warnings: readonly string[]; fatal?: string } {
  const overrides: Array<string | { name: string; value: string }> = [];
  let serviceName = 'scache';
  for (let i = 0; i < options.length; i += 2) {
    const [flag, value] = [options[i], options[i + 1] as string];
    if (flag === '-o') overrides.push(value);
    if (flag === '-i') overrides.push({ name: 'max_idle', value });
    if (flag === '-n') serviceName = value;
  }
  try {
    const config = loadConfig({ configDir: directory, env: {}, overrides, processName: 'scache', serviceName, processId: process.pid, hostname: hostname() });
    return { warnings: config.warnings };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { warnings: error.warnings, fatal: error.message };
  }
}

const haveScache = existsSync(SCACHE);
(haveScache ? describe : describe.skip)(
  haveScache ? 'start-up agrees with the real scache -S' : `start-up vs real scache (skipped: ${SCACHE} not installed)`,
  () => {
    const cases = new Map(daemonCases.map((daemonCase) => [daemonCase.title, daemonCase] as const));
    const directories = new Map(daemonCases.map((daemonCase) => [daemonCase.title, configDirectoryWith(daemonCase.mainCf)] as const));
    const daemonRun = startedTogether([...cases.keys()], (title) =>
      runDaemon(directories.get(title) as string, cases.get(title)?.options ?? []),
    );

    test.each(daemonCases.map((daemonCase) => [daemonCase.title, daemonCase] as const))('%s', async (_title, daemonCase) => {
      const real = await daemonRun(daemonCase.title);
      const mine = oursForOptions(directories.get(daemonCase.title) as string, daemonCase.options ?? []);
      expect(real.status).toBe(1);
      expect(real.fatal).toBeDefined();
      expect(mine.fatal).toBe(real.fatal);
      expect(mine.warnings).toEqual(real.warnings);
    });
  },
);
