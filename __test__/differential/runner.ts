/**
 * Runs a scripted case (script.ts) against one server and records, step by step, what was
 * expected and what was observed. Observations are plain strings, so the two sides' transcripts
 * can be compared directly and a failure shows both.
 */
import type { WireConnection } from '../../ts/native.js';
import { WireConnection as Wire } from '../../ts/native.js';
import { ANNOUNCEMENT, bytes, show } from '../support/attrs.js';
import type { ServerUnderTest } from '../support/servers.js';
import { now, sleep, waitFor } from '../support/time.js';
import { CachedConnection, Client, sameOpenFile } from '../support/wire.js';
import type { Case, ExpectedRecord, SideName, Step } from './script.js';

export interface Observation {
  /** What was observed, in the same words as the expectation when they agree. */
  text: string;
  /** False for steps of an intended difference (`sides`), which are not compared across sides. */
  shared: boolean;
}

export interface SideResult {
  side: SideName;
  transcript: Observation[];
  /** `step N: expected X, observed Y`; empty when every expectation held. */
  failures: string[];
  /** Every record logged, unnormalised (for the report: Postfix's stale %m texts). */
  records: string[];
}

/** How long to wait for late records before deciding that no more are coming. */
const RECORDS_SETTLE_MS = 150;
/** How long every client must stay quiet at the end of a case. */
const FINAL_QUIET_MS = 100;

class Run {
  private readonly clients = new Map<string, Client>();
  private readonly cached = new Map<string, CachedConnection>();
  private readonly received = new Map<string, WireConnection>();
  private readonly marks = new Map<string, number>();
  private recordsSeen = 0;
  readonly transcript: Observation[] = [];
  readonly failures: string[] = [];
  private stepNumber = 0;

  constructor(
    readonly side: SideName,
    readonly server: ServerUnderTest,
  ) {}

  private client(name = 'c'): Client {
    const client = this.clients.get(name);
    if (!client) throw new Error(`no client ${name}`);
    return client;
  }

  private cachedConnection(name: string): CachedConnection {
    let connection = this.cached.get(name);
    if (!connection) this.cached.set(name, (connection = new CachedConnection()));
    return connection;
  }

  /** Records one observation; false (and a failure) when it differs from the expectation. */
  private observe(expected: string, observed: string, shared: boolean): boolean {
    this.transcript.push({ text: observed, shared });
    if (observed === expected) return true;
    this.failures.push(`step ${this.stepNumber}: expected ${expected}\n        observed ${observed}`);
    return false;
  }

  async steps(steps: Step[], shared: boolean): Promise<boolean> {
    for (const step of steps) {
      this.stepNumber += 1;
      let ok: boolean;
      try {
        ok = await this.step(step, shared);
      } catch (error) {
        ok = this.observe(describe(step), `threw ${(error as Error).message}`, shared);
      }
      if (!ok) return false;
    }
    return true;
  }

