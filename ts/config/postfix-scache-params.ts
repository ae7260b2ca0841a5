/**
 * postfix-scache's own parameters (parameters.ts: POSTFIX_SCACHE_INTS, POSTFIX_SCACHE_BOOLS), read
 * after scache's own table exactly as Postfix reads an int or a bool: `$name` expansion, `-o`
 * overrides, `bad numerical configuration: ...` / `bad boolean configuration: ...` and
 * `invalid <name> parameter value N < min` / `> max` as fatal texts. The two limits accept no
 * negative value either (Postfix's bound of 0 means "none", so that check is made here, in the
 * same words).
 *
 * Trusts: the reader and its dictionary (mail-conf.ts); the specs in parameters.ts.
 */
import type { Diagnostics } from './diagnostics.js';
import type { ParameterReader } from './parameter-reader.js';
import { POSTFIX_SCACHE_BOOLS, POSTFIX_SCACHE_INTS } from './parameters.js';

export interface PostfixScacheParams {
  /** postfix_scache_connection_limit: the most connections cached at once; 0 = from RLIMIT_NOFILE. */
  readonly connectionLimit: number;
  /** postfix_scache_endpoint_connection_limit: the most cached for one endpoint; 0 = the global limit. */
  readonly endpointConnectionLimit: number;
  /** postfix_scache_evict_dead_peers: close cached connections whose peer hung up (no: Postfix's way). */
  readonly evictDeadPeers: boolean;
  /** postfix_scache_max_attribute_length: the longest attribute name or value a client may send. */
  readonly maxAttributeLength: number;
}

const NOT_NEGATIVE = new Set(['postfix_scache_connection_limit', 'postfix_scache_endpoint_connection_limit']);

export function readPostfixScacheParams(reader: ParameterReader, diagnostics: Diagnostics): PostfixScacheParams {
  const ints = new Map<string, number>();
  for (const spec of POSTFIX_SCACHE_INTS) {
    const value = reader.readInteger(spec);
    if (NOT_NEGATIVE.has(spec.name) && value < 0) diagnostics.fatal(`invalid ${spec.name} parameter value ${value} < 0`);
    ints.set(spec.name, value);
  }
  const bools = new Map(POSTFIX_SCACHE_BOOLS.map((spec) => [spec.name, reader.readBool(spec)] as const));
  return Object.freeze({
    connectionLimit: ints.get('postfix_scache_connection_limit')!,
    endpointConnectionLimit: ints.get('postfix_scache_endpoint_connection_limit')!,
    evictDeadPeers: bools.get('postfix_scache_evict_dead_peers')!,
    maxAttributeLength: ints.get('postfix_scache_max_attribute_length')!,
  });
}
