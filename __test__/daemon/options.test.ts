import { describe, expect, test } from '@jest/globals';
import { getoptWords, OptionError, parseDaemonOptions } from '../../ts/daemon/options.js';

describe('generic daemon options, read as getopt("cdDi:lm:n:o:s:St:uvVz") reads them', () => {
  test('master.cf argv of Debian scache', () => {
    const options = parseDaemonOptions(['-l', '-t', 'unix', '-u', '-c', '-o', 'connection_cache_status_update_time=10s']);
    expect(options).toMatchObject({
      solitary: true,
      transport: 'unix',
      unprivileged: true,
      chroot: true,
      overrides: ['connection_cache_status_update_time=10s'],
      standAlone: false,
      verbose: 0,
      leftover: [],
    });
  });

  test('clustered flags, attached values and repeated -v', () => {
    const options = parseDaemonOptions(['-lvv', '-tunix', '-oname=value', '-nscache', '-vV']);
    expect(options).toMatchObject({ solitary: true, transport: 'unix', serviceName: 'scache', verbose: 3, stderr: true });
    expect(options.overrides).toEqual(['name=value']);
  });

  test('an option value is taken whole, even when it starts with a dash or holds spaces', () => {
    expect(parseDaemonOptions(['-o', '-x=1', '-o', ' a = b ']).overrides).toEqual(['-x=1', ' a = b ']);
    expect(getoptWords(['-lt', 'unix'])).toEqual({ words: ['-l', '-t=unix'], leftover: [] });
  });

  test('-o, -i and -m keep their command-line order', () => {
    expect(parseDaemonOptions(['-i', '5', '-o', 'max_idle=7', '-m', '3']).overrides).toEqual([
      { name: 'max_idle', value: '5' },
      'max_idle=7',
      { name: 'max_use', value: '3' },
    ]);
  });

  test('options end at the first non-option word (POSIX mode)', () => {
    const options = parseDaemonOptions(['-l', 'extra', '-v']);
    expect(options.leftover).toEqual(['extra', '-v']);
    expect(options.verbose).toBe(0);
  });

  test.each([
    [['-x'], 'invalid option: x', false],
    [['-q', '-V'], 'invalid option: q', false],
    [['-V', '-q'], 'invalid option: q', true],
    [['-l', '-o'], 'invalid option: o', false],
  ])('%j is fatal: %s', (argv, message, stderr) => {
    let error: unknown;
    try {
      parseDaemonOptions(argv);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(OptionError);
    expect((error as OptionError).message).toBe(message);
    expect((error as OptionError).stderr).toBe(stderr);
  });
});
