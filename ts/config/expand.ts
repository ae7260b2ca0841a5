/**
 * $-expansion of parameter values with the semantics of Postfix 3.7's mac_parse() +
 * mac_expand() (the 3.11+ `${name{text}}` functions do not exist in 3.7).
 *
 *   $$                          a literal '$'
 *   $name ${name} $(name)       the value of name, expanded again when `recursive`;
 *                               undefined names expand to nothing
 *   ${name?text} ${name?{text}} text if name is defined and non-empty
 *   ${name:text} ${name:{text}} text if name is undefined or empty
 *   ${name?{t1}:{t2}}  ${name?{t1}:t2}           one of two branches
 *   ${{a} op {b}}  ${{a} op {b}?{t}:{f}}         op: == != < <= >= >, numeric when both
 *                               operands are all digits, else byte-wise; with a
 *                               registered suffix ("level") the op compares with it
 *
 * Errors are reported as Postfix reports them: a warning per problem, and the caller
 * turns `error: true` into its fatal ("dictionary mail_dict: macro processing error").
 * The one exception is a numeric operand that overflows a long, which Postfix treats as
 * fatal on the spot (`mac_exp_eval: bad conversion: ...`): that goes to `fatal`.
 *
 * The walk mirrors Postfix's control flow on purpose, including its quirks: branch
 * text that is not chosen is never parsed (its syntax errors go unnoticed), a nesting
 * counter that allows 100 levels per expansion and restarts inside relational operands,
 * and text without braces after '?' running to the end (so `${a?x:y}` yields "x:y").
 *
 * Trusts: the lookup callback returns raw (unexpanded) values; all text is byte strings.
 */
import type { ByteString } from './byte-string.js';
import { allDigits, CHARS_SPACE, isAlnum, precision, strspn, strtol10 } from './c-text.js';

export type RelationalOperator = '==' | '!=' | '<' | '<=' | '>=' | '>';

/** Compares two expanded operands; 'error' makes the whole expansion fail (after its own warning). */
export type OperatorEvaluator = (left: ByteString, operator: RelationalOperator, right: ByteString) => boolean | 'error';

export interface ExpandOptions {
  /** Raw value of a parameter, or undefined when it is not defined. */
  lookup(name: ByteString): ByteString | undefined;
  /** Expand the values that $name substitutes (Postfix does this for configuration values). */
  recursive: boolean;
  /** Operator suffixes such as "level" (all six operators get the suffix), as mac_expand_add_relop registers them. */
  operatorSuffixes?: ReadonlyMap<string, OperatorEvaluator>;
  warn(text: ByteString): void;
  fatal(text: ByteString): never;
}

export interface ExpandResult {
  readonly value: ByteString;
  /** Postfix's MAC_PARSE_ERROR: at least one warning was issued and the value is unusable. */
  readonly error: boolean;
}

/** Postfix allows this many nested macro calls within one expansion. */
const NESTING_LIMIT = 100;
/**
 * Relational operands are expanded by a fresh expansion whose nesting counter starts
 * at 0, so `a = ${{$a} == {x}}` recurses until Postfix crashes (SIGSEGV, no message).
 * We stop at this many nested operand expansions and report it as the nesting error.
 */
const OPERAND_NESTING_LIMIT = 100;

const OPERATOR_CHARACTERS = '<>!=?+-*/~&|%';
const OPERATORS: readonly RelationalOperator[] = ['==', '!=', '<', '<=', '>=', '>'];
/** Postfix's MAC_EXP_OP_STR_ANY, stray doubled quotes included, as it appears in its warning. */
const ANY_OPERATOR_TEXT = '"==" or "!="" or "<"" or "<="" or ">="" or ">"';

function isOperator(text: string): text is RelationalOperator {
  return (OPERATORS as readonly string[]).includes(text);
}

export function expandMacros(pattern: ByteString, options: ExpandOptions): ExpandResult {
  const expansion = new Expansion(options, { operandDepth: 0 });
  try {
    expansion.parse(pattern);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    // JavaScript stack exhausted: Postfix would have crashed; report it as runaway nesting.
    options.warn(`unreasonable macro call nesting: "${precision(pattern, 100)}"`);
    return { value: '', error: true };
  }
  return { value: expansion.result, error: expansion.error };
}

/** Numeric-or-lexicographic comparison of mac_exp_eval(). */
function compareOperands(left: ByteString, operator: RelationalOperator, right: ByteString, fatal: (text: ByteString) => never): boolean {
  let delta: bigint;
  if (allDigits(left) && allDigits(right)) {
    delta = digitsToLong(left, fatal) - digitsToLong(right, fatal);
  } else {
    // Byte strings compare by unsigned byte value, as strcmp() does.
    delta = left < right ? -1n : left > right ? 1n : 0n;
  }
  return applyOperator(delta, operator);
}

