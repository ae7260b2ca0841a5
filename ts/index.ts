/**
 * postfix-scache: a drop-in replacement for Postfix's scache(8) connection cache server, and a
 * client for any connection cache server.
 *
 * - {@link ScacheServer} runs the server in this process, on a socket path or inherited listening
 *   descriptors; the requests are served by the native core on its own thread.
 * - {@link ScacheClient} talks to any connection cache socket (ours or Postfix's) with Node sockets
 *   in and out.
 *
 * @packageDocumentation
 */

export {
  ScacheServer,
  POSTFIX_DEFAULTS,
  type ListenOptions,
  type ScacheServerEvents,
  type ScacheServerOptions,
} from './server/scache-server.js';
export {
  ScacheClient,
  DEFAULT_CLIENT_TIMEOUT_MS,
  DEFAULT_STATUS_LIMIT,
  type FoundDestination,
  type FoundEndpoint,
  type SaveEndpOptions,
  type ScacheClientOptions,
  type ScacheStatus,
  type ScacheText,
} from './client/scache-client.js';
export { ScacheClientError, type ScacheClientErrorKind } from './client/errors.js';
export type {
  BindingStatus,
  CacheStatus,
  ConnectionStatus,
  DestinationStatus,
  EndpointStatus,
} from './client/cache-status.js';
export { createLogger, stderrTransport, type PostfixLogger, type Severity } from './logging/logger.js';
export type {
  EvictionReason,
  NativeCounters as ScacheStatistics,
  NativeObservation as ScacheObservation,
  ObservedAction,
  RequestHandler,
} from './native.js';
