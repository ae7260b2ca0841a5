/**
 * Reads <config_directory>/main.cf into the dictionary the way Postfix's
 * dict_load_file_xt() does, including its "hot file" rule: if the file's modification
 * time (in whole seconds) is not older than one second before the read started, Postfix
 * pauses 0.3 s and reads it again, into the same dictionary, until the file has cooled
 * down. Re-reading repeats the "overriding earlier entry" warnings of duplicate names.
 *
 * Failures: `open <path>: <strerror>` when the file cannot be opened, and
 * `read <path>: <strerror>` when reading fails (e.g. main.cf is a directory: "Is a
 * directory"). Whatever was read before a read error is processed first, as in Postfix.
 *
 * Trusts: the clock and sleeper it is given (tests inject both).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { byteStringToBuffer, bytesToByteString, type ByteString } from './byte-string.js';
import type { Diagnostics } from './diagnostics.js';
import type { ParameterDictionary } from './dictionary.js';
import { loadMainCfInto } from './main-cf.js';
import { strerror } from './strerror.js';

export interface HotFileClock {
  /** Wall-clock time in whole seconds, like time(2). */
  nowSeconds(): number;
  /** Block for the given number of milliseconds. */
  sleepMilliseconds(milliseconds: number): void;
}

const COOL_DOWN_PAUSE_MS = 300;

export const systemClock: HotFileClock = {
  nowSeconds: () => Math.floor(Date.now() / 1000),
  sleepMilliseconds: (milliseconds) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, milliseconds);
  },
};

interface ReadOutcome {
  readonly content: ByteString;
  readonly error: unknown;
}

function readWholeFile(descriptor: number): ReadOutcome {
  const chunks: Buffer[] = [];
  try {
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const count = readSync(descriptor, chunk, 0, chunk.length, null);
      if (count === 0) break;
      chunks.push(chunk.subarray(0, count));
    }
    return { content: bytesToByteString(Buffer.concat(chunks)), error: undefined };
  } catch (error) {
    return { content: bytesToByteString(Buffer.concat(chunks)), error };
  }
}

export function loadMainCfFile(
  dictionary: ParameterDictionary,
  path: ByteString,
  diagnostics: Diagnostics,
  clock: HotFileClock = systemClock,
): void {
  const fsPath = byteStringToBuffer(path);
  for (let before = clock.nowSeconds(); ; ) {
    let descriptor: number;
    try {
      descriptor = openSync(fsPath, 'r');
    } catch (error) {
      diagnostics.fatal(`open ${path}: ${strerror(error)}`);
    }
    let modifiedSeconds: number;
    try {
      const outcome = readWholeFile(descriptor);
      loadMainCfInto(dictionary, outcome.content, path, diagnostics);
      modifiedSeconds = Math.floor(fstatSync(descriptor).mtimeMs / 1000);
      if (outcome.error !== undefined) diagnostics.fatal(`read ${path}: ${strerror(outcome.error)}`);
    } finally {
      closeSync(descriptor);
    }
    const after = clock.nowSeconds();
    if (modifiedSeconds < before - 1 || modifiedSeconds > after) return;
    clock.sleepMilliseconds(COOL_DOWN_PAUSE_MS);
    before = after;
  }
}
