/**
 * Typed values: time (conv_time + range checks), int/long and boolean conversions, with
 * Postfix's exact fatal texts. The quirky cases (1ms = 60 s, "s" = 0 s, 10sec = 10 s)
 * were confirmed with the real scache 3.7.11.
 */
import { describe, expect, test } from '@jest/globals';
import { convertBoolParameter } from '../../ts/config/boolean.js';
import { ConfigError } from '../../ts/config/config-error.js';
import { Diagnostics } from '../../ts/config/diagnostics.js';
import { checkIntegerBounds, convertIntParameter, convertLongParameter } from '../../ts/config/integer.js';
import { checkTimeBounds, convertTime, defaultTimeUnit, timeParameterSeconds } from '../../ts/config/time.js';

function fatalText(action: (diagnostics: Diagnostics) => unknown): string {
  try {
    action(new Diagnostics());
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('conv_time', () => {
  test.each([
    ['10', 's', 10],
    ['10', 'm', 600],
    ['10s', 'm', 10],
    ['10sec', 's', 10],
    ['1ms', 's', 60],
    ['2m', 's', 120],
    ['3h', 's', 10800],
    ['1d', 's', 86400],
    ['3w', 's', 1814400],
    ['  7', 's', 7],
    ['+5', 's', 5],
    ['-0', 's', 0],
    ['s', 's', 0],
    ['h', 'm', 0],
    ['0', 's', 0],
    ['2147483647', 's', 2147483647],
    ['35791393m', 's', 2147483580],
    ['3549w', 's', 3549 * 604800],
  ])('%j with default unit %s is %d s', (value, unit, seconds) => {
    expect(convertTime(value, unit)).toBe(seconds);
  });

  test.each([
    ['', 'empty'],
    ['2x', 'unknown unit'],
    ['5S', 'units are lower case only'],
    ['-1', 'negative'],
    ['7 ', 'a space is not a unit'],
    [' s', 'no digits and the first character is a space'],
    ['abc', 'no number'],
    ['2147483648', 'does not fit an int'],
    ['99999999999999999999', 'does not fit a long'],
    ['35791394m', 'minutes overflow (strict comparison with INT_MAX/60)'],
    ['3550w', 'weeks overflow'],
    ['0x10', 'base 10 only: "x" is read as the unit'],
  ])('%j is rejected (%s)', (value) => {
    expect(convertTime(value, 's')).toBeUndefined();
  });

  test('the default unit is the first letter of the default value', () => {
    expect(defaultTimeUnit('max_idle', '100s')).toBe('s');
    expect(defaultTimeUnit('x', '1h')).toBe('h');
  });

  test('fatal texts', () => {
    expect(fatalText((d) => timeParameterSeconds('connection_cache_ttl_limit', '2x', 's', d))).toBe(
      'parameter connection_cache_ttl_limit: bad time value or unit: 2x',
    );
    expect(fatalText((d) => checkTimeBounds('connection_cache_ttl_limit', 0, 1, 0, d))).toBe(
      'invalid connection_cache_ttl_limit: 0 (min 1)',
    );
    expect(fatalText((d) => checkTimeBounds('in_flow_delay', 11, 0, 10, d))).toBe('invalid in_flow_delay: 11 (max 10)');
  });

  test('bounds of 0 mean no bound', () => {
    expect(() => checkTimeBounds('x', 0, 0, 0, new Diagnostics())).not.toThrow();
    expect(() => checkTimeBounds('x', 2147483647, 1, 0, new Diagnostics())).not.toThrow();
  });
});

describe('integers', () => {
  test.each([
    ['100', 100],
    [' +7', 7],
    ['-3', -3],
    ['2147483647', 2147483647],
  ])('int %j is %d', (value, expected) => {
    expect(convertIntParameter('max_use', value, new Diagnostics())).toBe(expected);
  });

  test.each(['', 'x', '5x', '5 ', '99999999999', '2147483648'])('int %j is a bad numerical configuration', (value) => {
    expect(fatalText((d) => convertIntParameter('max_use', value, d))).toBe(`bad numerical configuration: max_use = ${value}`);
  });

  test('long accepts what int cannot, up to the long range', () => {
    expect(convertLongParameter('message_size_limit', '99999999999', new Diagnostics())).toBe(99999999999);
    expect(fatalText((d) => convertLongParameter('message_size_limit', '99999999999999999999', d))).toBe(
      'bad numerical configuration: message_size_limit = 99999999999999999999',
    );
  });

  test('range texts', () => {
    expect(fatalText((d) => checkIntegerBounds('max_use', 0, 1, 0, d))).toBe('invalid max_use parameter value 0 < 1');
    expect(fatalText((d) => checkIntegerBounds('line_length_limit', 511, 512, 0, d))).toBe(
      'invalid line_length_limit parameter value 511 < 512',
    );
    expect(fatalText((d) => checkIntegerBounds('delay_logging_resolution_limit', 7, 0, 6, d))).toBe(
      'invalid delay_logging_resolution_limit parameter value 7 > 6',
    );
  });
});

describe('booleans', () => {
  test.each([
    ['yes', true],
    ['YES', true],
    ['No', false],
  ])('%j is %s', (value, expected) => {
    expect(convertBoolParameter('soft_bounce', value, new Diagnostics())).toBe(expected);
  });

  test.each(['maybe', 'true', ' yes', ''])('%j is fatal', (value) => {
    expect(fatalText((d) => convertBoolParameter('soft_bounce', value, d))).toBe(`bad boolean configuration: soft_bounce = ${value}`);
  });
});
