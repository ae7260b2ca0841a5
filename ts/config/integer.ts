/**
 * Postfix integer parameters: `int` (get_mail_conf_int) and `long`
 * (get_mail_conf_long) values and their range checks.
 *
 * The whole value must be a strtol number (leading whitespace and sign allowed,
 * nothing after the digits) that fits the C type, else fatal
 * `bad numerical configuration: <name> = <value>`. Bounds of 0 mean "no bound"; the
 * failures are `invalid <name> parameter value <n> < <min>` / `> <max>`.
 *
 * Trusts: nothing.
 */
import type { ByteString } from './byte-string.js';
import { strtol10 } from './c-text.js';
import type { Diagnostics } from './diagnostics.js';

const INT_RANGE = { min: -(2n ** 31n), max: 2n ** 31n - 1n };

function convert(name: ByteString, value: ByteString, fitsInt: boolean, diagnostics: Diagnostics): number {
  const converted = strtol10(value);
  const consumedAll = value.length > 0 && converted.end === value.length;
  const fits = !fitsInt || (converted.value >= INT_RANGE.min && converted.value <= INT_RANGE.max);
  if (!consumedAll || converted.outOfRange || !fits) {
    diagnostics.fatal(`bad numerical configuration: ${name} = ${value}`);
  }
  return Number(converted.value);
}

export function convertIntParameter(name: ByteString, value: ByteString, diagnostics: Diagnostics): number {
  return convert(name, value, true, diagnostics);
}

/** Values beyond 2^53 lose precision in the returned number; no Postfix default comes near that. */
export function convertLongParameter(name: ByteString, value: ByteString, diagnostics: Diagnostics): number {
  return convert(name, value, false, diagnostics);
}

/** check_mail_conf_int() / check_mail_conf_long() (same texts). */
export function checkIntegerBounds(name: ByteString, value: number, min: number, max: number, diagnostics: Diagnostics): void {
  if (min !== 0 && value < min) diagnostics.fatal(`invalid ${name} parameter value ${value} < ${min}`);
  if (max !== 0 && value > max) diagnostics.fatal(`invalid ${name} parameter value ${value} > ${max}`);
}
