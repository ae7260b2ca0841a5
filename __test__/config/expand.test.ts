/**
 * $-expansion (mac_parse + mac_expand of Postfix 3.7). Expected results and warning
 * texts were observed from the real scache 3.7.11 (a main.cf with `a = A`, and the
 * expression placed in connection_cache_ttl_limit so that the fatal shows the result).
 */
import { describe, expect, test } from '@jest/globals';
import { textToByteString } from '../../ts/config/byte-string.js';
import { ConfigError } from '../../ts/config/config-error.js';
import { Diagnostics } from '../../ts/config/diagnostics.js';
import { ParameterDictionary } from '../../ts/config/dictionary.js';
import { expandMacros } from '../../ts/config/expand.js';
import { MailConf } from '../../ts/config/mail-conf.js';

function confWith(entries: Record<string, string>): MailConf {
  const dictionary = new ParameterDictionary();
  for (const [name, value] of Object.entries(entries)) dictionary.update(name, value);
  return new MailConf(dictionary, new Diagnostics());
}

/** Expands like a Postfix program reading a parameter: value, or the fatal and its warnings. */
function expand(pattern: string, entries: Record<string, string> = { a: 'A' }): { value?: string; warnings?: readonly string[]; fatal?: string } {
  try {
    return { value: confWith(entries).evaluate(pattern) };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { warnings: error.warnings, fatal: error.message };
  }
}

const MACRO_ERROR = 'dictionary mail_dict: macro processing error';

describe('substitution forms', () => {
  test.each([
    ['X$$a', 'X$a'],
    ['X$a', 'XA'],
    ['X${a}', 'XA'],
    ['X$(a)', 'XA'],
    ['X${ a }', 'XA'],
    ['X$a-b', 'XA-b'],
    ['X$undefined.', 'X.'],
    ['X${a?yes}', 'Xyes'],
    ['X${b?yes}', 'X'],
    ['X${a?{yes}}', 'Xyes'],
    ['X${a:no}', 'X'],
    ['X${b:no}', 'Xno'],
    ['X${b:{ no }}', 'X no '],
    ['X${a?{ t }:{ f }}', 'X t '],
    ['X${b?{ t }:{ f }}', 'X f '],
    ['X${b?{t}:f x}', 'Xf x'],
    ['X${a?{t} : {f}}', 'Xt'],
    ['X${a?x:y}', 'Xx:y'],
    ['X${a? x}', 'X x'],
    ['X${a?$a}', 'XA'],
    ['X$a$a', 'XAA'],
    ['X${ }', 'X'],
    ['X${{1}=={1}}', 'Xtrue'],
    ['X${{1}=={2}}', 'X'],
  ])('%s -> %s', (pattern, expected) => {
    expect(expand(pattern)).toEqual({ value: expected });
  });

  test('defined but empty counts as "not set" for ? and :', () => {
    expect(expand('${e?set}${e:unset}', { e: '' })).toEqual({ value: 'unset' });
  });

  test('substituted values are expanded again, recursively', () => {
    expect(expand('$one', { one: '<$two>', two: '${three?{[$three]}}', three: '3' })).toEqual({ value: '<[3]>' });
  });

  test('$$ in a substituted value is expanded at the level it appears', () => {
    expect(expand('$a', { a: '$$b', b: 'B' })).toEqual({ value: '$b' });
  });

  test('without recursion the substituted value is copied literally', () => {
    const result = expandMacros('x$a', {
      lookup: (name) => ({ a: '$b' } as Record<string, string>)[name],
      recursive: false,
      warn: () => undefined,
      fatal: (text) => { throw new Error(text); },
    });
    expect(result).toEqual({ value: 'x$b', error: false });
  });
});

