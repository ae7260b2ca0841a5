/**
 * Reading values out of the raw dictionary the way Postfix programs do
 * (mail_conf_lookup_eval / mail_conf_eval / mail_conf_update): a value is expanded
 * recursively at the moment it is read, against whatever the dictionary holds at that
 * moment. The "level" operator suffix is always available, as in any Postfix 3.7
 * program after mail_params_init() registered it.
 *
 * An expansion problem yields its warnings and then the fatal
 * `dictionary mail_dict: macro processing error`.
 *
 * Trusts: the dictionary holds byte strings; diagnostics collects messages in order.
 */
import type { ByteString } from './byte-string.js';
import { compatibilityLevelOperator, LEVEL_SUFFIX } from './compat-level.js';
import type { Diagnostics } from './diagnostics.js';
import type { ParameterDictionary } from './dictionary.js';
import { expandMacros, type OperatorEvaluator } from './expand.js';

/** Postfix's name for the main.cf dictionary, as it appears in its fatal message. */
export const CONFIG_DICTIONARY_NAME = 'mail_dict';

export class MailConf {
  private readonly operatorSuffixes: ReadonlyMap<string, OperatorEvaluator>;

  constructor(
    readonly dictionary: ParameterDictionary,
    readonly diagnostics: Diagnostics,
  ) {
    this.operatorSuffixes = new Map([[LEVEL_SUFFIX, compatibilityLevelOperator((text) => diagnostics.warn(text))]]);
  }

  /** mail_conf_eval(): expand arbitrary text (e.g. a default value). */
  evaluate(text: ByteString): ByteString {
    const expanded = expandMacros(text, {
      lookup: (name) => this.dictionary.lookup(name),
      recursive: true,
      operatorSuffixes: this.operatorSuffixes,
      warn: (message) => this.diagnostics.warn(message),
      fatal: (message) => this.diagnostics.fatal(message),
    });
    if (expanded.error) this.diagnostics.fatal(`dictionary ${CONFIG_DICTIONARY_NAME}: macro processing error`);
    return expanded.value;
  }

  /** mail_conf_lookup_eval(): the expanded value, or undefined when the name is not defined. */
  lookupEvaluated(name: ByteString): ByteString | undefined {
    const raw = this.dictionary.lookup(name);
    return raw === undefined ? undefined : this.evaluate(raw);
  }

  /** mail_conf_update(). */
  update(name: ByteString, value: ByteString): void {
    this.dictionary.update(name, value);
  }
}
