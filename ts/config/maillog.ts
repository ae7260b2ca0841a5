/**
 * The check maillog_client_init() makes once parameters are known: a non-empty
 * maillog_file must start with one of the maillog_file_prefixes (split on commas and
 * whitespace; plain byte-prefix match), else fatal
 * `maillog_file value '<file>' does not match any prefix in maillog_file_prefixes`.
 *
 * Trusts: values are already expanded.
 */
import type { ByteString } from './byte-string.js';
import { splitList } from './c-text.js';
import type { Diagnostics } from './diagnostics.js';

export function checkMaillogFile(maillogFile: ByteString, prefixes: ByteString, diagnostics: Diagnostics): void {
  if (maillogFile.length === 0) return;
  if (splitList(prefixes).some((prefix) => maillogFile.startsWith(prefix))) return;
  diagnostics.fatal(`maillog_file value '${maillogFile}' does not match any prefix in maillog_file_prefixes`);
}