  private async step(step: Step, shared: boolean): Promise<boolean> {
    if ('connect' in step) {
      const client = Client.connectRaw(this.server.path);
      this.clients.set(step.connect, client);
      const greeting = await client.receive(ANNOUNCEMENT.length);
      return this.observe(`${step.connect} < ${show(ANNOUNCEMENT)}`, `${step.connect} < ${show(greeting)}`, shared);
    }
    if ('send' in step) {
      const on = step.on ?? 'c';
      const data = bytes(step.send);
      const expected = `${on} > ${show(data)}`;
      try {
        const pieces = Math.max(1, step.pieces ?? 1);
        const size = Math.ceil(data.length / pieces);
        for (let offset = 0; offset < data.length; offset += size) {
          if (offset > 0) await sleep(3);
          this.client(on).send(data.subarray(offset, offset + size));
        }
        return this.observe(expected, expected, shared);
      } catch (error) {
        return this.observe(expected, `${on} > failed: ${(error as Error).message}`, shared);
      }
    }
    if ('sendFd' in step) {
      const on = step.on ?? 'c';
      const names = typeof step.sendFd === 'string' ? [step.sendFd] : step.sendFd;
      const connections = names.map((name) => this.cachedConnection(name));
      const data = bytes(step.data ?? Buffer.of(0));
      const expected = `${on} > ${show(data)} + descriptors ${names.join(', ')}`;
      let observed = expected;
      try {
        const sent = this.client(on).sendDescriptors(connections.map((connection) => connection.fd), data);
        if (sent !== data.length) observed = `${on} > only ${sent} bytes sent`;
      } catch (error) {
        observed = `${on} > failed: ${(error as Error).message}`;
      }
      // Like smtp(8), close our copy once it was sent, unless the script keeps it for fstat checks.
      if (!step.keep) for (const connection of connections) connection.release();
      return this.observe(expected, observed, shared);
    }
    if ('expect' in step) {
      const on = step.on ?? 'c';
      const want = bytes(step.expect);
      const got = await this.client(on).receive(want.length);
      return this.observe(`${on} < ${show(want)}`, `${on} < ${show(got)}`, shared);
    }
    if ('expectNothing' in step) {
      const on = step.on ?? 'c';
      const got = await this.client(on).collect(step.expectNothing);
      const expected = `${on} < nothing for ${step.expectNothing} ms`;
      return this.observe(expected, got.length ? `${on} < ${show(got)}` : expected, shared);
    }
    if ('receiveFd' in step) {
      const on = step.on ?? 'c';
      const result = await this.client(on).receiveDescriptorAsync();
      if (result.fd !== undefined) this.received.set(step.receiveFd, Wire.adopt(result.fd));
      return this.observe(`${on} < one byte + one descriptor`, `${on} < ${describeReceived(result.kind)}`, shared);
    }
    if ('sameOpenFile' in step) {
      const received = this.received.get(step.sameOpenFile);
      const expected = `${step.sameOpenFile} is ${step.as}'s cached end`;
      if (!received) return this.observe(expected, `no descriptor ${step.sameOpenFile}`, shared);
      const mismatch = await sameOpenFile(received, this.cachedConnection(step.as));
      return this.observe(expected, mismatch ?? expected, shared);
    }
    if ('close' in step) {
      this.client(step.close).close();
      this.clients.delete(step.close);
      return this.observe(`${step.close} closed`, `${step.close} closed`, shared);
    }
    if ('shutdown' in step) {
      this.client(step.shutdown).wire.shutdownWrite();
      return this.observe(`${step.shutdown} shut down`, `${step.shutdown} shut down`, shared);
    }
    if ('closedWithin' in step) {
      const on = step.on ?? 'c';
      const closed = await this.client(on).closedWithin(step.closedWithin);
      const expected = `${on} closed by the server within ${step.closedWithin} ms`;
      return this.observe(expected, closed ? expected : `${on} still open after ${step.closedWithin} ms`, shared);
    }
    if ('mark' in step) {
      this.marks.set(step.mark, now());
      return true;
    }
    if ('sleepUntil' in step) {
      await sleep(this.mark(step.since) + step.sleepUntil - now());
      return true;
    }
    if ('peerEof' in step) {
      const start = this.mark(step.since);
      const connection = this.cachedConnection(step.peerEof);
      const at = await connection.eofWithin(start + step.to - now());
      const expected = `${step.peerEof}: peer sees EOF ${step.from}-${step.to} ms after ${step.since}`;
      const observed =
        at === undefined
          ? `${step.peerEof}: no EOF within ${step.to} ms after ${step.since}`
          : at - start < step.from
            ? `${step.peerEof}: peer saw EOF ${Math.round(at - start)} ms after ${step.since}`
            : expected;
      return this.observe(expected, observed, shared);
    }
    if ('peerOpen' in step) {
      const connection = this.cachedConnection(step.peerOpen);
      const start = now();
      const at = await connection.eofWithin(step.forMs);
      const expected = `${step.peerOpen}: peer open for ${step.forMs} ms`;
      return this.observe(
        expected,
        at === undefined ? expected : `${step.peerOpen}: peer saw EOF after ${Math.max(0, Math.round(at - start))} ms`,
        shared,
      );
    }
    if ('spinning' in step) {
      const bytes = this.server.statusBytes;
      if (!bytes) throw new Error('this server has no status channel');
      const before = bytes();
      await sleep(step.forMs);
      // A TAKEN/AVAIL pair is 24 bytes; an idle server writes none, a spinning one hundreds of thousands.
      const pairs = Math.floor((bytes() - before) / 24);
      const expected = step.spinning ? `spinning (status floods) for ${step.forMs} ms` : `idle for ${step.forMs} ms`;
      const spinning = pairs > 1000;
      return this.observe(expected, spinning === step.spinning ? expected : `${pairs} status updates in ${step.forMs} ms`, shared);
    }
    if ('connectedClients' in step) {
      const count = this.server.clientCount;
      if (!count) throw new Error('this server does not report its clients');
      await waitFor(() => count() === step.connectedClients, 1000);
      return this.observe(`${step.connectedClients} clients connected`, `${count()} clients connected`, shared);
    }
    if ('records' in step) {
      return this.records(step.records, shared);
    }
    if ('sides' in step) {
      return this.steps(step.sides[this.side], false);
    }
    throw new Error(`unknown step ${JSON.stringify(step)}`);
  }

