// ScacheServer: the connection cache server embedded in a Node.js process. The core serves the
// requests on its own thread; this object owns its lifecycle, its statistics timer and its logs.

import { EventEmitter } from 'node:events';
import { NativeServer, type NativeCounters, type NativeObservation } from '../native.js';
import { buildPlan, DEFAULT_MAX_ATTRIBUTE_BYTES } from '../dispatcher/plan.js';
import { dispatchEvents } from '../dispatcher/events.js';
import { createLogger, stderrTransport, type PostfixLogger } from '../logging/logger.js';
import { statisticsLines } from './statistics.js';

export type ListenOptions =
  /** Create a UNIX socket at `path` with permissions `mode` (default 0o600). */
  | { path: string; mode?: number }
  /** Serve listening sockets someone else created (master(8) passes fd 6 and up). */
  | { fds: number[] }
  /** Postfix's `-S`: serve one client on standard input and output, then finish. */
  | { stdio: true };

export interface ScacheServerOptions {
  /** Where to serve: a new socket path, inherited listening descriptors, or stdin/stdout. */
  listen: ListenOptions;
  /** connection_cache_ttl_limit in milliseconds (Postfix default 2 s). */
  ttlLimitMs?: number;
  /** ipc_timeout in milliseconds (Postfix default 3600 s). */
  ipcTimeoutMs?: number;
  /** connection_cache_status_update_time in milliseconds (Postfix default 600 s). */
  statusUpdateTimeMs?: number;
  /** The longest attribute name or value a client may send (default 64 KiB). */
  maxAttributeBytes?: number;
  /** service_name, as it appears in warnings (`scache socket`). */
  serviceName?: string;
  /** Log every transaction. */
  verbose?: boolean;
  /** Where records go (default: stderr, tagged `postfix/scache`). */
  logger?: PostfixLogger;
  /** master(8)'s status channel (fd 5) and GENERATION, when running under master. */
  master?: { fd: number; generation: number };
  /** The most connections cached at once; the oldest makes room (default: from RLIMIT_NOFILE). */
  connectionLimit?: number;
  /** The most connections cached for one endpoint (default: the global limit). */
  endpointConnectionLimit?: number;
  /** Close cached connections whose peer hung up instead of handing them out (default: true). */
  evictDeadPeers?: boolean;
  /**
   * Emit `observation` events for every save, lookup and eviction. Off by default: each costs the
   * core an event per request.
   */
  observe?: boolean;
}

export interface ScacheServerEvents {
  /** The number of connected clients changed. */
  clients: [count: number];
  /** master(8) closed the status channel (postfix reload or stop). */
  masterGone: [];
  /** The `-S` client has been served. */
  finished: [];
  /** The core failed (a panic in its thread): the server no longer serves. Unhandled, it throws. */
  error: [error: Error];
  /** A save, a lookup (hit or miss) or an eviction (expiry, dead peer, limit); needs `observe`. */
  observation: [observation: NativeObservation];
}

/** Postfix's defaults for the options that mirror main.cf parameters. */
export const POSTFIX_DEFAULTS = {
  ttlLimitMs: 2_000,
  ipcTimeoutMs: 3_600_000,
  statusUpdateTimeMs: 600_000,
  serviceName: 'scache',
} as const;

/**
 * Postfix's connection cache server (scache(8)), running in this process: the native core serves
 * the requests on its own thread, this object owns its lifecycle, statistics and logs. Several
 * servers in one process are independent.
 *
 * @example
 * ```ts
 * const server = ScacheServer.start({ listen: { path: '/tmp/test/scache' }, ttlLimitMs: 60_000 });
 * server.unref(); // do not keep the process alive for it
 * // ... smtp(8), or a ScacheClient, talks to /tmp/test/scache ...
 * await server.close(); // every cached connection closed
 * ```
 */
export class ScacheServer extends EventEmitter<ScacheServerEvents> {
  readonly logger: PostfixLogger;
  private readonly native: NativeServer;
  private readonly statisticsTimer: NodeJS.Timeout;
  private intervalStart = new Date();
  private clientCount = 0;
  private closing?: Promise<void>;

  private constructor(options: ScacheServerOptions) {
    super();
    const serviceName = options.serviceName ?? POSTFIX_DEFAULTS.serviceName;
    this.logger = options.logger ?? createLogger([stderrTransport(`postfix/${serviceName}`)]);
    const plan = buildPlan({
      ttlLimitMs: options.ttlLimitMs ?? POSTFIX_DEFAULTS.ttlLimitMs,
      ipcTimeoutMs: options.ipcTimeoutMs ?? POSTFIX_DEFAULTS.ipcTimeoutMs,
      maxAttributeBytes: options.maxAttributeBytes ?? DEFAULT_MAX_ATTRIBUTE_BYTES,
      serviceName,
      verbose: options.verbose ?? false,
      connectionLimit: options.connectionLimit,
      endpointConnectionLimit: options.endpointConnectionLimit,
      evictDeadPeers: options.evictDeadPeers,
      observe: options.observe,
    });
    this.native = new NativeServer(plan, options.listen, options.master, (events) =>
      dispatchEvents(events, {
        logger: this.logger,
        onClients: (count) => {
          this.clientCount = count;
          this.emit('clients', count);
        },
        onMasterGone: () => this.emit('masterGone'),
        onFinished: () => this.emit('finished'),
        onPanicked: (message) => this.emit('error', new Error(`server thread panicked: ${message}`)),
        onObserved: (observation) => this.emit('observation', observation),
      }),
    );
    const interval = options.statusUpdateTimeMs ?? POSTFIX_DEFAULTS.statusUpdateTimeMs;
    this.statisticsTimer = setInterval(() => this.logStatistics(), interval).unref();
  }

  /** Starts serving. Throws at once if the socket cannot be created (e.g. a live server holds it). */
  static start(options: ScacheServerOptions): ScacheServer {
    return new ScacheServer(options);
  }

  /** The current interval's counters, without resetting them. */
  statistics(): NativeCounters {
    return this.native.counters(false);
  }

  /**
   * How many times the core's loop has gone round; each call also makes it go round once more, so
   * a watchdog that sees the count stand still between calls knows the loop is stuck.
   */
  loopHeartbeat(): number {
    return this.native.watchdog();
  }

  /** Clients connected right now. */
  get clients(): number {
    return this.clientCount;
  }

  /** Logs the interval's statistics (if anything happened) and starts a new interval. */
  logStatistics(): void {
    this.logCounters(this.native.counters(true));
  }

  private logCounters(counters: NativeCounters): void {
    for (const line of statisticsLines(counters, this.intervalStart)) {
      this.logger.info(line);
    }
    this.intervalStart = new Date();
  }

  /** Stops serving, closes every cached connection and client, and logs the final statistics. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.statisticsTimer);
      this.logCounters(await this.native.close());
    })();
    return this.closing;
  }

  /** Keeps the process alive while serving (the default). */
  ref(): this {
    this.native.ref();
    return this;
  }

  /** Lets the process exit while serving, like `net.Server.unref()`. */
  unref(): this {
    this.native.unref();
    return this;
  }
}
