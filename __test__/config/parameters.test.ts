/**
 * The parameter table: every parameter of spec §8.6 is present with its Debian 3.7.11
 * default, type and bounds, and the read order keeps Postfix's sequence where it is
 * observable (compatibility_level first, syslog_name before daemon_directory, scache's
 * own parameters last).
 */
import { describe, expect, test } from '@jest/globals';
import { BUILTIN_PARAMETERS, MASTER_ONLY, parameterSpec, READ_ORDER } from '../../ts/config/index.js';

describe('spec §8.6 parameters', () => {
  test.each([
    ['connection_cache_ttl_limit', { kind: 'time', defaultValue: '2s', min: 1, max: 0 }],
    ['connection_cache_status_update_time', { kind: 'time', defaultValue: '600s', min: 1, max: 0 }],
    ['max_idle', { kind: 'time', defaultValue: '100s', min: 1, max: 0 }],
    ['max_use', { kind: 'int', defaultValue: 100, min: 1, max: 0 }],
    ['ipc_timeout', { kind: 'time', defaultValue: '3600s', min: 1, max: 0 }],
    ['daemon_timeout', { kind: 'time', defaultValue: '18000s', min: 1, max: 0 }],
    ['queue_directory', { kind: 'string', defaultValue: '/var/spool/postfix', minLength: 1 }],
    ['mail_owner', { kind: 'string', defaultValue: 'postfix', minLength: 1 }],
    ['daemon_directory', { kind: 'string', defaultValue: '/usr/lib/postfix/sbin', minLength: 1 }],
    ['syslog_facility', { kind: 'string', defaultValue: 'mail', minLength: 1 }],
    ['syslog_name', { kind: 'string', defaultValue: '${multi_instance_name?{$multi_instance_name}:{postfix}}', minLength: 1 }],
    ['maillog_file', { kind: 'string', defaultValue: '', minLength: 0 }],
    ['maillog_file_prefixes', { kind: 'string', defaultValue: '/var, /dev/stdout', minLength: 1 }],
    ['postlog_service_name', { kind: 'string', defaultValue: 'postlog', minLength: 1 }],
    ['myhostname', { kind: 'computed-string', minLength: 1 }],
    ['line_length_limit', { kind: 'int', defaultValue: 2048, min: 512 }],
    ['import_environment', { kind: 'string', defaultValue: 'MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME' }],
    ['service_throttle_time', { kind: 'time', defaultValue: '60s', min: 1 }],
  ])('%s', (name, expected) => {
    expect(parameterSpec(name)).toMatchObject({ name, ...expected });
  });

  test('service_throttle_time belongs to master and is not read by the daemon', () => {
    expect(MASTER_ONLY.map((spec) => spec.name)).toEqual(['service_throttle_time']);
    expect(READ_ORDER.map((spec) => spec.name)).not.toContain('service_throttle_time');
  });

  test('built-ins: only process_name and config_directory can be replaced in 3.7', () => {
    expect(BUILTIN_PARAMETERS.process_name.overridable).toBe(true);
    expect(BUILTIN_PARAMETERS.config_directory.overridable).toBe(true);
    expect(BUILTIN_PARAMETERS.service_name.overridable).toBe(false);
    expect(BUILTIN_PARAMETERS.process_id.overridable).toBe(false);
    for (const name of Object.keys(BUILTIN_PARAMETERS)) expect(parameterSpec(name)).toBeUndefined();
  });
});

describe('read order', () => {
  const position = (name: string): number => READ_ORDER.findIndex((spec) => spec.name === name);

  test('names are unique', () => {
    const names = READ_ORDER.map((spec) => spec.name);
    expect(new Set(names).size).toBe(names.length);
  });

  test('observable orderings of mail_params_init() and scache', () => {
    expect(position('compatibility_level')).toBe(0);
    expect(position('syslog_facility')).toBeLessThan(position('myhostname'));
    expect(position('myhostname')).toBeLessThan(position('mydomain'));
    expect(position('mail_name')).toBeLessThan(position('syslog_name'));
    expect(position('syslog_name')).toBeLessThan(position('daemon_directory'));
    expect(position('daemon_directory')).toBeLessThan(position('queue_directory'));
    expect(position('queue_directory')).toBeLessThan(position('max_use'));
    expect(position('max_use')).toBeLessThan(position('max_idle'));
    expect(READ_ORDER.slice(-2).map((spec) => spec.name)).toEqual([
      'connection_cache_ttl_limit',
      'connection_cache_status_update_time',
    ]);
  });
});
