// The generic daemon options master(8) passes to every Postfix service (spec §7.1, §7.2), read with
// getopt's rules and then typed by yargs.
//
// Postfix reads them with getopt("cdDi:lm:n:o:s:St:uvVz") in POSIX mode: flags cluster (`-lv`), an
// option that takes a value takes the rest of its word or the next word (`-oname=value`,
// `-o name=value`), and the first word that is not an option ends the options. yargs alone would
// split `-tunix` into five flags, so the words are first put into getopt's one-option-per-word
// form (`-o=value`, so that a value starting with a dash stays a value); yargs then types and
// counts them. Nothing here trusts the words it is given.

import yargs from 'yargs';

/** Options that take a value, and options that do not. */
const WITH_VALUE = new Set(['i', 'm', 'n', 'o', 's', 't']);
const FLAGS = new Set(['c', 'd', 'D', 'l', 'S', 'u', 'v', 'V', 'z']);

/** A `-i` (max_idle) or `-m` (max_use) value: stored as given, like a `-o` without its name. */
export interface DirectOverride {
  readonly name: string;
  readonly value: string;
}

export interface DaemonOptions {
  /** -c: chroot to queue_directory. */
  chroot: boolean;
  /** -d: not a daemon (allows a terminal on stdin). */
  notDaemon: boolean;
  /** -D: run debugger_command. */
  debugger: boolean;
  /** -l: process limit 1. */
  solitary: boolean;
  /** -z: process limit 0. */
  unlimited: boolean;
  /** -n: the service name. */
  serviceName?: string;
  /** -o, -i and -m, in command-line order. */
  overrides: Array<string | DirectOverride>;
  /** -s: how many listening sockets, from fd 6 on. */
  socketCount?: string;
  /** -S: serve standard input and output once. */
  standAlone: boolean;
  /** -t: the transport type. */
  transport?: string;
  /** -u: drop privileges to mail_owner. */
  unprivileged: boolean;
  /** -v: verbosity, one per -v. */
  verbose: number;
  /** -V: also log to stderr. */
  stderr: boolean;
  /** Words after the options. */
  leftover: string[];
}

/** A bad option, with Postfix's fatal text; `stderr` says whether -V came before it. */
export class OptionError extends Error {
  constructor(
    message: string,
    readonly stderr: boolean,
  ) {
    super(message);
  }
}

/** getopt's reading of `argv` (without the program name): one option per word, `-x` or `-x=value`. */
export function getoptWords(argv: readonly string[]): { words: string[]; leftover: string[] } {
  const words: string[] = [];
  let index = 0;
  for (; index < argv.length; index++) {
    const word = argv[index];
    if (word === '--') {
      index++;
      break;
    }
    if (!word.startsWith('-') || word === '-') break;
    for (let at = 1; at < word.length; at++) {
      const letter = word[at];
      if (FLAGS.has(letter)) {
        words.push(`-${letter}`);
      } else if (WITH_VALUE.has(letter)) {
        const attached = word.slice(at + 1);
        const value = attached !== '' ? attached : argv[++index];
        if (value === undefined) throw new OptionError(`invalid option: ${letter}`, words.includes('-V'));
        words.push(`-${letter}=${value}`);
        break;
      } else {
        throw new OptionError(`invalid option: ${letter}`, words.includes('-V'));
      }
    }
  }
  return { words, leftover: argv.slice(index) };
}

export function parseDaemonOptions(argv: readonly string[]): DaemonOptions {
  const { words, leftover } = getoptWords(argv);
  const parsed = yargs(words)
    .parserConfiguration({ 'short-option-groups': false, 'camel-case-expansion': false, 'duplicate-arguments-array': true })
    .option('c', { type: 'boolean', default: false })
    .option('d', { type: 'boolean', default: false })
    .option('D', { type: 'boolean', default: false })
    .option('l', { type: 'boolean', default: false })
    .option('S', { type: 'boolean', default: false })
    .option('u', { type: 'boolean', default: false })
    .option('v', { type: 'count' })
    .option('V', { type: 'boolean', default: false })
    .option('z', { type: 'boolean', default: false })
    .option('n', { type: 'string' })
    .option('s', { type: 'string' })
    .option('t', { type: 'string' })
    .option('i', { type: 'string' })
    .option('m', { type: 'string' })
    .option('o', { type: 'string', array: true })
    .help(false)
    .version(false)
    .exitProcess(false)
    .parseSync();
  return {
    chroot: parsed.c,
    notDaemon: parsed.d,
    debugger: parsed.D,
    solitary: parsed.l,
    unlimited: parsed.z,
    serviceName: last(parsed.n),
    overrides: overridesInOrder(words),
    socketCount: last(parsed.s),
    standAlone: parsed.S,
    transport: last(parsed.t),
    unprivileged: parsed.u,
    verbose: parsed.v,
    stderr: parsed.V,
    leftover,
  };
}

/** -o, -i and -m must be applied in the order given: a later one wins over an earlier one. */
function overridesInOrder(words: readonly string[]): Array<string | DirectOverride> {
  const overrides: Array<string | DirectOverride> = [];
  for (const word of words) {
    const value = word.slice(3);
    if (word.startsWith('-o=')) overrides.push(value);
    if (word.startsWith('-i=')) overrides.push({ name: 'max_idle', value });
    if (word.startsWith('-m=')) overrides.push({ name: 'max_use', value });
  }
  return overrides;
}

/** Repeated single-value options: getopt keeps the last. */
function last(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}
