/**
 * main.cf syntax: logical lines (readllines), "name = value" splitting (split_nameval)
 * and duplicate handling (dict_load_fp), byte for byte. Expected texts were checked
 * against the real Postfix 3.7.11 scache reading the same files.
 */
import { describe, expect, test } from '@jest/globals';
import { byteStringToText, textToByteString } from '../../ts/config/byte-string.js';
import { ConfigError } from '../../ts/config/config-error.js';
import { Diagnostics } from '../../ts/config/diagnostics.js';
import { readLogicalLines } from '../../ts/config/logical-lines.js';
import { parseMainCf } from '../../ts/config/main-cf.js';
import { splitNameValue } from '../../ts/config/name-value.js';

const PATH = '/etc/postfix/main.cf';

function logicalLines(content: string): { lines: Array<[string, number]>; warnings: readonly string[] } {
  const diagnostics = new Diagnostics();
  const lines = readLogicalLines(content, PATH, diagnostics).map((line): [string, number] => [line.text, line.lineNumber]);
  return { lines, warnings: diagnostics.warnings };
}

function rawValues(content: string): Record<string, string> {
  return Object.fromEntries(parseMainCf(content, PATH).dictionary.entriesInOrder());
}

describe('logical lines', () => {
  test('the spec §8.2 example keeps continuation whitespace as is; blank and comment lines do not end the line', () => {
    expect(rawValues('a = 1\n\n   2\n# comment\n  3\n')).toEqual({ a: '1   2  3' });
  });

  test('a # after data is data, and an indented line after it still continues the value', () => {
    expect(rawValues('b=x # not a comment\n  indented\nc = 2\n')).toEqual({ b: 'x # not a comment  indented', c: '2' });
  });

  test('indented comment lines are dropped, tab-initial lines continue, trailing CR is trimmed', () => {
    const content = 'x = X1\n\n   2\n# comment\n  3\n    # indented comment\n\t4 # not a comment\r\n';
    expect(rawValues(content)).toEqual({ x: 'X1   2  3\t4 # not a comment' });
  });

  test('a CR inside a continued value is kept', () => {
    expect(rawValues('a = 1\r\n  2\r\n')).toEqual({ a: '1\r  2' });
  });

  test('each logical line is numbered by its first non-blank, non-comment physical line', () => {
    const { lines } = logicalLines('# c\n\nfirst = 1\n  more\n\n# x\nsecond = 2\n\n# y\nthird=3');
    expect(lines).toEqual([
      ['first = 1  more', 3],
      ['second = 2', 7],
      ['third=3', 10],
    ]);
  });

  test('continuation text with nothing to continue is warned about and skipped, continuation lines included', () => {
    const { lines, warnings } = logicalLines('  short\n  cont\na = 1\n');
    expect(lines).toEqual([['a = 1', 3]]);
    expect(warnings).toEqual([`${PATH}: logical line must not start with whitespace: "  short  cont"`]);
  });

  test('the warning quotes at most 30 bytes and adds "..." only when the line is longer', () => {
    const thirty = `\t${'1234567890'.repeat(2)}123456789`;
    expect(thirty).toHaveLength(30);
    expect(logicalLines(`${thirty}\n`).warnings).toEqual([
      `${PATH}: logical line must not start with whitespace: "${thirty}"`,
    ]);
    expect(logicalLines(`${thirty}0\n`).warnings).toEqual([
      `${PATH}: logical line must not start with whitespace: "${thirty}..."`,
    ]);
  });

  test('the quote stops at a NUL byte but the length still counts the bytes after it', () => {
    const { warnings } = logicalLines('  \0abcdefghijklmnopqrstuvwxyz0123456789\n');
    expect(warnings).toEqual([`${PATH}: logical line must not start with whitespace: "  ..."`]);
  });

  test('the 30-byte quote counts bytes, not characters', () => {
    const line = textToByteString(` ${'é'.repeat(20)}`); // 1 + 40 bytes
    const diagnostics = new Diagnostics();
    readLogicalLines(`${line}\n`, PATH, diagnostics);
    expect(diagnostics.warnings).toEqual([
      `${PATH}: logical line must not start with whitespace: "${byteStringToText(line.slice(0, 30))}..."`,
    ]);
    expect(diagnostics.warnings[0]).toContain(` ${'é'.repeat(14)}\uFFFD...`);
  });

  test('empty input and comment-only input yield no lines', () => {
    expect(logicalLines('').lines).toEqual([]);
    expect(logicalLines('# only\n\n   \n').lines).toEqual([]);
  });
});

describe('name = value', () => {
  test.each([
    ['a=b', 'a', 'b'],
    ['  a  =  b c  ', 'a', 'b c'],
    ['a = b=c', 'a', 'b=c'],
    ['a =', 'a', ''],
    ['a.b-c = $x', 'a.b-c', '$x'],
  ])('%j splits into %j and %j', (input, name, value) => {
    expect(splitNameValue(input)).toEqual({ ok: true, name, value });
  });

  test.each([
    ['=x', 'missing attribute name'],
    ['   ', 'missing attribute name'],
    ['foo', "missing '=' after attribute name"],
    ['foo bar = 1', "missing '=' after attribute name"],
    ['foo\0 = 1', "missing '=' after attribute name"],
  ])('%j is rejected: %s', (input, error) => {
    expect(splitNameValue(input)).toEqual({ ok: false, error });
  });

  test('text after a NUL byte is invisible, as to C string functions', () => {
    expect(splitNameValue('a = X1\0zzz')).toEqual({ ok: true, name: 'a', value: 'X1' });
  });
});

describe('loading main.cf text', () => {
  function fatalOf(content: string): ConfigError {
    try {
      parseMainCf(content, PATH);
    } catch (error) {
      if (error instanceof ConfigError) return error;
    }
    throw new Error('expected a ConfigError');
  }

  test("a line without '=' is fatal with Postfix's text and the logical line's number", () => {
    const error = fatalOf('a = 1\n# c\n\nfoo bar = 1\n');
    expect(error.message).toBe(`${PATH}, line 4: missing '=' after attribute name: "foo bar = 1"`);
  });

  test('a line without a name is fatal, numbered by its own line even at end of file without newline', () => {
    expect(fatalOf('a = X\n\n# x\n=x').message).toBe(`${PATH}, line 4: missing attribute name: "=x"`);
  });

  test('the quoted line stops at a NUL byte', () => {
    expect(fatalOf('a = 1\nfoo\0 = 1\n').message).toBe(`${PATH}, line 2: missing '=' after attribute name: "foo"`);
  });

  test('warnings issued before the fatal travel with it', () => {
    const error = fatalOf('  stray\nbad\n');
    expect(error.warnings).toEqual([`${PATH}: logical line must not start with whitespace: "  stray"`]);
    expect(error.message).toBe(`${PATH}, line 2: missing '=' after attribute name: "bad"`);
  });

  test('a later entry wins; only a different value warns, naming the old value and the new line', () => {
    const { dictionary, warnings } = parseMainCf('b=1\nb=2\nb=2\n  \tfoo\nb = 2  \tfoo\n', PATH);
    expect(dictionary.lookup('b')).toBe('2  \tfoo');
    expect(warnings).toEqual([
      `${PATH}, line 2: overriding earlier entry: b=1`,
      `${PATH}, line 3: overriding earlier entry: b=2`,
    ]);
  });

  test('entries keep their first-appearance order', () => {
    expect(parseMainCf('z = 1\na = 2\nz = 3\n', PATH).dictionary.entriesInOrder()).toEqual([
      ['z', '3'],
      ['a', '2'],
    ]);
  });
});
