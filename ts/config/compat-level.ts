/**
 * Postfix compatibility levels ("0", "1", "2", "3.6", "3.6.1"): parsing as
 * compat_level_from_string() does, and the "level" operator suffix
 * (`${{$compatibility_level} <level {2} ? {...} : {...}}`) that every Postfix 3.6+
 * program registers with mac_expand before it reads its configuration.
 *
 * A level is major[.minor[.patch]], each part parsed with strtol (so leading
 * whitespace and a sign are accepted, then range-checked); minor and patch must be
 * 0..1023. Levels compare as the tuple (major, minor, patch).
 *
 * Trusts: nothing; malformed input is reported through the supplied warn/fatal.
 */
import type { ByteString } from './byte-string.js';
import { strtol10 } from './c-text.js';
import { applyOperator, type OperatorEvaluator } from './expand.js';

const MINOR_WIDTH = 10n;
const PATCH_WIDTH = 10n;
const MINOR_MAX = 1023n;
const PATCH_MAX = 1023n;
const MAJOR_SHIFT = MINOR_WIDTH + PATCH_WIDTH;
const LONG_MAX = (1n << 63n) - 1n;
const MAJOR_MAX = LONG_MAX >> MAJOR_SHIFT;

/** The operator suffix Postfix registers for compatibility-level comparisons. */
export const LEVEL_SUFFIX = 'level';

/** One strtol'd part: must consume digits and stop at end of text or at '.'. */
function parsePart(text: ByteString, max: bigint, lastPart: boolean): { value: bigint; rest: ByteString | undefined } | undefined {
  const converted = strtol10(text);
  const stop = text[converted.end];
  const stopOk = stop === undefined || (!lastPart && stop === '.');
  if (converted.end === 0 || !stopOk || converted.outOfRange || converted.value < 0n || converted.value > max) return undefined;
  return { value: converted.value, rest: stop === undefined ? undefined : text.slice(converted.end + 1) };
}

/** The comparable number for a level, or undefined when the syntax is malformed. */
export function parseCompatibilityLevel(text: ByteString): bigint | undefined {
  const major = parsePart(text, MAJOR_MAX, false);
  if (major === undefined) return undefined;
  let level = major.value << MAJOR_SHIFT;
  if (major.rest === undefined) return level;
  const minor = parsePart(major.rest, MINOR_MAX, false);
  if (minor === undefined) return undefined;
  level |= minor.value << PATCH_WIDTH;
  if (minor.rest === undefined) return level;
  const patch = parsePart(minor.rest, PATCH_MAX, true);
  if (patch === undefined) return undefined;
  return level | patch.value;
}

export function malformedLevelMessage(text: ByteString): ByteString {
  return `malformed compatibility level syntax: "${text}"`;
}

/** The "level" operator: a malformed operand warns and fails the expansion, as in Postfix. */
export function compatibilityLevelOperator(warn: (text: ByteString) => void): OperatorEvaluator {
  return (left, operator, right) => {
    const leftLevel = parseCompatibilityLevel(left);
    if (leftLevel === undefined) {
      warn(malformedLevelMessage(left));
      return 'error';
    }
    const rightLevel = parseCompatibilityLevel(right);
    if (rightLevel === undefined) {
      warn(malformedLevelMessage(right));
      return 'error';
    }
    return applyOperator(leftLevel - rightLevel, operator);
  };
}
