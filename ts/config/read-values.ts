/**
 * The values a program has read, by parameter name: the equivalent of Postfix's
 * `var_*` globals. They are fixed at read time, so they can differ from a later
 * expansion of the same name (e.g. syslog_name = s$daemon_directory reads as "s"
 * because daemon_directory is read later, but expands to "s/usr/lib/postfix/sbin"
 * afterwards).
 *
 * Trusts: callers only ask for names they stored with the right type; anything else is
 * a programming error and throws a plain Error.
 */
import type { ByteString } from './byte-string.js';

export type ReadValue = ByteString | number | boolean;

export class ReadValues {
  private readonly values = new Map<string, ReadValue>();

  set(name: string, value: ReadValue): void {
    this.values.set(name, value);
  }

  string(name: string): ByteString {
    return this.typed(name, 'string') as ByteString;
  }

  number(name: string): number {
    return this.typed(name, 'number') as number;
  }

  boolean(name: string): boolean {
    return this.typed(name, 'boolean') as boolean;
  }

  private typed(name: string, type: 'string' | 'number' | 'boolean'): ReadValue {
    const value = this.values.get(name);
    if (typeof value !== type) throw new Error(`internal error: parameter ${name} was not read as a ${type}`);
    return value as ReadValue;
  }
}
