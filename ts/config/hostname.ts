/**
 * Host names as Postfix 3.7 checks and derives them.
 *
 * - validHostname(): valid_hostname() with its "gripe" warnings: labels of letters,
 *   digits, '_' and inner '-', at most 63 bytes each, '.' between labels, not all
 *   numeric, at most 255 bytes.
 * - defaultMyhostname(): check_myhostname(): the system host name (gethostname(),
 *   which is what os.hostname() returns); if it has no dot, ".$mydomain" is appended
 *   (mydomain from the configuration, else "localdomain"). No DNS lookups, on purpose.
 * - defaultMydomain(): check_mydomainname(): what follows the first dot of myhostname,
 *   else "localdomain".
 *
 * Trusts: the system host name given by the caller.
 */
import type { ByteString } from './byte-string.js';
import { isAlnum, isDigit, precision } from './c-text.js';
import type { Diagnostics } from './diagnostics.js';
import type { MailConf } from './mail-conf.js';

const MAX_LABEL_LENGTH = 63;
const MAX_HOSTNAME_LENGTH = 255;
export const DEFAULT_MYDOMAIN = 'localdomain';

/** Reports problems as `valid_hostname: ...` warnings, like Postfix with DO_GRIPE. */
export function validHostname(name: ByteString, warn: (text: ByteString) => void): boolean {
  const complain = (problem: string): false => {
    warn(`valid_hostname: ${problem}`);
    return false;
  };
  const shown = precision(name, 100);
  if (name.length === 0) return complain('empty hostname');

  let labelLength = 0;
  let nonNumeric = false;
  for (let i = 0; i < name.length; i++) {
    const ch = name[i] as string;
    const next = name[i + 1];
    if (isAlnum(ch) || ch === '_') {
      labelLength++;
      if (labelLength > MAX_LABEL_LENGTH) return complain(`hostname label too long: ${shown}`);
      if (!isDigit(ch)) nonNumeric = true;
    } else if (ch === '.') {
      if (labelLength === 0 || next === undefined) return complain(`misplaced delimiter: ${shown}`);
      labelLength = 0;
    } else if (ch === '-') {
      nonNumeric = true;
      labelLength++;
      if (labelLength === 1 || next === undefined || next === '.') return complain(`misplaced hyphen: ${shown}`);
    } else {
      return complain(`invalid character ${ch.charCodeAt(0)}(decimal): ${shown}`);
    }
  }
  if (!nonNumeric) return complain(`numeric hostname: ${shown}`);
  if (name.length > MAX_HOSTNAME_LENGTH) return complain(`bad length ${name.length} for ${shown}...`);
  return true;
}

/** get_hostname() + check_myhostname(). */
export function defaultMyhostname(systemHostName: ByteString, conf: MailConf, diagnostics: Diagnostics): ByteString {
  if (!validHostname(systemHostName, (text) => diagnostics.warn(text))) {
    diagnostics.fatal('unable to use my own hostname');
  }
  if (systemHostName.includes('.')) return systemHostName;
  const domain = conf.lookupEvaluated('mydomain') ?? DEFAULT_MYDOMAIN;
  return `${systemHostName}.${domain}`;
}

/** check_mydomainname(). */
export function defaultMydomain(myhostname: ByteString): ByteString {
  const dot = myhostname.indexOf('.');
  return dot < 0 ? DEFAULT_MYDOMAIN : myhostname.slice(dot + 1);
}
