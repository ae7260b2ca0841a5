/**
 * Splits "name = value" text the way Postfix's split_nameval() does; used for main.cf
 * logical lines and for daemon `-o` option values.
 *
 * Leading whitespace is skipped, the name runs up to whitespace or '=', optional
 * whitespace, a required '=', then the value with leading and trailing whitespace
 * trimmed. There is no quoting. The returned error strings are Postfix's own and are
 * embedded verbatim in the callers' fatal messages.
 *
 * Trusts: input is a byte string; like the C code, only the text before a NUL counts.
 */
import { cString, type ByteString } from './byte-string.js';
import { isSpace } from './c-text.js';

export const MISSING_NAME = 'missing attribute name';
export const MISSING_EQUALS = "missing '=' after attribute name";

export type NameValueResult =
  | { readonly ok: true; readonly name: ByteString; readonly value: ByteString }
  | { readonly ok: false; readonly error: typeof MISSING_NAME | typeof MISSING_EQUALS };

export function splitNameValue(input: ByteString): NameValueResult {
  const text = cString(input);
  let nameStart = 0;
  while (nameStart < text.length && isSpace(text[nameStart])) nameStart++;
  if (nameStart === text.length || text[nameStart] === '=') return { ok: false, error: MISSING_NAME };

  let nameEnd = nameStart;
  while (nameEnd < text.length && !isSpace(text[nameEnd]) && text[nameEnd] !== '=') nameEnd++;
  let equals = nameEnd;
  while (equals < text.length && isSpace(text[equals])) equals++;
  if (text[equals] !== '=') return { ok: false, error: MISSING_EQUALS };

  let valueStart = equals + 1;
  while (valueStart < text.length && isSpace(text[valueStart])) valueStart++;
  let valueEnd = text.length;
  while (valueEnd > valueStart && isSpace(text[valueEnd - 1])) valueEnd--;
  return { ok: true, name: text.slice(nameStart, nameEnd), value: text.slice(valueStart, valueEnd) };
}
