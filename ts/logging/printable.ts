// Log text as Postfix writes it: ASCII control characters become '?', valid UTF-8 is kept (its
// smtputf8 default keeps every well-formed multi-byte character, C1 controls included). Text from
// clients is untrusted and may hold invalid UTF-8, which the core has already turned into U+FFFD;
// Postfix prints '?' for such bytes, so U+FFFD becomes '?' too.

const UNPRINTABLE = /[\u0000-\u001f\u007f\ufffd]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, '?');
}
