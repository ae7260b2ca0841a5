/**
 * Postfix boolean parameters (get_mail_conf_bool / get_mail_conf_nbool): "yes" or
 * "no" in any ASCII letter case, else fatal `bad boolean configuration: <name> = <value>`.
 *
 * Trusts: nothing.
 */
import type { ByteString } from './byte-string.js';
import type { Diagnostics } from './diagnostics.js';

/** strcasecmp() in the C locale folds ASCII letters only. */
function asciiLowerCase(text: ByteString): ByteString {
  return text.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}

export function convertBoolParameter(name: ByteString, value: ByteString, diagnostics: Diagnostics): boolean {
  const folded = asciiLowerCase(value);
  if (folded === 'yes') return true;
  if (folded === 'no') return false;
  diagnostics.fatal(`bad boolean configuration: ${name} = ${value}`);
}
