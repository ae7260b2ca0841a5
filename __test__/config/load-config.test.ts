/**
 * The entry point: locating main.cf, -o precedence, the built-ins, Postfix's read order
 * (defaults appear in the dictionary only when read), validation texts, the hot-file
 * re-read, and the typed ScacheParams. Expected texts were confirmed against the real
 * scache 3.7.11 with the same main.cf/-o input.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { builtinDefaults, loadConfig, type HotFileClock } from '../../ts/config/index.js';
import { configDirectoryWith, configErrorOf, emptyDirectory, identity, load, removeConfigDirectories } from './helpers.js';

afterAll(removeConfigDirectories);

describe('locating main.cf', () => {
  test('a missing file is fatal with glibc\'s strerror text', () => {
    const error = configErrorOf(() => loadConfig({ ...identity, configDir: '/nonexistent-scache-dir', env: {} }));
    expect(error.message).toBe('open /nonexistent-scache-dir/main.cf: No such file or directory');
  });

  test('a main.cf that is a directory fails on read', () => {
    const directory = emptyDirectory();
    mkdirSync(join(directory, 'main.cf'));
    expect(configErrorOf(() => loadConfig({ ...identity, configDir: directory, env: {} })).message).toBe(
      `read ${directory}/main.cf: Is a directory`,
    );
  });

  test('MAIL_CONFIG is used when no directory is given, and an explicit directory wins over it', () => {
    const fromEnv = configDirectoryWith('queue_directory = /from/env\n');
    const explicit = configDirectoryWith('queue_directory = /explicit\n');
    expect(loadConfig({ ...identity, env: { MAIL_CONFIG: fromEnv } }).params.queueDirectory).toBe('/from/env');
    expect(loadConfig({ ...identity, configDir: explicit, env: { MAIL_CONFIG: fromEnv } }).params.queueDirectory).toBe(
      '/explicit',
    );
  });

  test('config_directory is the directory used', () => {
    const directory = configDirectoryWith('');
    const config = loadConfig({ ...identity, env: { MAIL_CONFIG: directory } });
    expect(config.params.configDirectory).toBe(directory);
    expect(config.lookup('config_directory')).toBe(directory);
  });
});

describe('built-in defaults (Debian 3.7.11)', () => {
  const expectedDefaults = {
    connectionCacheTtlLimitMs: 2_000,
    connectionCacheStatusUpdateTimeMs: 600_000,
    maxIdleMs: 100_000,
    maxUse: 100,
    ipcTimeoutMs: 3_600_000,
    ipcIdleMs: 5_000,
    ipcTtlMs: 1_000_000,
    daemonTimeoutMs: 18_000_000,
    lineLengthLimit: 2048,
    queueDirectory: '/var/spool/postfix',
    mailOwner: 'postfix',
    configDirectory: '/etc/postfix',
    daemonDirectory: '/usr/lib/postfix/sbin',
    importEnvironment: 'MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME',
    syslogFacility: 'mail',
    syslogFacilityNumber: 2,
    syslogName: 'postfix',
    maillogFile: '',
    maillogFilePrefixes: '/var, /dev/stdout',
    postlogServiceName: 'postlog',
    myhostname: 'vm.localdomain',
    compatibilityLevel: '0',
    processName: 'scache',
    processId: 4242,
    serviceName: 'scache',
  };

  test('without main.cf every value is the compiled-in default', () => {
    const config = builtinDefaults({ ...identity, env: {} });
    expect(config.params).toEqual(expectedDefaults);
    expect(config.warnings).toEqual([]);
  });

  test('an empty main.cf gives the same values', () => {
    expect(load('').params).toEqual({ ...expectedDefaults, configDirectory: expect.any(String) });
  });

  test('defaults that depend on the compatibility level follow it', () => {
    const legacy = builtinDefaults({ ...identity, env: {} });
    expect(legacy.lookup('smtputf8_enable')).toBe('no');
    expect(legacy.lookup('relay_domains')).toBe('vm.localdomain, localhost.localdomain, localhost');
    const current = builtinDefaults({ ...identity, env: {}, overrides: ['compatibility_level=3.6'] });
    expect(current.lookup('smtputf8_enable')).toBe('yes');
    expect(current.lookup('respectful_logging')).toBe('yes');
    expect(current.lookup('relay_domains')).toBe('');
  });

  test('a host name with a dot is used as is; otherwise mydomain (or localdomain) is appended', () => {
    expect(builtinDefaults({ ...identity, hostname: 'mx.example.com', env: {} }).params.myhostname).toBe('mx.example.com');
    expect(load('mydomain = example.org\n').params.myhostname).toBe('vm.example.org');
    expect(load('').lookup('mydomain')).toBe('localdomain');
    expect(builtinDefaults({ ...identity, hostname: 'mx.example.com', env: {} }).lookup('mydomain')).toBe('example.com');
  });
});

describe('overrides and precedence', () => {
  test('-o beats main.cf, and the last -o for a name wins', () => {
    const config = load('connection_cache_ttl_limit = 5s\n', {
      overrides: ['connection_cache_ttl_limit=6s', 'connection_cache_ttl_limit = 7s'],
    });
    expect(config.params.connectionCacheTtlLimitMs).toBe(7000);
    expect(config.warnings).toEqual([]);
  });

  test('-i/-m values are stored verbatim and take part in command-line order', () => {
    const config = load('', { overrides: ['max_idle=  5s  ', { name: 'max_idle', value: '7' }, { name: 'max_use', value: '9' }] });
    expect(config.params.maxIdleMs).toBe(7000);
    expect(config.params.maxUse).toBe(9);
    expect(config.lookup('max_idle')).toBe('7');
  });

  test('-o values are expanded lazily: syslog_name=postfix/$service_name', () => {
    expect(load('', { overrides: ['syslog_name=postfix/$service_name'] }).params.syslogName).toBe('postfix/scache');
    const renamed = load('', { overrides: ['syslog_name=postfix/$service_name'], serviceName: 'scache-rs' });
    expect(renamed.params.syslogName).toBe('postfix/scache-rs');
  });

  test('a -o value changes every parameter that refers to it', () => {
    const config = load('ttl = 5s\nconnection_cache_ttl_limit = $ttl\n', { overrides: ['ttl=9s'] });
    expect(config.params.connectionCacheTtlLimitMs).toBe(9000);
  });

  test.each([
    ['foo', "invalid \"-o foo\" option value: missing '=' after attribute name"],
    ['=foo', 'invalid "-o =foo" option value: missing attribute name'],
    ['  ', 'invalid "-o   " option value: missing attribute name'],
    ['a b=c', "invalid \"-o a b=c\" option value: missing '=' after attribute name"],
  ])('-o %j is fatal', (value, message) => {
    expect(configErrorOf(() => load('', { overrides: [value] })).message).toBe(message);
  });

  test('non-ASCII -o values survive as UTF-8', () => {
    expect(load('', { overrides: ['syslog_name=pöstfix'] }).params.syslogName).toBe('pöstfix');
  });
});

describe('built-in parameters', () => {
  test('service_name cannot be overridden by main.cf or -o', () => {
    const config = load('service_name = fromfile\n', { overrides: ['service_name=svc'], serviceName: 'nn' });
    expect(config.lookup('service_name')).toBe('nn');
    expect(config.params.serviceName).toBe('nn');
  });

  test('process_id is set after the framework parameters: earlier reads see -o, later ones the pid', () => {
    const config = load('syslog_name = p$process_id\nconnection_cache_ttl_limit = ${process_id}s\n', {
      overrides: ['process_id=5'],
    });
    expect(config.params.syslogName).toBe('p5');
    expect(config.params.connectionCacheTtlLimitMs).toBe(4242_000);
    expect(config.lookup('process_id')).toBe('4242');
  });

  test('process_name and config_directory can be replaced in the dictionary, with a warning from main.cf', () => {
    const directory = configDirectoryWith('process_name = foo\nconfig_directory=/x\n');
    const config = loadConfig({ ...identity, configDir: directory, env: {} });
    expect(config.warnings).toEqual([
      `${directory}/main.cf, line 1: overriding earlier entry: process_name=scache`,
      `${directory}/main.cf, line 2: overriding earlier entry: config_directory=${directory}`,
    ]);
    expect(config.lookup('process_name')).toBe('foo');
    expect(config.lookup('config_directory')).toBe('/x');
    expect(config.params.processName).toBe('scache');
    expect(config.params.configDirectory).toBe(directory);
  });

  test('-o process_name changes $process_name expansions only', () => {
    const config = load('', { overrides: ['process_name=pn', 'syslog_name=$process_name'] });
    expect(config.params.syslogName).toBe('pn');
    expect(config.params.processName).toBe('scache');
  });
});

describe('read order: a default exists only once its parameter has been read', () => {
  test('syslog_name is read before daemon_directory, so the reference is empty then, but not later', () => {
    const config = load('syslog_name = s$daemon_directory\n');
    expect(config.params.syslogName).toBe('s');
    expect(config.lookup('syslog_name')).toBe('s/usr/lib/postfix/sbin');
  });

  test('a reference to the not-yet-set process_id makes syslog_name empty, which is fatal', () => {
    expect(configErrorOf(() => load('syslog_name = $process_id\n')).message).toBe('bad string length 0 < 1: syslog_name = ');
  });

  test('materialised defaults: strings expanded, numbers formatted, times raw', () => {
    const error = configErrorOf(() =>
      load('compatibility_level = 3.6\nconnection_cache_ttl_limit = X$mail_name,$max_use,$ipc_timeout,$myorigin\n'),
    );
    expect(error.message).toBe(
      'parameter connection_cache_ttl_limit: bad time value or unit: XPostfix,100,3600s,vm.localdomain',
    );
  });

  test('parameters nobody reads are never expanded, so their errors do not matter until looked up', () => {
    const config = load('unused = ${broken\n');
    expect(config.warnings).toEqual([]);
    const error = configErrorOf(() => config.lookup('unused'));
    expect(error.message).toBe('dictionary mail_dict: macro processing error');
    expect(error.warnings).toEqual(['truncated macro reference: "${broken"']);
  });

  test('unknown parameters are accepted silently and undefined ones look up as empty', () => {
    const config = load('my_own_setting = hello $mail_name\n');
    expect(config.lookup('my_own_setting')).toBe('hello Postfix');
    expect(config.lookup('smtp_bind_address')).toBe('');
    expect(config.isDefined('smtp_bind_address')).toBe(false);
    expect(config.isDefined('my_own_setting')).toBe(true);
  });
});

describe('validation texts', () => {
  test.each([
    ['connection_cache_ttl_limit = 0', 'invalid connection_cache_ttl_limit: 0 (min 1)'],
    ['connection_cache_ttl_limit = 2x', 'parameter connection_cache_ttl_limit: bad time value or unit: 2x'],
    ['connection_cache_status_update_time = 0', 'invalid connection_cache_status_update_time: 0 (min 1)'],
    ['max_idle = s', 'invalid max_idle: 0 (min 1)'],
    ['max_idle = 35791394m', 'parameter max_idle: bad time value or unit: 35791394m'],
    ['ipc_timeout = -1', 'parameter ipc_timeout: bad time value or unit: -1'],
    ['max_use = 0', 'invalid max_use parameter value 0 < 1'],
    ['max_use = x', 'bad numerical configuration: max_use = x'],
    ['max_use = 99999999999', 'bad numerical configuration: max_use = 99999999999'],
    ['max_use = -3', 'invalid max_use parameter value -3 < 1'],
    ['max_use =', 'bad numerical configuration: max_use = '],
    ['line_length_limit = 511', 'invalid line_length_limit parameter value 511 < 512'],
    ['soft_bounce = maybe', 'bad boolean configuration: soft_bounce = maybe'],
    ['syslog_name =', 'bad string length 0 < 1: syslog_name = '],
    ['default_verp_delimiters = +', 'bad string length 1 < 2: default_verp_delimiters = +'],
    ["maillog_file = /tmp/x", "maillog_file value '/tmp/x' does not match any prefix in maillog_file_prefixes"],
    ['compatibility_level = 3.x', 'malformed compatibility level syntax: "3.x"'],
    ['inet_protocols = ipv4, IPV6', 'unknown inet_protocols value "IPV6" in "ipv4, IPV6"'],
    ['relayhost = vm.localdomain', 'myhostname and relayhost parameter settings must not be identical: vm.localdomain'],
    ['myorigin = a b', 'myorigin parameter setting must not contain multiple values: a b'],
    ['myhostname = foo.', 'bad string length 0 < 1: mydomain = '],
  ])('%s', (line, message) => {
    expect(configErrorOf(() => load(`${line}\n`)).message).toBe(message);
  });

  test('texts that name the main.cf file use the configuration directory', () => {
    const directory = configDirectoryWith('syslog_facility = MAIL\n');
    expect(configErrorOf(() => loadConfig({ ...identity, configDir: directory, env: {} })).message).toBe(
      `file ${directory}/main.cf: parameter syslog_facility: unrecognized value: MAIL`,
    );
    const verp = configDirectoryWith('default_verp_delimiters = +x\n');
    expect(configErrorOf(() => loadConfig({ ...identity, configDir: verp, env: {} })).message).toBe(
      `file ${verp}/main.cf: parameters default_verp_delimiters and verp_delimiter_filter: bad second VERP delimiter character`,
    );
  });

  test.each([
    ['123', 'valid_hostname: numeric hostname: 123'],
    ['-a.b', 'valid_hostname: misplaced hyphen: -a.b'],
    ['a..b', 'valid_hostname: misplaced delimiter: a..b'],
    ['a b', 'valid_hostname: invalid character 32(decimal): a b'],
    [`${'x'.repeat(64)}.com`, `valid_hostname: hostname label too long: ${'x'.repeat(64)}.com`],
  ])('myhostname = %s warns %j, then is fatal', (hostname, warning) => {
    const directory = configDirectoryWith(`myhostname = ${hostname}\n`);
    const error = configErrorOf(() => loadConfig({ ...identity, configDir: directory, env: {} }));
    expect(error.warnings).toEqual([warning]);
    expect(error.message).toBe(`file ${directory}/main.cf: parameter myhostname: bad parameter value: ${hostname}`);
  });

  test('a bad mydomain shows up in the derived myhostname first', () => {
    const error = configErrorOf(() => load('mydomain = a..b\n'));
    expect(error.warnings).toEqual(['valid_hostname: misplaced delimiter: vm.a..b']);
    expect(error.message).toMatch(/parameter myhostname: bad parameter value: vm\.a\.\.b$/);
  });

  test('an unusable system host name is fatal', () => {
    const error = configErrorOf(() => builtinDefaults({ ...identity, hostname: 'bad_host-', env: {} }));
    expect(error.warnings).toEqual(['valid_hostname: misplaced hyphen: bad_host-']);
    expect(error.message).toBe('unable to use my own hostname');
  });

  test('accepted values', () => {
    const config = load(
      'syslog_facility = local7\nmaillog_file_prefixes = /tmp,/var\nmaillog_file = /tmp/x\n' +
        'max_idle = 3w\nipc_timeout = 1ms\ndaemon_timeout = 10sec\nmax_use = +7\nconnection_cache_ttl_limit = 1h\n',
    );
    expect(config.params).toMatchObject({
      syslogFacility: 'local7',
      syslogFacilityNumber: 23,
      maillogFile: '/tmp/x',
      maxIdleMs: 3 * 604800 * 1000,
      ipcTimeoutMs: 60_000,
      daemonTimeoutMs: 10_000,
      maxUse: 7,
      connectionCacheTtlLimitMs: 3_600_000,
    });
  });

  test('an expansion error while reading a parameter: its warning, then the macro processing fatal', () => {
    const error = configErrorOf(() => load('a = A\nconnection_cache_ttl_limit = X${a b}\n'));
    expect(error.warnings).toEqual(['attribute name syntax error at: "...a>>> b"']);
    expect(error.message).toBe('dictionary mail_dict: macro processing error');
  });

  test('warnings from main.cf come before the fatal that follows them', () => {
    const directory = configDirectoryWith('b = 1\nb = 2\nmax_use = 0\n');
    const error = configErrorOf(() => loadConfig({ ...identity, configDir: directory, env: {} }));
    expect(error.warnings).toEqual([`${directory}/main.cf, line 2: overriding earlier entry: b=1`]);
    expect(error.message).toBe('invalid max_use parameter value 0 < 1');
  });
});

describe('hot main.cf', () => {
  const modified = 1_000_000_000;

  function hotDirectory(): string {
    const directory = configDirectoryWith('b = 1\nb = 2\n');
    utimesSync(join(directory, 'main.cf'), modified, modified);
    return directory;
  }

  function fakeClock(times: number[]): HotFileClock & { pauses: number[] } {
    const pauses: number[] = [];
    return {
      pauses,
      nowSeconds: () => {
        const next = times.shift();
        if (next === undefined) throw new Error('clock read too often');
        return next;
      },
      sleepMilliseconds: (milliseconds) => pauses.push(milliseconds),
    };
  }

  test('a file changed within the last second is re-read after 0.3 s pauses until it has cooled down', () => {
    const directory = hotDirectory();
    const clock = fakeClock([modified, modified + 1, modified + 2, modified + 3]);
    const config = loadConfig({ ...identity, configDir: directory, env: {}, clock });
    expect(clock.pauses).toEqual([300, 300]);
    const path = `${directory}/main.cf`;
    // Each re-read replays the duplicate against the value the previous pass left behind.
    expect(config.warnings).toEqual([
      `${path}, line 2: overriding earlier entry: b=1`,
      `${path}, line 1: overriding earlier entry: b=2`,
      `${path}, line 2: overriding earlier entry: b=1`,
      `${path}, line 1: overriding earlier entry: b=2`,
      `${path}, line 2: overriding earlier entry: b=1`,
    ]);
  });

  test('a file older than a second before the read is read once', () => {
    const directory = hotDirectory();
    const clock = fakeClock([modified + 2, modified + 2]);
    expect(loadConfig({ ...identity, configDir: directory, env: {}, clock }).warnings).toHaveLength(1);
    expect(clock.pauses).toEqual([]);
  });

  test('a file dated in the future is not waited for', () => {
    const directory = hotDirectory();
    const clock = fakeClock([modified - 10, modified - 10]);
    loadConfig({ ...identity, configDir: directory, env: {}, clock });
    expect(clock.pauses).toEqual([]);
  });
});

describe('raw bytes', () => {
  test('non-UTF-8 bytes in main.cf are compared byte for byte and handed back as text', () => {
    const directory = configDirectoryWith(Buffer.from('a = \xe9\nb = ${{$a} > {z}?{high}:{low}}\nc = caf\xc3\xa9\n', 'latin1'));
    const config = loadConfig({ ...identity, configDir: directory, env: {} });
    expect(config.lookup('b')).toBe('high');
    expect(config.lookup('a')).toBe('\uFFFD');
    expect(config.lookup('c')).toBe('café');
  });
});
