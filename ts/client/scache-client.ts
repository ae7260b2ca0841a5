// ScacheClient: a client of any connection cache server — ours or Postfix's scache(8) — that speaks
// as Postfix's own client does (spec §5), with Node sockets in and out. The exchanges run in the
// core's client on the libuv thread pool (crates/scache-napi/src/client.rs); nothing here blocks.

import net from 'node:net';
import { closeFd, NativeClient, streamSocketProblem, type ClientReply } from '../native.js';
import { parseCacheStatus, type CacheStatus } from './cache-status.js';
import { ScacheClientError } from './errors.js';

/** A label or property: text (sent as UTF-8) or raw bytes. Postfix treats both as opaque bytes. */
export type ScacheText = string | Uint8Array;

/** The server's answer to a save: `ok` (0) saved, `bad` (1) malformed request, `fail` (2) not saved. */
export type ScacheStatus = 'ok' | 'bad' | 'fail';

export interface ScacheClientOptions {
  /**
   * connection_cache_protocol_timeout, in milliseconds: the longest wait for the announcement and
   * for each read and write of an exchange (default 5000, Postfix's 5 s).
   */
  timeoutMs?: number;
}

export interface SaveEndpOptions {
  /**
   * Keep `socket` open after a successful save. By default it is destroyed then (our descriptor is
   * closed; the connection stays open in the cache), as Postfix's client closes its copy — so that
   * nothing in this process reads from a connection the cache now holds.
   */
  keepSocket?: boolean;
}

/** A connection found by `findEndp`. */
export interface FoundEndpoint {
  /** The cached connection, now owned by the caller (call `destroy()` or save it again). */
  socket: net.Socket;
  /** The endpoint property it was saved with. */
  property: string;
}

/** A connection found by `findDest`. */
export interface FoundDestination {
  /** The cached connection, now owned by the caller (call `destroy()` or save it again). */
  socket: net.Socket;
  /** The destination property of the binding that led to it. */
  destProperty: string;
  /** The endpoint property the connection was saved with. */
  endpProperty: string;
}

/** Postfix's connection_cache_protocol_timeout default. */
export const DEFAULT_CLIENT_TIMEOUT_MS = 5_000;

/** How many destinations and endpoints `status()` lists unless told otherwise. */
export const DEFAULT_STATUS_LIMIT = 100;

const STATUSES: Record<number, ScacheStatus> = { 0: 'ok', 1: 'bad', 2: 'fail' };

