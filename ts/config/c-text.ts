/**
 * The C library text primitives Postfix's parsers are built on, for byte strings:
 * the ASCII-only ctype classes of Postfix's sys_defs.h (ISSPACE, ISALNUM, ...),
 * its separator sets, `strspn`, and glibc's `strtol(..., 10)` on a 64-bit `long`.
 *
 * Trusts: input is a byte string (see byte-string.ts); bytes >= 0x80 are never
 * space, digit or letter, exactly as Postfix's ISASCII() guard makes them.
 */
import type { ByteString } from './byte-string.js';

/** Postfix CHARS_SPACE: the separator set used by mac_expand and list parsing. */
export const CHARS_SPACE = ' \t\r\n';
/** Postfix CHARS_COMMA_SP: separators of list-valued parameters. */
export const CHARS_COMMA_SP = ', \t\r\n';

/** C `isspace` in the C locale: space, \t, \n, \v, \f, \r. */
export function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\v' || ch === '\f' || ch === '\r';
}

export function isDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= '0' && ch <= '9';
}

export function isAlpha(ch: string | undefined): boolean {
  return ch !== undefined && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'));
}

export function isAlnum(ch: string | undefined): boolean {
  return isDigit(ch) || isAlpha(ch);
}

/** Length of the prefix of `text` (from `start`) made only of characters in `set`. */
export function strspn(text: ByteString, set: string, start = 0): number {
  let end = start;
  while (end < text.length && set.includes(text[end] as string)) end++;
  return end - start;
}

/** Postfix alldig(): non-empty and ASCII digits only. */
export function allDigits(text: ByteString): boolean {
  return text.length > 0 && [...text].every(isDigit);
}

const LONG_MAX = (1n << 63n) - 1n;
const LONG_MIN = -(1n << 63n);

export interface StrtolResult {
  /** The converted value, clamped to [LONG_MIN, LONG_MAX] as strtol does on overflow. */
  value: bigint;
  /** Index just past the digits; 0 (the very start, before any whitespace) when no digits were found. */
  end: number;
  /** errno == ERANGE: the digits did not fit in a 64-bit long. */
  outOfRange: boolean;
}

/**
 * glibc strtol(text, &end, 10): skips leading isspace(), accepts one '+' or '-', then
 * decimal digits. With no digits nothing is consumed (end = 0), which is how callers
 * detect "no number".
 */
export function strtol10(text: ByteString): StrtolResult {
  let i = 0;
  while (isSpace(text[i])) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  const digitsStart = i;
  while (isDigit(text[i])) i++;
  if (i === digitsStart) return { value: 0n, end: 0, outOfRange: false };
  const magnitude = BigInt(text.slice(digitsStart, i));
  let value = negative ? -magnitude : magnitude;
  let outOfRange = false;
  if (value > LONG_MAX) {
    value = LONG_MAX;
    outOfRange = true;
  } else if (value < LONG_MIN) {
    value = LONG_MIN;
    outOfRange = true;
  }
  return { value, end: i, outOfRange };
}

/** Postfix argv_split()/mystrtok(): the non-empty tokens between runs of separators. */
export function splitList(text: ByteString, separators: string = CHARS_COMMA_SP): ByteString[] {
  const tokens: ByteString[] = [];
  let token = '';
  for (const ch of text) {
    if (separators.includes(ch)) {
      if (token) tokens.push(token);
      token = '';
    } else {
      token += ch;
    }
  }
  if (token) tokens.push(token);
  return tokens;
}

/** C printf `%.Ns`: at most `n` bytes of a byte string. */
export function precision(text: ByteString, n: number): ByteString {
  return text.slice(0, n);
}
