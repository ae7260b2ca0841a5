/**
 * ConfigError: a configuration problem on which Postfix would stop with `fatal:`.
 *
 * `message` is exactly the text Postfix logs after "fatal: " (the caller adds the
 * prefix, logs it, and exits 1). `warnings` are the texts Postfix would have logged
 * after "warning: " before dying, in order (e.g. the "attribute name syntax error"
 * that precedes "dictionary mail_dict: macro processing error"), so the caller can
 * log the same sequence.
 *
 * Trusts: nothing.
 */
export class ConfigError extends Error {
  readonly warnings: readonly string[];

  constructor(message: string, warnings: readonly string[] = []) {
    super(message);
    this.name = 'ConfigError';
    this.warnings = warnings;
  }
}
