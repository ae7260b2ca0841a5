/**
 * Test-side ends of real sockets.
 *
 * - `Client`: a scache client connection (the binding's WireConnection), reading exact byte counts
 *   and sending descriptors in any framing. Reads that expect a reply block briefly (the reply is
 *   there within milliseconds); "nothing arrives" checks poll without blocking, so concurrent tests
 *   keep running meanwhile.
 * - `CachedConnection`: a socketpair standing for an SMTP connection. One end is handed to the
 *   server to cache; the other (the "peer", the remote SMTP server's side) stays with the test as a
 *   Node socket, which sees end-of-file once every copy of the cached end is closed.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { closeFd, sameSocket, socketpair, WireConnection, type ReceivedDescriptor } from '../../ts/native.js';
import { ANNOUNCEMENT, bytes, type Bytes } from './attrs.js';
import { now, sleep } from './time.js';

/** How long a read waits for a reply that should come. */
export const REPLY_TIMEOUT_MS = 2000;

export class Client {
  private constructor(readonly wire: WireConnection) {}

  /** Connects; does not read the announcement. */
  static connectRaw(path: string): Client {
    return new Client(WireConnection.connect(path));
  }

  /** Connects and reads the announcement, which must be exactly the 36 bytes of spec §1.8. */
  static connect(path: string): Client {
    const client = Client.connectRaw(path);
    const greeting = client.read(ANNOUNCEMENT.length);
    if (!greeting.equals(ANNOUNCEMENT)) {
      client.close();
      throw new Error(`unexpected announcement: ${JSON.stringify(greeting.toString('latin1'))}`);
    }
    return client;
  }

  send(data: Bytes): void {
    this.wire.write(bytes(data));
  }

  /** Sends `data` with `fds` attached in one sendmsg(); returns the bytes sent. */
  sendDescriptors(fds: number[], data: Bytes = Buffer.of(0)): number {
    return this.wire.sendDescriptors(bytes(data), fds);
  }

  /** Reads up to `count` bytes: returns early only on end-of-file or timeout. */
  read(count: number, timeoutMs = REPLY_TIMEOUT_MS): Buffer {
    return this.wire.read(count, timeoutMs);
  }

  /**
   * Like `read`, but blocks the event loop for a few milliseconds at a time only, so that the rest
   * of the test process (e.g. draining a real scache's status channel) keeps running meanwhile.
   */
  async receive(count: number, timeoutMs = REPLY_TIMEOUT_MS): Promise<Buffer> {
    const deadline = now() + timeoutMs;
    const parts: Buffer[] = [];
    let got = 0;
    while (got < count) {
      const part = this.wire.read(count - got, Math.max(0, Math.min(5, deadline - now())));
      if (part.length > 0) {
        parts.push(part);
        got += part.length;
      } else if (now() >= deadline) {
        break;
      }
      if (got < count) await new Promise((resolve) => setImmediate(resolve));
    }
    return Buffer.concat(parts);
  }

  /** Like `receiveDescriptor`, in slices of a few milliseconds (see `receive`). */
  async receiveDescriptorAsync(timeoutMs = REPLY_TIMEOUT_MS): Promise<ReceivedDescriptor> {
    const deadline = now() + timeoutMs;
    for (;;) {
      const received = this.wire.receiveDescriptor(Math.max(0, Math.min(5, deadline - now())));
      if (received.kind !== 'timeout' || now() >= deadline) return received;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Whatever arrives within `ms` (possibly nothing), without blocking the event loop. */
  async collect(ms: number): Promise<Buffer> {
    const deadline = now() + ms;
    const parts: Buffer[] = [];
    for (;;) {
      const part = this.wire.read(65536, 0);
      if (part.length > 0) parts.push(part);
      if (now() >= deadline) return Buffer.concat(parts);
      await sleep(Math.min(15, deadline - now()));
    }
  }

  receiveDescriptor(timeoutMs = REPLY_TIMEOUT_MS): ReceivedDescriptor {
    return this.wire.receiveDescriptor(timeoutMs);
  }

  /** True when the server closed the connection within `ms` (unread data is discarded). */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = now() + ms;
    for (;;) {
      if (this.wire.waitClosed(0)) return true;
      if (now() >= deadline) return false;
      await sleep(Math.min(15, deadline - now()));
    }
  }

  close(): void {
    this.wire.close();
  }
}

export class CachedConnection {
  /** The end that gets cached; ours until released. */
  private cachedFd: number | undefined;
  readonly peer: net.Socket;
  /** Bytes the peer received. */
  private received = Buffer.alloc(0);
  /** When the peer saw end-of-file (or the connection broke), as `now()`. */
  eofAt: number | undefined;

  constructor() {
    const [cached, peer] = socketpair();
    this.cachedFd = cached;
    this.peer = new net.Socket({ fd: peer, readable: true, writable: true });
    const ended = () => (this.eofAt ??= now());
    this.peer.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    this.peer.on('end', ended);
    this.peer.on('close', ended);
    this.peer.on('error', ended);
  }

  /** The descriptor to send (our copy of the end that gets cached). */
  get fd(): number {
    if (this.cachedFd === undefined) throw new Error('the cached end was already released');
    return this.cachedFd;
  }

  get held(): boolean {
    return this.cachedFd !== undefined;
  }

  /** Closes our copy of the cached end, as smtp(8) does after handing it to scache. */
  release(): void {
    if (this.cachedFd !== undefined) closeFd(this.cachedFd);
    this.cachedFd = undefined;
  }

  /** Resolves with the time the peer saw end-of-file, or undefined if it did not within `ms`. */
  async eofWithin(ms: number): Promise<number | undefined> {
    const deadline = now() + ms;
    while (this.eofAt === undefined && now() < deadline) await sleep(Math.min(10, deadline - now()));
    return this.eofAt;
  }

  /** Writes at the peer. */
  write(data: Bytes): Promise<void> {
    return new Promise((resolve, reject) => this.peer.write(bytes(data), (error) => (error ? reject(error) : resolve())));
  }

  /** What the peer received so far. */
  get data(): Buffer {
    return this.received;
  }

  destroy(): void {
    this.release();
    this.peer.destroy();
  }
}

/**
 * Checks that the descriptor `fd` received from the server is the cached end of `cached`: data
 * written at the peer is read through `fd`, and data written through `fd` reaches the peer (and,
 * while the original cached end is still held, fstat says it is the same socket). Returns a
 * description of the mismatch, or undefined when it is the same open file.
 */
export async function sameOpenFile(received: WireConnection, cached: CachedConnection): Promise<string | undefined> {
  if (cached.held && !sameSocket(received.fd, cached.fd)) return 'fstat: not the same socket';
  const there = randomBytes(12).toString('hex');
  await cached.write(there);
  const read = received.read(there.length, REPLY_TIMEOUT_MS).toString('latin1');
  if (read !== there) return `wrote ${there} at the peer, read ${JSON.stringify(read)} through the descriptor`;
  const back = randomBytes(12).toString('hex');
  const before = cached.data.length;
  received.write(Buffer.from(back, 'latin1'));
  const deadline = now() + REPLY_TIMEOUT_MS;
  while (cached.data.length < before + back.length && now() < deadline) await sleep(5);
  const arrived = cached.data.subarray(before).toString('latin1');
  if (arrived !== back) return `wrote ${back} through the descriptor, the peer read ${JSON.stringify(arrived)}`;
  return undefined;
}
