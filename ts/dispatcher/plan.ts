// The request dispatcher: which request name goes to which handler, and the request-level policy
// (ttl clamping, stalled-client timeout, attribute size bound, verbose transaction logging).
// It is decided here and installed into the core before the first request, so that requests never
// wait for JavaScript: the core applies the plan on its own thread (see stack notes on hand-offs).

import { descriptorLimit, type RequestHandler, type ServerPlan } from '../native.js';

/** Postfix's requests, each served by the handler of the same name (scache.c's dispatch). */
export const POSTFIX_ROUTES: ReadonlyArray<{ request: string; handler: RequestHandler }> = [
  { request: 'save_endp', handler: 'save_endp' },
  { request: 'find_endp', handler: 'find_endp' },
  { request: 'save_dest', handler: 'save_dest' },
  { request: 'find_dest', handler: 'find_dest' },
];

/**
 * Our status request (`postfix-scache status`), under a name no Postfix client sends, so real
 * clients are unaffected; the socket's permissions already limit who can ask.
 */
export const STATUS_ROUTE = { request: 'postfix_scache_status', handler: 'status' } as const;

/** Postfix has no bound at all (spec §1.5); real properties are a few kilobytes. */
export const DEFAULT_MAX_ATTRIBUTE_BYTES = 64 * 1024;

export interface RequestPolicy {
  /** connection_cache_ttl_limit: longer ttls are clamped to it. */
  ttlLimitMs: number;
  /** ipc_timeout: how long a client may stall in the middle of an exchange. */
  ipcTimeoutMs: number;
  /** The longest attribute name or value accepted; past it the client is warned about and dropped. */
  maxAttributeBytes: number;
  /** Names the client stream in warnings, as `<service_name> socket`. */
  serviceName: string;
  /** Log every transaction (Postfix's -v). */
  verbose: boolean;
  /** Report every save, lookup and eviction (costs one event per request; off by default). */
  observe?: boolean;
  /** The most connections cached at once; the oldest makes room (default: from RLIMIT_NOFILE). */
  connectionLimit?: number;
  /** The most connections cached for one endpoint (default: the global limit). */
  endpointConnectionLimit?: number;
  /** Close cached connections whose peer hung up instead of handing them out (default: yes). */
  evictDeadPeers?: boolean;
}

/**
 * Descriptors kept free for clients, the listening sockets and logging when the cache is full:
 * a fixed floor plus an eighth of the limit.
 */
export function defaultConnectionLimit(descriptorLimit: number): number {
  return Math.max(1, descriptorLimit - 64 - Math.floor(descriptorLimit / 8));
}

export function buildPlan(policy: RequestPolicy): ServerPlan {
  return {
    routes: [...POSTFIX_ROUTES, STATUS_ROUTE].map((route) => ({ ...route })),
    ttlLimitMs: policy.ttlLimitMs,
    ipcTimeoutMs: policy.ipcTimeoutMs,
    maxString: policy.maxAttributeBytes,
    streamLabel: `${policy.serviceName} socket`,
    trace: policy.verbose,
    observe: policy.observe ?? false,
    connectionLimit: policy.connectionLimit ?? defaultConnectionLimit(descriptorLimit()),
    endpointConnectionLimit: policy.endpointConnectionLimit,
    evictDeadPeers: policy.evictDeadPeers ?? true,
  };
}
