/**
 * Command-line parameter overrides of a Postfix daemon, applied after main.cf and
 * before any parameter is read, in command-line order (the last one for a name wins):
 *
 * - `-o name=value` (given as the raw option value): split like a main.cf line; a bad
 *   one is fatal `invalid "-o <value>" option value: <reason>`.
 * - `-i value` / `-m value` (legacy max_idle / max_use): given as { name, value } and
 *   stored verbatim, without any splitting or trimming, as multi_server does.
 *
 * Overrides never produce "overriding earlier entry" warnings.
 *
 * Trusts: values are byte strings (converted from argv by the caller of this module).
 */
import type { ByteString } from './byte-string.js';
import type { MailConf } from './mail-conf.js';
import { splitNameValue } from './name-value.js';

export type ParameterOverride = ByteString | { readonly name: ByteString; readonly value: ByteString };

export function applyOverrides(conf: MailConf, overrides: readonly ParameterOverride[]): void {
  for (const override of overrides) {
    if (typeof override !== 'string') {
      conf.update(override.name, override.value);
      continue;
    }
    const entry = splitNameValue(override);
    if (!entry.ok) conf.diagnostics.fatal(`invalid "-o ${override}" option value: ${entry.error}`);
    conf.update(entry.name, entry.value);
  }
}
