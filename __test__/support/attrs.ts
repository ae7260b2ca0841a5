/**
 * Postfix's attr0 wire format (spec §1): `name NUL value NUL ... NUL`. Builders for every list the
 * scache protocol uses, and a readable, injective rendering of bytes for assertions.
 *
 * Strings are converted byte for byte as Latin-1, so `'\xff'` in a test is the single byte 0xff;
 * pass a Buffer for anything else (e.g. UTF-8 text).
 */

export type Bytes = string | Uint8Array;

export function bytes(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
}

/** One attribute list: each `[name, value]` as `name NUL value NUL`, then the terminating NUL. */
export function attrs(...pairs: Array<[Bytes, Bytes]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of pairs) parts.push(bytes(name), Buffer.of(0), bytes(value), Buffer.of(0));
  parts.push(Buffer.of(0));
  return Buffer.concat(parts);
}

/** Several byte strings sent as one write. */
export function concat(...parts: Bytes[]): Buffer {
  return Buffer.concat(parts.map(bytes));
}

/** The 36-byte announcement a server writes on accept. */
export const ANNOUNCEMENT = attrs(['protocol', 'connection_cache_protocol']);
/** `dummy=` (8 bytes): the server's "send the descriptor now", and the client's two confirmations. */
export const DUMMY = attrs(['dummy', '']);
/** One data byte with no descriptor attached (what a descriptor message carries as data). */
export const FD_BYTE = Buffer.of(0);

export const OK = 0;
export const BAD = 1;
export const FAIL = 2;

export function status(code: number): Buffer {
  return attrs(['status', String(code)]);
}

export function saveEndp(ttl: number | string, label: Bytes, property: Bytes): Buffer {
  return attrs(['request', 'save_endp'], ['ttl', String(ttl)], ['label', label], ['property', property]);
}

export function findEndp(label: Bytes): Buffer {
  return attrs(['request', 'find_endp'], ['label', label]);
}

export function saveDest(ttl: number | string, dest: Bytes, destProperty: Bytes, endpoint: Bytes): Buffer {
  return attrs(
    ['request', 'save_dest'],
    ['ttl', String(ttl)],
    ['label', dest],
    ['property', destProperty],
    ['label', endpoint],
  );
}

export function findDest(label: Bytes): Buffer {
  return attrs(['request', 'find_dest'], ['label', label]);
}

/** find_endp reply: status and the endpoint property (empty unless found). */
export function findEndpReply(code: number, property: Bytes = ''): Buffer {
  return attrs(['status', String(code)], ['property', property]);
}

/** find_dest reply: status, destination property, endpoint property. */
export function findDestReply(code: number, destProperty: Bytes = '', endpProperty: Bytes = ''): Buffer {
  return attrs(['status', String(code)], ['property', destProperty], ['property', endpProperty]);
}

/**
 * Bytes as a quoted string: printable ASCII as is, `\0`, `\n`, `\\`, `\"` and `\xNN` for the rest.
 * Different byte strings never render alike, so comparing renderings compares the bytes exactly.
 */
export function show(data: Uint8Array): string {
  let text = '"';
  for (const byte of data) {
    if (byte === 0) text += '\\0';
    else if (byte === 0x0a) text += '\\n';
    else if (byte === 0x5c) text += '\\\\';
    else if (byte === 0x22) text += '\\"';
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${text}"`;
}
