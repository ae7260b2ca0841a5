/**
 * Test doubles for the logging transports: a sink that keeps every datagram, a stream that keeps
 * every write, and a hand-driven clock and scheduler for the warning limiter.
 */
import { Writable } from 'node:stream';
import type { DatagramSink } from '../../ts/logging/datagram-transport.js';

/** Records datagrams instead of sending them; `accept` decides which ones "arrive". */
export class CapturingSink implements DatagramSink {
  readonly records: Buffer[] = [];
  dropped = 0;
  closed = false;

  constructor(private readonly accept: (record: Buffer) => boolean = () => true) {}

  send(record: Buffer): boolean {
    if (this.closed || !this.accept(record)) {
      this.dropped++;
      return false;
    }
    this.records.push(Buffer.from(record));
    return true;
  }

  close(): void {
    this.closed = true;
  }

  /** The records as text (for readable failures); only for ASCII/UTF-8 records. */
  get texts(): string[] {
    return this.records.map((record) => record.toString('utf8'));
  }
}

/** A stream that keeps everything written to it. */
export class CapturingStream extends Writable {
  readonly chunks: string[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    callback();
  }

  get text(): string {
    return this.chunks.join('');
  }
}

/** A monotonic clock and a timer queue that only move when the test says so. */
export class ManualTime {
  private current = 0;
  private readonly timers: Array<{ at: number; callback: () => void; cancelled: boolean }> = [];

  readonly now = (): number => this.current;

  readonly schedule = (callback: () => void, delayMs: number): (() => void) => {
    const timer = { at: this.current + delayMs, callback, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };

  /** Timers scheduled and neither fired nor cancelled. */
  get pending(): number {
    return this.timers.filter((timer) => !timer.cancelled).length;
  }

  /** Moves the clock to `at` milliseconds, firing due timers in order on the way. */
  advanceTo(at: number): void {
    for (;;) {
      const due = this.timers
        .filter((timer) => !timer.cancelled && timer.at <= at)
        .sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.cancelled = true;
      this.current = Math.max(this.current, due.at);
      due.callback();
    }
    this.current = at;
  }
}