/** One byte string for the wire, from text (UTF-8) or bytes. */
function bytes(value: ScacheText, what: string): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${what} must be a string or a Uint8Array`);
}

function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 0x7fff_ffff) {
    // Postfix's client panics on ttl <= 0 before sending (spec §5.3); so do we, politely.
    throw new RangeError(`ttlSeconds must be an integer from 1 to 2147483647, not ${ttlSeconds}`);
  }
}

/** Rust's io::Error text without its ` (os error N)` suffix. */
function withoutErrno(message: string): string {
  return message.replace(/ \(os error \d+\)/g, '');
}

/** A Node socket's descriptor, or -1 (libuv's TCP and pipe handles expose it on Linux). */
function descriptorOf(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}

/** Stops libuv reading from `socket`, so that no byte of the connection is consumed here any more. */
function stopReading(socket: net.Socket): void {
  socket.pause();
  const handle = (socket as unknown as { _handle?: { readStop?: () => number; reading?: boolean } | null })._handle;
  if (handle && typeof handle.readStop === 'function') {
    handle.reading = false;
    handle.readStop();
  }
}

/** A Node socket over a received descriptor (a UNIX-domain or TCP stream socket). */
function adopt(fd: number): net.Socket {
  try {
    return new net.Socket({ fd, readable: true, writable: true });
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/**
 * A connection to a connection cache server (ours, or Postfix's scache): the four requests of
 * Postfix's protocol with Node sockets in and out, and our `status()`.
 *
 * Requests on one client run one at a time, in call order (concurrent calls are queued). Each runs
 * on the libuv thread pool; an idle client keeps no handle open, so it never keeps the process
 * alive. After a failure that leaves an exchange unfinished (timeout, protocol violation, a server
 * that vanished) the client is closed and later requests reject with kind `closed`.
 *
 * @example
 * ```ts
 * const client = await ScacheClient.connect('/var/spool/postfix/private/scache');
 * await client.saveEndp(60, 'smtp\n192.0.2.1\n25\n0\n', 'reuse_count=0\n', socket);
 * const found = await client.findEndp('smtp\n192.0.2.1\n25\n0\n'); // { socket, property } or null
 * client.close();
 * ```
 */
export class ScacheClient {
  private queue: Promise<unknown> = Promise.resolve();
  private closedByUser = false;

  private constructor(
    /** The socket this client is connected to. */
    readonly path: string,
    private readonly native: NativeClient,
  ) {}

  /**
   * Connects to the connection cache at `path` and checks its announcement
   * (`protocol=connection_cache_protocol`). Rejects with a {@link ScacheClientError} of kind
   * `connect` when nothing listens there, `protocol` when something else does.
   */
  static async connect(path: string, options: ScacheClientOptions = {}): Promise<ScacheClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 0xffff_ffff) {
      throw new RangeError(`timeoutMs must be a positive integer, not ${timeoutMs}`);
    }
    const native = new NativeClient(timeoutMs);
    const reply = await native.connect(path);
    if (reply.error) {
      native.close();
      const { kind, message } = reply.error;
      throw new ScacheClientError(kind, path, 'connect', withoutErrno(message));
    }
    return new ScacheClient(path, native);
  }

  /**
   * save_endp: hands `socket` (a connected UNIX-domain or TCP stream socket) to the cache under
   * `endpoint`, with `property`, for at most `ttlSeconds` (the server clamps it to its
   * connection_cache_ttl_limit). The cache keeps its own descriptor of the connection.
   *
   * Resolves with the server's status: `ok` when saved — then `socket` is destroyed unless
   * `keepSocket` is set (the connection itself stays open, in the cache) — `fail` when the server
   * did not take it, `bad` when it refused the request; on `fail` and `bad` the socket is left as it
   * was. Rejects with kind `invalid_socket` when the socket cannot be cached.
   *
   * Only save an idle connection: this stops reading from `socket`, and bytes already read into
   * Node's buffers stay there.
   */
  saveEndp(
    ttlSeconds: number,
    endpoint: ScacheText,
    property: ScacheText,
    socket: net.Socket,
    options: SaveEndpOptions = {},
  ): Promise<ScacheStatus> {
    return this.enqueue('save_endp', async () => {
      checkTtl(ttlSeconds);
      const endpointBytes = bytes(endpoint, 'endpoint');
      const propertyBytes = bytes(property, 'property');
      if (!(socket instanceof net.Socket)) throw new TypeError('socket must be a net.Socket');
      if (socket.connecting) this.fail('invalid_socket', 'save_endp', 'the socket is still connecting: wait for its "connect" event');
      const fd = descriptorOf(socket);
      const problem = socket.destroyed ? 'the socket is destroyed' : streamSocketProblem(fd);
      if (problem) this.fail('invalid_socket', 'save_endp', problem);
      stopReading(socket);
      let reply: ClientReply;
      try {
        reply = await this.native.saveEndp(ttlSeconds, endpointBytes, propertyBytes, fd);
      } catch (error) {
        // Thrown before the exchange: the descriptor could not be inspected or duplicated.
        this.fail('invalid_socket', 'save_endp', (error as Error).message);
      }
      const status = this.saveStatus('save_endp', reply);
      if (status === 'ok' && !options.keepSocket) socket.destroy();
      return status;
    });
  }

  /**
   * find_endp: takes a connection saved under `endpoint` out of the cache. Resolves with the
   * connection as a Node socket, owned by the caller, and its property; `null` on a miss.
   */
  findEndp(endpoint: ScacheText): Promise<FoundEndpoint | null> {
    return this.enqueue('find_endp', async () => {
      const reply = this.checked('find_endp', await this.native.findEndp(bytes(endpoint, 'endpoint')));
      if (reply.fd === undefined || reply.fd === null) return null;
      return { socket: adopt(reply.fd), property: reply.endpProperty?.toString('utf8') ?? '' };
    });
  }

  /**
   * save_dest: binds destination `dest` (with its `property`) to `endpoint` for at most
   * `ttlSeconds`. No connection moves; the endpoint need not have one cached yet.
   */
  saveDest(ttlSeconds: number, dest: ScacheText, property: ScacheText, endpoint: ScacheText): Promise<ScacheStatus> {
    return this.enqueue('save_dest', async () => {
      checkTtl(ttlSeconds);
      const reply = await this.native.saveDest(
        ttlSeconds,
        bytes(dest, 'dest'),
        bytes(property, 'property'),
        bytes(endpoint, 'endpoint'),
      );
      return this.saveStatus('save_dest', reply);
    });
  }

  /**
   * find_dest: takes a connection out of the cache through a binding of destination `dest`.
   * Resolves with the connection, owned by the caller, and both properties; `null` on a miss.
   */
  findDest(dest: ScacheText): Promise<FoundDestination | null> {
    return this.enqueue('find_dest', async () => {
      const reply = this.checked('find_dest', await this.native.findDest(bytes(dest, 'dest')));
      if (reply.fd === undefined || reply.fd === null) return null;
      return {
        socket: adopt(reply.fd),
        destProperty: reply.destProperty?.toString('utf8') ?? '',
        endpProperty: reply.endpProperty?.toString('utf8') ?? '',
      };
    });
  }

  /**
   * Our status request (not Postfix's): the counts of cached destinations, endpoints and
   * connections, and at most `limit` destinations and `limit` endpoints with their bindings and
   * connections. Postfix's scache does not know it: against it this rejects with kind
   * `unsupported` (the connection stays usable for the four other requests).
   */
  status(limit = DEFAULT_STATUS_LIMIT): Promise<CacheStatus> {
    return this.enqueue('status', async () => {
      if (!Number.isInteger(limit) || limit < 0 || limit > 0x7fff_ffff) {
        throw new RangeError(`limit must be an integer from 0 to 2147483647, not ${limit}`);
      }
      const reply = await this.native.status(limit);
      if (reply.error?.kind === 'unsupported') {
        this.fail(
          'unsupported',
          'status',
          'the server does not know the status request: it is not postfix-scache (Postfix\'s own scache answers status=1)',
        );
      }
      const { snapshot } = this.checked('status', reply);
      try {
        return parseCacheStatus(snapshot ?? '');
      } catch (error) {
        this.fail('protocol', 'status', `the status reply is not a cache snapshot: ${(error as Error).message}`);
      }
    });
  }

  /**
   * Closes the connection at once. A request in progress rejects with kind `closed`, and so do the
   * queued ones and any made later. Connections found earlier are the caller's and stay open.
   */
  close(): void {
    this.closedByUser = true;
    this.native.close();
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.closedByUser;
  }

  private enqueue<T>(request: string, run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => {
      if (this.closedByUser) this.fail('closed', request, 'the client was closed');
      return run();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The reply, if it is not a failure. */
  private checked(request: string, reply: ClientReply): ClientReply {
    if (reply.error) this.fail(reply.error.kind, request, reply.error.message);
    return reply;
  }

  private saveStatus(request: string, reply: ClientReply): ScacheStatus {
    const code = this.checked(request, reply).status ?? -1;
    const status = STATUSES[code];
    if (!status) this.fail('protocol', request, `unknown status ${code}`);
    return status;
  }

  private fail(kind: ScacheClientError['kind'], request: string, message: string): never {
    throw new ScacheClientError(kind, this.path, request, withoutErrno(message));
  }
}
