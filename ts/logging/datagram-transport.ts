// A winston transport that turns each record into one datagram and hands it to a sink (the native
// LogSocket in production). The sink never blocks and never throws: a record it cannot deliver is
// dropped and counted there, so logging can neither stall nor crash the daemon.
//
// Trusts: the sink to keep that promise; the encoder to produce the complete record.

import Transport from 'winston-transport';
import type { Severity } from './record.js';

/** Where datagrams go: what the native LogSocket offers. */
export interface DatagramSink {
  /** Sends one record; false if it was dropped. */
  send(record: Buffer): boolean;
  /** Records dropped so far. */
  readonly dropped: number;
  close(): void;
}

/** Builds the complete datagram for one record. */
export type RecordEncoder = (severity: Severity, message: string) => Buffer;

export class DatagramTransport extends Transport {
  constructor(
    private readonly sink: DatagramSink,
    private readonly encode: RecordEncoder,
  ) {
    super();
  }

  /** Records the sink has dropped so far. */
  get dropped(): number {
    return this.sink.dropped;
  }

  override log(info: { level: Severity; message: unknown }, next: () => void): void {
    this.sink.send(this.encode(info.level, String(info.message)));
    next();
  }

  override close(): void {
    this.sink.close();
  }
}
