/**
 * Postfix time values (conv_time() and get_mail_conf_time()).
 *
 * The value is parsed with strtol (leading whitespace and a sign allowed; negative and
 * out-of-int values rejected). The FIRST character after the number picks the unit:
 * s=1, m=60, h=3600, d=86400, w=604800 (lower case only); with nothing after the number
 * the parameter's default unit applies. Anything after the unit letter is ignored, so
 * "10sec" is 10 s and "1ms" is one MINUTE. A text without digits counts as 0 if its
 * first character is a unit ("s" = 0 s). The result in seconds must stay below INT_MAX.
 *
 * Trusts: `defaultUnit` comes from the parameter table's default value.
 */
import type { ByteString } from './byte-string.js';
import { isAlpha, strtol10 } from './c-text.js';
import type { Diagnostics } from './diagnostics.js';

export const INT_MAX = 2147483647;
const INT_MIN = -2147483648;

const SECONDS_PER_UNIT: Readonly<Record<string, number>> = {
  s: 1,
  m: 60,
  h: 60 * 60,
  d: 24 * 60 * 60,
  w: 7 * 24 * 60 * 60,
};

/** conv_time(): seconds, or undefined when the value or unit is bad. */
export function convertTime(value: ByteString, defaultUnit: string): number | undefined {
  if (value.length === 0) return undefined;
  const converted = strtol10(value);
  if (converted.outOfRange || converted.value > BigInt(INT_MAX) || converted.value < BigInt(INT_MIN)) return undefined;
  const count = Number(converted.value);
  if (count < 0) return undefined;
  const unit = converted.end < value.length ? (value[converted.end] as string) : defaultUnit;
  const perUnit = Object.hasOwn(SECONDS_PER_UNIT, unit) ? SECONDS_PER_UNIT[unit] : undefined;
  if (perUnit === undefined) return undefined;
  // Postfix's overflow guard is a strict comparison with the truncated quotient.
  if (perUnit > 1 && !(count < Math.trunc(INT_MAX / perUnit))) return undefined;
  return count * perUnit;
}

/** get_def_time_unit(): the first letter of the (expanded) default value, e.g. 's' for "100s". */
export function defaultTimeUnit(name: ByteString, expandedDefault: ByteString): string {
  const unit = [...expandedDefault].find(isAlpha);
  if (unit === undefined) {
    throw new Error(`panic: parameter ${name}: missing time unit in default value: ${expandedDefault}`);
  }
  return unit;
}

/** A time parameter's value in seconds; fatal `parameter <name>: bad time value or unit: <value>`. */
export function timeParameterSeconds(name: ByteString, value: ByteString, defaultUnit: string, diagnostics: Diagnostics): number {
  const seconds = convertTime(value, defaultUnit);
  if (seconds === undefined) diagnostics.fatal(`parameter ${name}: bad time value or unit: ${value}`);
  return seconds;
}

/** check_mail_conf_time(): a bound of 0 means "no bound". */
export function checkTimeBounds(name: ByteString, seconds: number, min: number, max: number, diagnostics: Diagnostics): void {
  if (min !== 0 && seconds < min) diagnostics.fatal(`invalid ${name}: ${seconds} (min ${min})`);
  if (max !== 0 && seconds > max) diagnostics.fatal(`invalid ${name}: ${seconds} (max ${max})`);
}