describe('relational expressions', () => {
  test.each([
    ['${{10} > {9}?{num}:{str}}', 'num'],
    ['${{a10} > {a9}?{gt}:{le}}', 'le'],
    ['${{010} == {10}?{same}:{differ}}', 'same'],
    ['${{b} != {a} ? {ne} : {eq}}', 'ne'],
    ['${{a} < {b}?{lt}}', 'lt'],
    ['${{a} <= {a}?{le}}', 'le'],
    ['${{b} >= {c}?{ge}:{lt}}', 'lt'],
    ['${{$a} == {A}?{yes}:{no}}', 'yes'],
    ['${{3.6} <level {3.10} ? {lt} : {ge}}', 'lt'],
    ['${{3.6.1} >level {3.6}?{gt}}', 'gt'],
    ['${{2} ==level {2.0.0}?{eq}}', 'eq'],
  ])('%s -> %s', (pattern, expected) => {
    expect(expand(pattern)).toEqual({ value: expected });
  });

  test('lexicographic comparison is by unsigned byte, like strcmp', () => {
    const pattern = textToByteString('${{é} > {z}?{high}:{low}}');
    expect(expand(pattern)).toEqual({ value: 'high' });
  });

  test('a numeric operand that overflows a long is fatal on the spot, not a macro error', () => {
    expect(expand('${{99999999999999999999}=={1}?{a}}')).toEqual({
      warnings: [],
      fatal: 'mac_exp_eval: bad conversion: 99999999999999999999',
    });
  });
});

describe('errors: a warning, then the macro processing fatal', () => {
  test.each([
    ['X${a?{t} junk}', '":" expected at: "...t}>>>junk"'],
    ['X${b:{t} junk}', 'unexpected input at: "...t}>>>junk"'],
    ['X${', 'truncated macro reference: "X${"'],
    ['X$(a', 'truncated macro reference: "X$(a"'],
    ['X$(a}', 'truncated macro reference: "X$(a}"'],
    ['X$', 'empty macro name: "X$"'],
    ['X$-', 'empty macro name: "X$-"'],
    ['X${}', 'empty macro name: "X${}"'],
    ['X${a b}', 'attribute name syntax error at: "...a>>> b"'],
    ['X${{1}==}', '"{expression}" expected at: "...{1} ==>>>"'],
    ['X${{1} = {2}}', '"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...1}>>>= {2}"'],
    ['X${{1} === {2}}', '"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...1}>>>=== {2}"'],
    ['X${{1}=={1} x}', '"?" or ":" expected at: "...}>>>x"'],
    ['X${{x} <level {1}?{a}}', 'malformed compatibility level syntax: "x"'],
    ['X${{1} <lev {1}?{a}}', 'bad operator suffix at: "...<>>>lev"'],
    ['X${{1} == {1', 'truncated macro reference: "X${{1} == {1"'],
    ['X$(a?{x)', 'unbalanced {} in attribute expression: "{x"'],
    ['X${a?{x}:{y}:z}', 'unexpected input at: "...y}>>>:z"'],
    ['X${{1} == {2} ? {x} : {y} z}', 'unexpected input at: "...y}>>>z"'],
  ])('%s', (pattern, warning) => {
    expect(expand(pattern)).toEqual({ warnings: [warning], fatal: MACRO_ERROR });
  });

  test('the ?-branch that is not taken is not parsed, so its syntax errors go unnoticed', () => {
    expect(expand('${a?{ok}:{${broken b}}}')).toEqual({ value: 'ok' });
    expect(expand('${b?{${broken b}}:{ok}}')).toEqual({ value: 'ok' });
  });

  test('errors in a referenced value surface when the referring value is read', () => {
    expect(expand('x$bad', { bad: '${oops' })).toEqual({
      warnings: ['truncated macro reference: "${oops"'],
      fatal: MACRO_ERROR,
    });
  });
});

describe('nesting limit', () => {
  const chain = (length: number): Record<string, string> =>
    Object.fromEntries(Array.from({ length }, (_, i) => [`c${i + 1}`, `$c${i + 2}`]));

  test('a parameter that refers to itself stops at 100 levels', () => {
    expect(expand('X$a', { a: '$a' })).toEqual({
      warnings: ['unreasonable macro call nesting: "a"'],
      fatal: MACRO_ERROR,
    });
  });

  test('a chain of 100 references is still fine, 101 is one too many', () => {
    expect(expand('X$c1', chain(100))).toEqual({ value: 'X' });
    expect(expand('X$c1', chain(101))).toEqual({
      warnings: ['unreasonable macro call nesting: "c102"'],
      fatal: MACRO_ERROR,
    });
  });

  test('runaway recursion through relational operands fails cleanly (Postfix itself crashes here)', () => {
    const result = expand('$b', { b: '${{$b}=={x}?{y}}' });
    expect(result.fatal).toBe(MACRO_ERROR);
    expect(result.warnings?.[0]).toMatch(/^unreasonable macro call nesting: /);
  });
});