function digitsToLong(text: ByteString, fatal: (text: ByteString) => never): bigint {
  const converted = strtol10(text);
  if (converted.outOfRange) fatal(`mac_exp_eval: bad conversion: ${text}`);
  return converted.value;
}

/** The outcome of `operator` given the sign of (left - right). */
export function applyOperator(delta: bigint, operator: RelationalOperator): boolean {
  switch (operator) {
    case '==': return delta === 0n;
    case '!=': return delta !== 0n;
    case '<': return delta < 0n;
    case '<=': return delta <= 0n;
    case '>=': return delta >= 0n;
    case '>': return delta > 0n;
  }
}

interface CurlyPayload {
  readonly text: ByteString;
  /** Index after the closing brace and any whitespace that follows it. */
  readonly next: number;
}

/** One mac_expand() call: its result buffer, error status and nesting counter. */
class Expansion {
  result = '';
  error = false;
  private level = 0;

  constructor(
    private readonly options: ExpandOptions,
    private readonly shared: { operandDepth: number },
  ) {}

  /** mac_parse(): split text into literal runs and $-references and hand each to the callback. */
  parse(value: ByteString): boolean {
    let failed = false;
    let literal = '';
    let i = 0;
    while (i < value.length) {
      const ch = value[i] as string;
      if (ch !== '$') {
        literal += ch;
        i += 1;
        continue;
      }
      if (value[i + 1] === '$') {
        literal += '$';
        i += 2;
        continue;
      }
      if (literal.length > 0) {
        failed = this.callback('literal', literal) || failed;
        literal = '';
      }
      i += 1;
      let reference: string;
      const open = value[i];
      if (open === '{' || open === '(') {
        const close = open === '{' ? '}' : ')';
        let depth = 1;
        let j = i + 1;
        for (; depth > 0; j++) {
          if (j >= value.length) {
            this.options.warn(`truncated macro reference: "${value}"`);
            this.error = true;
            return true;
          }
          if (value[j] === open) depth++;
          if (value[j] === close) depth--;
        }
        reference = value.slice(i + 1, j - 1);
        i = j;
      } else {
        let j = i;
        while (j < value.length && (isAlnum(value[j]) || value[j] === '_')) j++;
        reference = value.slice(i, j);
        i = j;
      }
      if (reference.length === 0) {
        this.error = true;
        this.options.warn(`empty macro name: "${value}"`);
        return true;
      }
      failed = this.callback('expression', reference) || failed;
    }
    if (literal.length > 0 && !failed) failed = this.callback('literal', literal) || failed;
    return failed;
  }

  /** mac_expand_callback(): returns whether the expansion has failed (Postfix's status). */
  private callback(kind: 'literal' | 'expression', text: ByteString): boolean {
    // Like Postfix, the counter is raised on entry and lowered only on a clean exit.
    if (this.level++ > NESTING_LIMIT) {
      this.options.warn(`unreasonable macro call nesting: "${text}"`);
      this.error = true;
    }
    if (this.error) return true;
    if (kind === 'literal') {
      this.result += text;
    } else if (!this.expression(text)) {
      return this.error;
    }
    this.level--;
    return this.error;
  }

  private parseError(text: ByteString): false {
    this.options.warn(text);
    this.error = true;
    return false;
  }

  /** One ${...} or $name reference. Returns false when it bailed out with an error. */
  private expression(text: ByteString): boolean {
    let cursor: number;
    let value: ByteString | undefined;
    let operator: '?' | ':' | undefined;

    const leadingSpace = strspn(text, CHARS_SPACE);
    if (text[leadingSpace] === '{') {
      const relational = this.relational(text, leadingSpace);
      if (relational === undefined) return false;
      value = relational.value;
      cursor = relational.next;
      const ch = text[cursor];
      if (ch !== undefined) {
        if (ch !== '?' && ch !== ':') {
          return this.parseError(`"?" or ":" expected at: "...}>>>${precision(text.slice(cursor), 20)}"`);
        }
        operator = ch;
        cursor++;
      }
    } else {
      const nameStart = leadingSpace;
      let name: ByteString;
      cursor = nameStart;
      for (;;) {
        const space = strspn(text, CHARS_SPACE, cursor);
        const ch = text[cursor + space];
        if (ch === undefined) {
          name = text.slice(nameStart, cursor);
          break;
        }
        if (ch === '?' || ch === ':') {
          name = text.slice(nameStart, cursor);
          operator = ch;
          cursor += space + 1;
          break;
        }
        if (!isAlnum(text[cursor]) && text[cursor] !== '_') {
          return this.parseError(
            `attribute name syntax error at: "...${text.slice(0, cursor)}>>>${precision(text.slice(cursor), 20)}"`,
          );
        }
        cursor++;
      }
      value = this.options.lookup(name);
    }

    const nonEmpty = value !== undefined && value.length > 0;
    if (operator === '?') {
      const branch = this.branchText(text, cursor);
      if (branch === undefined) return false;
      if (nonEmpty) this.parse(branch.text);
      if (branch.next >= text.length) return true;
      if (text[branch.next] !== ':') {
        return this.parseError(`":" expected at: "...${branch.text}}>>>${precision(text.slice(branch.next), 20)}"`);
      }
      cursor = branch.next + 1;
      operator = ':'; // Postfix falls through to parse (and check) the ':' branch.
    }
    if (operator === ':') {
      const branch = this.branchText(text, cursor);
      if (branch === undefined) return false;
      if (!nonEmpty) this.parse(branch.text);
      if (branch.next < text.length) {
        return this.parseError(`unexpected input at: "...${branch.text}}>>>${precision(text.slice(branch.next), 20)}"`);
      }
      return true;
    }

    if (value !== undefined && value.length > 0) {
      if (this.options.recursive) this.parse(value);
      else this.result += value;
    }
    return true;
  }

