/**
 * Typed reads of single parameters with Postfix's get_mail_conf_*() semantics: look
 * the parameter up and expand it; when it is not defined, put the default into the
 * dictionary (so later `$name` references see it) and use that; then validate.
 *
 * What gets stored for an unset parameter differs by kind, as in Postfix:
 * string → the expanded default; int/long → the number; bool → "yes"/"no";
 * time and expression-bool → the raw default text.
 *
 * Trusts: specs come from parameters.ts; MailConf does the expansion and reports.
 */
import type { ByteString } from './byte-string.js';
import { convertBoolParameter } from './boolean.js';
import { checkIntegerBounds, convertIntParameter, convertLongParameter } from './integer.js';
import type { MailConf } from './mail-conf.js';
import type {
  BoolParameter,
  ComputedStringParameter,
  ExpressionBoolParameter,
  IntegerParameter,
  StringParameter,
  TimeParameter,
} from './parameters.js';
import { checkTimeBounds, defaultTimeUnit, timeParameterSeconds } from './time.js';

export class ParameterReader {
  constructor(private readonly conf: MailConf) {}

  readString(spec: StringParameter): ByteString {
    return this.readStringWithDefault(spec, () => spec.defaultValue);
  }

  /** A string whose default text is produced on demand (only when the parameter is unset). */
  readComputedString(spec: ComputedStringParameter, computeDefault: () => ByteString): ByteString {
    return this.readStringWithDefault(spec, computeDefault);
  }

  private readStringWithDefault(
    spec: { name: string; minLength: number; maxLength: number },
    defaultText: () => ByteString,
  ): ByteString {
    let value = this.conf.lookupEvaluated(spec.name);
    if (value === undefined) {
      value = this.conf.evaluate(defaultText());
      this.conf.update(spec.name, value);
    }
    const diagnostics = this.conf.diagnostics;
    if (spec.minLength !== 0 && value.length < spec.minLength) {
      diagnostics.fatal(`bad string length ${value.length} < ${spec.minLength}: ${spec.name} = ${value}`);
    }
    if (spec.maxLength !== 0 && value.length > spec.maxLength) {
      diagnostics.fatal(`bad string length ${value.length} > ${spec.maxLength}: ${spec.name} = ${value}`);
    }
    return value;
  }

  readInteger(spec: IntegerParameter): number {
    const diagnostics = this.conf.diagnostics;
    const text = this.conf.lookupEvaluated(spec.name);
    let value: number;
    if (text === undefined) {
      value = spec.defaultValue;
      this.conf.update(spec.name, String(value));
    } else if (spec.kind === 'int') {
      value = convertIntParameter(spec.name, text, diagnostics);
    } else {
      value = convertLongParameter(spec.name, text, diagnostics);
    }
    checkIntegerBounds(spec.name, value, spec.min, spec.max, diagnostics);
    return value;
  }

  readBool(spec: BoolParameter): boolean {
    const text = this.conf.lookupEvaluated(spec.name);
    if (text === undefined) {
      this.conf.update(spec.name, spec.defaultValue ? 'yes' : 'no');
      return spec.defaultValue;
    }
    return convertBoolParameter(spec.name, text, this.conf.diagnostics);
  }

  readExpressionBool(spec: ExpressionBoolParameter): boolean {
    if (!this.conf.dictionary.has(spec.name)) this.conf.update(spec.name, spec.defaultValue);
    return convertBoolParameter(spec.name, this.conf.lookupEvaluated(spec.name) ?? '', this.conf.diagnostics);
  }

  /** Seconds. */
  readTime(spec: TimeParameter): number {
    const diagnostics = this.conf.diagnostics;
    const unit = defaultTimeUnit(spec.name, this.conf.evaluate(spec.defaultValue));
    if (!this.conf.dictionary.has(spec.name)) this.conf.update(spec.name, spec.defaultValue);
    const seconds = timeParameterSeconds(spec.name, this.conf.lookupEvaluated(spec.name) ?? '', unit, diagnostics);
    checkTimeBounds(spec.name, seconds, spec.min, spec.max, diagnostics);
    return seconds;
  }
}
