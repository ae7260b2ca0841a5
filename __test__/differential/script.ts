/**
 * Scripted exchanges for the differential suite. A case is data: a list of steps, run unchanged
 * against the real Postfix scache and against ours. Each step says what the client does or what it
 * expects to observe; the runner (runner.ts) records what it actually observed on each side.
 *
 * Conventions: every side starts with one client `c`, connected, announcement checked. Clients are
 * named by strings; cached connections (socketpairs whose one end is sent to the server) are named
 * by strings too and created on first use; descriptors received back are named as well.
 */
import {
  DUMMY,
  FD_BYTE,
  OK,
  findDest,
  findDestReply,
  findEndp,
  findEndpReply,
  saveDest,
  saveEndp,
  status,
  type Bytes,
} from '../support/attrs.js';

export type SideName = 'postfix' | 'ours';

/** A warning expected exactly, or (for Postfix's stale `%m`, spec Q5) only up to a fixed prefix. */
export type ExpectedRecord = string | { prefix: string };

export type Step =
  /** Open another client connection; its announcement must be the 36 bytes. */
  | { connect: string }
  /** Writes the bytes; with `pieces`, as that many separate writes a few milliseconds apart. */
  | { send: Bytes; on?: string; pieces?: number }
  /** shutdown(SHUT_WR): the server reads end-of-file, the client can still read. */
  | { shutdown: string }
  /** One sendmsg() with `data` (default one 0x00 byte) and the cached ends of `fds` attached. */
  | { sendFd: string | string[]; data?: Bytes; on?: string; keep?: boolean }
  /** Exactly these bytes arrive next. */
  | { expect: Bytes; on?: string }
  /** Nothing arrives for this many milliseconds. */
  | { expectNothing: number; on?: string }
  /** One data byte carrying exactly one descriptor arrives; it is kept under this name. */
  | { receiveFd: string; on?: string }
  /** The received descriptor is the cached end of this cached connection (data flows both ways). */
  | { sameOpenFile: string; as: string }
  | { close: string }
  /** The server closed this client connection within the time given. */
  | { closedWithin: number; on?: string }
  | { mark: string }
  | { sleepUntil: number; since: string }
  /** The cached connection's peer sees end-of-file between `from` and `to` ms after the mark. */
  | { peerEof: string; from: number; to: number; since: string }
  /** The cached connection's peer sees no end-of-file for this long. */
  | { peerOpen: string; forMs: number }
  /** Exactly these records were logged since the previous `records` step (waits for them). */
  | { records: ExpectedRecord[] }
  /** Postfix only: its status channel floods (it spins at 100% CPU, spec Q1) or stays quiet. */
  | { spinning: boolean; forMs: number }
  /** Ours only: this many clients are connected (waits up to a second for it). */
  | { connectedClients: number }
  /** An intended difference: each side runs its own steps. */
  | { sides: Record<SideName, Step[]>; why: string };

export interface Case {
  name: string;
  steps: Step[];
  /** connection_cache_ttl_limit in seconds (Postfix default 2). */
  ttlLimit?: number;
  /** ipc_timeout in seconds (Postfix default 3600). */
  ipcTimeout?: number;
  /**
   * Before the server starts, a client connects, writes these bytes and closes: the server finds a
   * connection whose peer is gone, with data still unread, in its listen queue.
   */
  queuedBeforeStart?: Bytes;
}

// ---------------------------------------------------------------------------------------------
// Step sequences used by many cases

/** A complete save_endp exchange: request, dummy, descriptor, status=0. */
export function savedEndp(label: Bytes, property: Bytes, fd: string, options: { ttl?: number | string; on?: string; keep?: boolean } = {}): Step[] {
  const on = options.on ?? 'c';
  return [
    { send: saveEndp(options.ttl ?? 2, label, property), on },
    { expect: DUMMY, on },
    { sendFd: fd, on, keep: options.keep ?? false },
    { expect: status(OK), on },
  ];
}

/** A find_endp hit: reply with `property`, dummy, one descriptor (kept as `as`), trailing dummy. */
export function foundEndp(label: Bytes, property: Bytes, as: string, on = 'c'): Step[] {
  return [
    { send: findEndp(label), on },
    { expect: findEndpReply(OK, property), on },
    { send: DUMMY, on },
    { receiveFd: as, on },
    { send: DUMMY, on },
  ];
}

/** A find_dest hit: reply with both properties, then the same descriptor hand-over. */
export function foundDest(label: Bytes, destProperty: Bytes, endpProperty: Bytes, as: string, on = 'c'): Step[] {
  return [
    { send: findDest(label), on },
    { expect: findDestReply(OK, destProperty, endpProperty), on },
    { send: DUMMY, on },
    { receiveFd: as, on },
    { send: DUMMY, on },
  ];
}

export function savedDest(dest: Bytes, destProperty: Bytes, endpoint: Bytes, ttl: number | string = 2, on = 'c'): Step[] {
  return [
    { send: saveDest(ttl, dest, destProperty, endpoint), on },
    { expect: status(OK), on },
  ];
}

export { FD_BYTE };
