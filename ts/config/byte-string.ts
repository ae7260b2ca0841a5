/**
 * Byte strings: the representation every module in ts/config works on.
 *
 * Postfix treats main.cf, -o values and parameter values as C byte strings: `%.30s`
 * truncates after 30 bytes, `strcmp` compares unsigned bytes, and ctype classes are
 * ASCII-only. To reproduce that exactly, text inside this folder is a "byte string":
 * a JavaScript string whose every char code is one byte (0-255), i.e. latin1-decoded
 * bytes. Conversion happens only at the edges (file contents, argv/env input, and the
 * values, warnings and errors we hand back), so callers always see ordinary UTF-8 text.
 *
 * Trusts: nothing; these are pure conversions.
 */

/** A string whose char codes are bytes (0-255). Only a naming aid; not enforced. */
export type ByteString = string;

/** Bytes read from a file (or any Buffer) as a byte string. */
export function bytesToByteString(bytes: Uint8Array): ByteString {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Ordinary text (argv, environment, host name) as the UTF-8 bytes a C program sees. */
export function textToByteString(text: string): ByteString {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** A byte string back to ordinary text; invalid UTF-8 sequences become U+FFFD. */
export function byteStringToText(bytes: ByteString): string {
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** A byte string as a Buffer, e.g. to use it as a file system path byte for byte. */
export function byteStringToBuffer(bytes: ByteString): Buffer {
  return Buffer.from(bytes, 'latin1');
}

/** What C code sees of a buffer that may hold NUL bytes: the text before the first NUL. */
export function cString(bytes: ByteString): ByteString {
  const nul = bytes.indexOf('\0');
  return nul < 0 ? bytes : bytes.slice(0, nul);
}
