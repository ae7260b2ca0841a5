/**
 * Splits main.cf text into logical lines exactly as Postfix's readllines() does.
 *
 * - A physical line that starts with non-whitespace starts a new logical line; one that
 *   starts with whitespace continues the previous logical line and is appended as is
 *   (its newline dropped, its leading whitespace kept).
 * - Empty, whitespace-only and comment lines (first non-whitespace byte is '#') are
 *   dropped and do NOT end a logical line, so a continuation may follow them.
 * - A logical line that itself starts with whitespace (continuation text with nothing to
 *   continue) is reported with a warning and skipped.
 * - Each logical line carries the number of its first non-blank, non-comment physical
 *   line; physical lines are counted from 1, and a final line without a newline counts
 *   only if it is non-empty.
 *
 * Trusts: `content` is the raw file as a byte string; NUL bytes are kept here and are
 * the consumer's business (C string functions stop at them).
 */
import { cString, type ByteString } from './byte-string.js';
import { isSpace, precision } from './c-text.js';
import type { Diagnostics } from './diagnostics.js';

export interface LogicalLine {
  /** The logical line, continuation lines appended as is. May contain NUL bytes. */
  readonly text: ByteString;
  /** Line number of the first non-blank, non-comment physical line in it. */
  readonly lineNumber: number;
}

/** How much of an offending line the "must not start with whitespace" warning quotes. */
const QUOTED_PREFIX_LENGTH = 30;

export function readLogicalLines(
  content: ByteString,
  path: ByteString,
  diagnostics: Diagnostics,
): LogicalLine[] {
  const lines: LogicalLine[] = [];
  let position = 0;
  let physicalLineNumber = 0;

  /** One readllines() call: the next logical line (possibly whitespace-initial), or undefined at EOF. */
  const readOne = (): LogicalLine | undefined => {
    let buffer = '';
    let firstLineNumber = 0;
    for (;;) {
      const start = buffer.length;
      const newline = content.indexOf('\n', position);
      const atEof = newline < 0;
      const physical = atEof ? content.slice(position) : content.slice(position, newline);
      position = atEof ? content.length : newline + 1;
      buffer += physical;
      if (!atEof || physical.length > 0) physicalLineNumber++;

      let firstVisible = start;
      while (firstVisible < buffer.length && isSpace(buffer[firstVisible])) firstVisible++;
      if (firstVisible === buffer.length || buffer[firstVisible] === '#') {
        buffer = buffer.slice(0, start); // blank or comment: drop it, keep going
      } else if (start === 0) {
        firstLineNumber = physicalLineNumber;
      }

      if (atEof) break;
      if (buffer.length > 0) {
        // Peek: only a line starting with '#' or whitespace can belong to this logical line.
        const next = content[position];
        if (next !== '#' && !isSpace(next)) break;
      }
    }
    return buffer.length > 0 ? { text: buffer, lineNumber: firstLineNumber } : undefined;
  };

  for (let line = readOne(); line !== undefined; line = readOne()) {
    if (isSpace(line.text[0])) {
      const quoted = precision(cString(line.text), QUOTED_PREFIX_LENGTH);
      const ellipsis = line.text.length > QUOTED_PREFIX_LENGTH ? '...' : '';
      diagnostics.warn(`${path}: logical line must not start with whitespace: "${quoted}${ellipsis}"`);
      continue;
    }
    lines.push(line);
  }
  return lines;
}
