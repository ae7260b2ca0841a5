/**
 * The framework's parameter initialisation, mail_params_init() of Postfix 3.7, in its
 * order: compatibility_level (must parse), the first strings, the syslog_facility check,
 * early booleans, inet_protocols names, myhostname/mydomain (computed defaults, then
 * valid_hostname checks), the remaining strings, integers, booleans and times, then
 * process_id goes into the dictionary and the cross-checks run (myhostname vs
 * relayhost, single-valued myorigin, VERP delimiters).
 *
 * Not reproduced (documented deviations): the user/group database checks of
 * mail_owner, default_privs and setgid_group (getpwnam/getgrnam; the privilege code
 * resolves mail_owner itself), known_tcp_ports syntax warnings, IPv4/IPv6 socket
 * probing for inet_protocols, and mynetworks (computed from interface addresses, read
 * last; a `$mynetworks` in scache's own two parameters would expand to nothing here).
 *
 * Trusts: the dictionary already holds main.cf, -o and the early built-ins.
 */
import type { ByteString } from './byte-string.js';
import { CHARS_COMMA_SP, splitList } from './c-text.js';
import { parseCompatibilityLevel, malformedLevelMessage } from './compat-level.js';
import { defaultMydomain, defaultMyhostname, validHostname } from './hostname.js';
import type { MailConf } from './mail-conf.js';
import { ParameterReader } from './parameter-reader.js';
import {
  BOOLS,
  COMPATIBILITY_LEVEL,
  FIRST_BOOLS,
  FIRST_EXPRESSION_BOOLS,
  FIRST_STRINGS,
  INTS,
  LONGS,
  MYDOMAIN,
  MYHOSTNAME,
  OTHER_STRINGS,
  TIMES,
} from './parameters.js';
import { ReadValues } from './read-values.js';
import { syslogFacilityNumber } from './syslog-facility.js';

export interface GlobalParameterContext {
  /** The directory main.cf was read from (Postfix's var_config_dir), used in messages. */
  readonly configDirectory: ByteString;
  /** gethostname() result. */
  readonly systemHostName: ByteString;
  readonly processId: number;
}

const INET_PROTOCOL_NAMES = new Set(['all', 'ipv4', 'ipv6']);

export function readGlobalParameters(conf: MailConf, context: GlobalParameterContext): ReadValues {
  const diagnostics = conf.diagnostics;
  const reader = new ParameterReader(conf);
  const values = new ReadValues();
  const mainCf = `file ${context.configDirectory}/main.cf`;

  const compatibilityLevel = reader.readString(COMPATIBILITY_LEVEL);
  if (parseCompatibilityLevel(compatibilityLevel) === undefined) diagnostics.fatal(malformedLevelMessage(compatibilityLevel));
  values.set(COMPATIBILITY_LEVEL.name, compatibilityLevel);

  for (const spec of FIRST_STRINGS) values.set(spec.name, reader.readString(spec));
  const facility = values.string('syslog_facility');
  if (syslogFacilityNumber(facility) === undefined) {
    diagnostics.fatal(`${mainCf}: parameter syslog_facility: unrecognized value: ${facility}`);
  }

  for (const spec of FIRST_BOOLS) values.set(spec.name, reader.readBool(spec));
  for (const spec of FIRST_EXPRESSION_BOOLS) values.set(spec.name, reader.readExpressionBool(spec));

  const protocols = values.string('inet_protocols');
  for (const protocol of splitList(protocols)) {
    if (!INET_PROTOCOL_NAMES.has(protocol)) {
      diagnostics.fatal(`unknown inet_protocols value "${protocol}" in "${protocols}"`);
    }
  }

  const myhostname = reader.readComputedString(MYHOSTNAME, () =>
    defaultMyhostname(context.systemHostName, conf, diagnostics),
  );
  values.set('myhostname', myhostname);
  const mydomain = reader.readComputedString(MYDOMAIN, () => defaultMydomain(myhostname));
  values.set('mydomain', mydomain);
  for (const [name, value] of [['myhostname', myhostname], ['mydomain', mydomain]] as const) {
    if (!validHostname(value, (text) => diagnostics.warn(text))) {
      diagnostics.fatal(`${mainCf}: parameter ${name}: bad parameter value: ${value}`);
    }
  }

  for (const spec of OTHER_STRINGS) values.set(spec.name, reader.readString(spec));
  for (const spec of [...INTS, ...LONGS]) values.set(spec.name, reader.readInteger(spec));
  for (const spec of BOOLS) values.set(spec.name, reader.readBool(spec));
  for (const spec of TIMES) values.set(spec.name, reader.readTime(spec));

  // "The PID variable cannot be set from the configuration file!!" (mail_params.c)
  conf.update('process_id', String(context.processId));

  const relayhost = values.string('relayhost');
  if (sameHostName(myhostname, relayhost, values.boolean('smtputf8_enable'))) {
    diagnostics.fatal(`myhostname and relayhost parameter settings must not be identical: ${myhostname}`);
  }
  const myorigin = values.string('myorigin');
  if ([...myorigin].some((ch) => CHARS_COMMA_SP.includes(ch))) {
    diagnostics.fatal(`myorigin parameter setting must not contain multiple values: ${myorigin}`);
  }
  const verpProblem = verpDelimiterProblem(values.string('default_verp_delimiters'), values.string('verp_delimiter_filter'));
  if (verpProblem !== undefined) {
    diagnostics.fatal(`${mainCf}: parameters default_verp_delimiters and verp_delimiter_filter: ${verpProblem}`);
  }
  return values;
}

/** strcasecmp_utf8(): ASCII case folding, Unicode folding when SMTPUTF8 is on. */
function sameHostName(a: ByteString, b: ByteString, utf8: boolean): boolean {
  if (a.length === 0 && b.length === 0) return true;
  const fold = (text: ByteString): string =>
    utf8 ? Buffer.from(text, 'latin1').toString('utf8').toLowerCase() : text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return fold(a) === fold(b);
}

/** verp_delims_verify(). */
function verpDelimiterProblem(delimiters: ByteString, filter: ByteString): string | undefined {
  if (delimiters.length !== 2) return 'bad VERP delimiter character count';
  if (!filter.includes(delimiters[0] as string)) return 'bad first VERP delimiter character';
  if (!filter.includes(delimiters[1] as string)) return 'bad second VERP delimiter character';
  return undefined;
}