  private mark(name: string): number {
    const at = this.marks.get(name);
    if (at === undefined) throw new Error(`no mark ${name}`);
    return at;
  }

  /** The records logged since the previous check, compared with `expected` (waits for them). */
  async records(expected: ExpectedRecord[], shared: boolean): Promise<boolean> {
    await waitFor(() => this.server.records.length >= this.recordsSeen + expected.length, 2000);
    await sleep(RECORDS_SETTLE_MS);
    const got = this.server.records.slice(this.recordsSeen);
    this.recordsSeen += got.length;
    const normalised = got.map((text, index) => {
      const want = expected[index];
      return typeof want === 'object' && text.startsWith(want.prefix) ? `${want.prefix}<%m>` : text;
    });
    const wanted = expected.map((want) => (typeof want === 'string' ? want : `${want.prefix}<%m>`));
    return this.observe(`records ${JSON.stringify(wanted)}`, `records ${JSON.stringify(normalised)}`, shared);
  }

  /** End of case: every client stays quiet, no unexpected records. */
  async finish(): Promise<void> {
    this.stepNumber += 1;
    for (const [name, client] of this.clients) {
      const got = await client.collect(FINAL_QUIET_MS);
      const expected = `${name} < nothing more`;
      if (!this.observe(expected, got.length ? `${name} < ${show(got)}` : expected, true)) return;
    }
    await this.records([], true);
  }

  dispose(): void {
    for (const client of this.clients.values()) client.close();
    for (const received of this.received.values()) received.close();
    for (const connection of this.cached.values()) connection.destroy();
  }
}

function describeReceived(kind: string): string {
  switch (kind) {
    case 'descriptor':
      return 'one byte + one descriptor';
    case 'none':
      return 'a byte without descriptor';
    case 'several':
      return 'several descriptors';
    case 'eof':
      return 'end-of-file';
    case 'timeout':
      return 'nothing (timeout)';
    default:
      return kind;
  }
}

function describe(step: Step): string {
  return JSON.stringify(step, (_key, value: unknown) =>
    value instanceof Uint8Array || (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer')
      ? show(bytes(value instanceof Uint8Array ? value : Buffer.from((value as { data: number[] }).data)))
      : value,
  );
}

/** Runs `testCase` on `server` (already started): a client `c` connects, then the steps run. */
export async function runCase(side: SideName, server: ServerUnderTest, testCase: Case): Promise<SideResult> {
  const run = new Run(side, server);
  try {
    if (await run.steps([{ connect: 'c' }, ...testCase.steps], true)) await run.finish();
  } finally {
    run.dispose();
  }
  return { side, transcript: run.transcript, failures: run.failures, records: [...server.records] };
}

/** The shared observations where the two transcripts differ, as `#n postfix: … / ours: …`. */
export function transcriptDifferences(postfix: SideResult, ours: SideResult): string[] {
  const left = postfix.transcript.filter((entry) => entry.shared).map((entry) => entry.text);
  const right = ours.transcript.filter((entry) => entry.shared).map((entry) => entry.text);
  const differences: string[] = [];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    if (left[i] !== right[i]) differences.push(`#${i + 1} postfix: ${left[i] ?? '(ended)'}\n     ours:    ${right[i] ?? '(ended)'}`);
  }
  return differences;
}
