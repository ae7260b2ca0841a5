/**
 * Configuration of the scache(8) replacement, read exactly as a Postfix 3.7 daemon
 * (multi_server) reads it:
 *
 *   1. process_name := basename(argv[0]) goes into the dictionary;
 *   2. config_directory := configDir ?? $MAIL_CONFIG ?? /etc/postfix, then
 *      <dir>/main.cf is loaded (main-cf-file.ts);
 *   3. -o / -i / -m overrides replace entries (overrides.ts);
 *   4. service_name := -n value or basename(argv[0]);
 *   5. the framework's parameters are read in Postfix's order (global-parameters.ts),
 *      which also sets process_id;
 *   6. a non-empty maillog_file must match maillog_file_prefixes (maillog.ts);
 *   7. scache's own connection_cache_ttl_limit and connection_cache_status_update_time;
 *   8. postfix-scache's own parameters (postfix_scache_*, postfix-scache-params.ts).
 *
 * Values are expanded when read, against the dictionary as it is at that moment, so a
 * reference to a parameter that is read later (and not set in main.cf/-o) expands to
 * nothing, exactly as in Postfix. `lookup()` expands against the final dictionary.
 *
 * Fatal problems throw ConfigError (message = Postfix's text after "fatal: ");
 * warnings are returned, never printed.
 *
 * Trusts: the caller supplies process identity (name, pid, service) and, optionally, a
 * host name and clock for tests; everything read from disk or argv is validated here.
 */
import { hostname as systemHostName } from 'node:os';
import { byteStringToText, textToByteString } from './byte-string.js';
import { Diagnostics } from './diagnostics.js';
import { ParameterDictionary } from './dictionary.js';
import { readGlobalParameters } from './global-parameters.js';
import { MailConf } from './mail-conf.js';
import { loadMainCfFile, systemClock, type HotFileClock } from './main-cf-file.js';
import { checkMaillogFile } from './maillog.js';
import { applyOverrides, type ParameterOverride } from './overrides.js';
import { ParameterReader } from './parameter-reader.js';
import { SCACHE_TIMES } from './parameters.js';
import { readPostfixScacheParams, type PostfixScacheParams } from './postfix-scache-params.js';
import { buildScacheParams, type ScacheParams } from './scache-params.js';

export { ConfigError } from './config-error.js';
export type { ScacheParams } from './scache-params.js';
export type { PostfixScacheParams } from './postfix-scache-params.js';
export type { HotFileClock } from './main-cf-file.js';
export {
  parameterSpec,
  READ_ORDER,
  BUILTIN_PARAMETERS,
  MASTER_ONLY,
  POSTFIX_SCACHE_INTS,
  POSTFIX_SCACHE_BOOLS,
} from './parameters.js';
export type { ParameterSpec } from './parameters.js';
export { SYSLOG_FACILITY_NAMES, syslogFacilityNumber } from './syslog-facility.js';

/** Compiled-in configuration directory of Debian's (and upstream) Postfix. */
export const DEFAULT_CONFIG_DIRECTORY = '/etc/postfix';

/** A legacy `-i` (max_idle) or `-m` (max_use) value: stored as given, no "name=value" parsing. */
export interface DirectOverride {
  readonly name: string;
  readonly value: string;
}

export interface ConfigSource {
  /** Configuration directory; defaults to env.MAIL_CONFIG, then /etc/postfix. */
  configDir?: string;
  /** Environment to take MAIL_CONFIG from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** In command-line order: raw `-o` values ("name=value"), or DirectOverride for -i/-m. */
  overrides?: ReadonlyArray<string | DirectOverride>;
  /** basename(argv[0]). */
  processName: string;
  /** The -n value, else basename(argv[0]). */
  serviceName: string;
  processId: number;
  /** gethostname(); defaults to os.hostname(). Used for the myhostname default. */
  hostname?: string;
  /** Clock for main.cf's "hot file" re-read; defaults to the system clock. */
  clock?: HotFileClock;
}

export interface LoadedConfig {
  readonly params: ScacheParams;
  /** postfix-scache's own parameters (postfix_scache_*), beyond what Postfix's scache reads. */
  readonly postfixScache: PostfixScacheParams;
  /** Texts Postfix would log after "warning: ", in order. */
  readonly warnings: readonly string[];
  /**
   * A parameter's value expanded against the final dictionary ('' when undefined), as a
   * Postfix program would see it if it read the parameter now. Throws ConfigError when
   * the value has a macro error.
   */
  lookup(name: string): string;
  /** Whether the final dictionary defines the parameter at all. */
  isDefined(name: string): boolean;
}

/** Read main.cf and apply overrides: what the real scache does at start-up. */
export function loadConfig(source: ConfigSource): LoadedConfig {
  return initialise(source, true);
}

/**
 * The same start-up sequence without main.cf: compiled-in defaults (plus any overrides),
 * for running stand-alone without a Postfix installation.
 */
export function builtinDefaults(source: Omit<ConfigSource, 'clock'>): LoadedConfig {
  return initialise(source, false);
}

function initialise(source: ConfigSource, readMainCf: boolean): LoadedConfig {
  const environment = source.env ?? process.env;
  const configDirectory = source.configDir ?? environment.MAIL_CONFIG ?? DEFAULT_CONFIG_DIRECTORY;
  const processName = textToByteString(source.processName);

  const diagnostics = new Diagnostics();
  const dictionary = new ParameterDictionary();
  const conf = new MailConf(dictionary, diagnostics);

  conf.update('process_name', processName);
  const configDirectoryBytes = textToByteString(configDirectory);
  conf.update('config_directory', configDirectoryBytes);
  if (readMainCf) loadMainCfFile(dictionary, `${configDirectoryBytes}/main.cf`, diagnostics, source.clock ?? systemClock);

  applyOverrides(conf, (source.overrides ?? []).map(toByteOverride));
  conf.update('service_name', textToByteString(source.serviceName));

  const values = readGlobalParameters(conf, {
    configDirectory: configDirectoryBytes,
    systemHostName: textToByteString(source.hostname ?? systemHostName()),
    processId: source.processId,
  });
  checkMaillogFile(values.string('maillog_file'), values.string('maillog_file_prefixes'), diagnostics);
  const reader = new ParameterReader(conf);
  for (const spec of SCACHE_TIMES) values.set(spec.name, reader.readTime(spec));
  const postfixScache = readPostfixScacheParams(reader, diagnostics);

  const params = buildScacheParams(values, {
    processName: source.processName,
    processId: source.processId,
    serviceName: source.serviceName,
    configDirectory,
  });
  return {
    params,
    postfixScache,
    warnings: diagnostics.warnings,
    lookup: (name) => {
      const lookupConf = new MailConf(dictionary, new Diagnostics());
      return byteStringToText(lookupConf.lookupEvaluated(textToByteString(name)) ?? '');
    },
    isDefined: (name) => dictionary.has(textToByteString(name)),
  };
}

function toByteOverride(override: string | DirectOverride): ParameterOverride {
  if (typeof override === 'string') return textToByteString(override);
  return { name: textToByteString(override.name), value: textToByteString(override.value) };
}
