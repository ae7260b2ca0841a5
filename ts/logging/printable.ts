// Log text as Postfix writes it: non-printable characters become '?', valid UTF-8 is kept (its
// smtputf8 default). Text from clients is untrusted and may hold control characters or invalid UTF-8,
// which the core has already turned into U+FFFD; those must not reach a log file either.

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\ufffd]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, '?');
}
