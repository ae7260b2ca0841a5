/**
 * Loads main.cf text into the raw parameter dictionary the way Postfix's
 * dict_load_fp() does: logical lines (logical-lines.ts), each split as
 * "name = value" (name-value.ts), a later entry replacing an earlier one.
 *
 * - A line that is not "name = value" is fatal:
 *   `<file>, line N: missing '=' after attribute name: "<line>"` (or
 *   `missing attribute name`).
 * - Replacing an entry with a different value warns
 *   `<file>, line N: overriding earlier entry: <name>=<old value>`; this includes
 *   entries that were in the dictionary before the file was read (in a daemon:
 *   process_name and config_directory).
 *
 * Trusts: `path` is the name to show in messages (Postfix shows the path it opened).
 */
import { cString, type ByteString } from './byte-string.js';
import { ParameterDictionary } from './dictionary.js';
import { Diagnostics } from './diagnostics.js';
import { readLogicalLines } from './logical-lines.js';
import { splitNameValue } from './name-value.js';

export function loadMainCfInto(
  dictionary: ParameterDictionary,
  content: ByteString,
  path: ByteString,
  diagnostics: Diagnostics,
): void {
  for (const line of readLogicalLines(content, path, diagnostics)) {
    const entry = splitNameValue(line.text);
    if (!entry.ok) {
      diagnostics.fatal(`${path}, line ${line.lineNumber}: ${entry.error}: "${cString(line.text)}"`);
    }
    const previous = dictionary.lookup(entry.name);
    if (previous !== undefined && previous !== entry.value) {
      diagnostics.warn(`${path}, line ${line.lineNumber}: overriding earlier entry: ${entry.name}=${previous}`);
    }
    dictionary.update(entry.name, entry.value);
  }
}

/** main.cf text on its own: a fresh ordered raw dictionary plus the warnings. Throws ConfigError. */
export function parseMainCf(
  content: ByteString,
  path: ByteString,
): { dictionary: ParameterDictionary; warnings: readonly string[] } {
  const dictionary = new ParameterDictionary();
  const diagnostics = new Diagnostics();
  loadMainCfInto(dictionary, content, path, diagnostics);
  return { dictionary, warnings: diagnostics.warnings };
}
