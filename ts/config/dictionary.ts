/**
 * The raw parameter dictionary ("mail_dict" in Postfix): parameter name to unexpanded
 * value, in first-insertion order. main.cf entries, -o overrides, the built-ins
 * (process_name, config_directory, service_name, process_id) and every default a
 * program materialises when it reads an unset parameter all live here; $-expansion
 * happens only when a value is read (see mail-conf.ts).
 *
 * Trusts: names and values are byte strings; no validation happens here.
 */
import type { ByteString } from './byte-string.js';

export class ParameterDictionary {
  private readonly entries = new Map<ByteString, ByteString>();

  /** The raw value, or undefined when the parameter is not defined at all. */
  lookup(name: ByteString): ByteString | undefined {
    return this.entries.get(name);
  }

  update(name: ByteString, value: ByteString): void {
    this.entries.set(name, value);
  }

  has(name: ByteString): boolean {
    return this.entries.has(name);
  }

  /** Entries in first-insertion order. */
  entriesInOrder(): Array<[ByteString, ByteString]> {
    return [...this.entries];
  }
}
