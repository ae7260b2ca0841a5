/**
 * The syslog facility names Postfix accepts for syslog_facility on Linux
 * (msg_syslog.c's table, limited to the LOG_* constants glibc defines, so "security"
 * is not there), with glibc's facility numbers: PRI = number * 8 + severity.
 *
 * Names are case-sensitive, as Postfix compares them with strcmp().
 *
 * Trusts: nothing; this is data.
 */
const FACILITY_NUMBERS: ReadonlyMap<string, number> = new Map([
  ['auth', 4],
  ['authpriv', 10],
  ['cron', 9],
  ['daemon', 3],
  ['ftp', 11],
  ['kern', 0],
  ['lpr', 6],
  ['mail', 2],
  ['news', 7],
  ['syslog', 5],
  ['user', 1],
  ['uucp', 8],
  ['local0', 16],
  ['local1', 17],
  ['local2', 18],
  ['local3', 19],
  ['local4', 20],
  ['local5', 21],
  ['local6', 22],
  ['local7', 23],
]);

export const SYSLOG_FACILITY_NAMES: readonly string[] = [...FACILITY_NUMBERS.keys()];

/** glibc's facility number for a name Postfix accepts, or undefined. */
export function syslogFacilityNumber(name: string): number | undefined {
  return FACILITY_NUMBERS.get(name);
}