  /** A '?' or ':' operand: `{text}` (surrounding whitespace ignored) or the rest of the expression. */
  private branchText(text: ByteString, at: number): CurlyPayload | undefined {
    const space = strspn(text, CHARS_SPACE, at);
    if (text[at + space] === '{') return this.curlyPayload(text, at + space);
    return { text: text.slice(at), next: text.length };
  }

  /** mac_exp_extract_curly_payload(): `at` is on '{'. */
  private curlyPayload(text: ByteString, at: number): CurlyPayload | undefined {
    let depth = 1;
    let i = at + 1;
    for (;; i++) {
      const ch = text[i];
      if (ch === undefined) {
        this.parseError(`unbalanced {} in attribute expression: "${text.slice(at)}"`);
        return undefined;
      }
      if (ch === '{') depth++;
      else if (ch === '}' && --depth <= 0) break;
    }
    return { text: text.slice(at + 1, i), next: i + 1 + strspn(text, CHARS_SPACE, i + 1) };
  }

  /** `{left} op {right}` starting at the first '{'; yields "true" or "" like a parameter value. */
  private relational(text: ByteString, at: number): { value: ByteString; next: number } | undefined {
    const left = this.curlyPayload(text, at);
    if (left === undefined) return undefined;
    let cursor = left.next;

    const operatorText = text.slice(cursor, cursor + strspn(text, OPERATOR_CHARACTERS, cursor));
    if (!isOperator(operatorText)) {
      this.parseError(`${ANY_OPERATOR_TEXT} expected at: "...${left.text}}>>>${precision(text.slice(cursor), 20)}"`);
      return undefined;
    }
    cursor += operatorText.length;

    const fatal = this.options.fatal;
    let evaluate: OperatorEvaluator = (l, op, r) => compareOperands(l, op, r, fatal);
    const suffixes = this.options.operatorSuffixes;
    if (suffixes !== undefined && isAlnum(text[cursor])) {
      let length = 1;
      while (isAlnum(text[cursor + length])) length++;
      const suffix = text.slice(cursor, cursor + length);
      cursor += length;
      const custom = suffixes.get(suffix);
      if (custom === undefined) {
        this.parseError(`bad operator suffix at: "...${operatorText}>>>${suffix}"`);
        return undefined;
      }
      evaluate = custom;
    }

    const space = strspn(text, CHARS_SPACE, cursor);
    if (text[cursor + space] !== '{') {
      this.parseError(
        `"{expression}" expected at: "...{${left.text}} ${operatorText}>>>${precision(text.slice(cursor), 20)}"`,
      );
      return undefined;
    }
    const right = this.curlyPayload(text, cursor + space);
    if (right === undefined) return undefined;

    const leftValue = this.expandOperand(left.text);
    const rightValue = this.expandOperand(right.text);
    if (leftValue === undefined || rightValue === undefined) return undefined;
    const outcome = evaluate(leftValue, operatorText, rightValue);
    if (outcome === 'error') this.error = true;
    if (this.error) return undefined;
    return { value: outcome ? 'true' : '', next: right.next };
  }

  /** Operands get their own mac_expand() (fresh nesting counter); errors carry over. */
  private expandOperand(text: ByteString): ByteString | undefined {
    if (this.shared.operandDepth >= OPERAND_NESTING_LIMIT) {
      this.parseError(`unreasonable macro call nesting: "${text}"`);
      return undefined;
    }
    this.shared.operandDepth++;
    try {
      const operand = new Expansion(this.options, this.shared);
      operand.parse(text);
      if (operand.error) this.error = true;
      return operand.result;
    } finally {
      this.shared.operandDepth--;
    }
  }
}
