/**
 * Diagnostics: the collector for the messages configuration loading produces, in the
 * order Postfix would log them. Modules report byte strings (see byte-string.ts);
 * this is the one place they become ordinary text.
 *
 * `warn()` records a "warning:" text. `fatal()` throws a ConfigError carrying every
 * warning recorded so far. Nothing is printed here: logging is the caller's job.
 *
 * Trusts: message texts are already formatted as Postfix formats them.
 */
import { byteStringToText, type ByteString } from './byte-string.js';
import { ConfigError } from './config-error.js';

export class Diagnostics {
  private readonly recorded: string[] = [];

  warn(text: ByteString): void {
    this.recorded.push(byteStringToText(text));
  }

  fatal(text: ByteString): never {
    throw new ConfigError(byteStringToText(text), [...this.recorded]);
  }

  get warnings(): readonly string[] {
    return [...this.recorded];
  }
}
