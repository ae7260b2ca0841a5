// A transport wrapper that applies the warning limiter (warning-limiter.ts) in front of one
// transport, and writes the limiter's `suppressed N warnings` line to that same transport, in
// order, without going through winston again (a record logged from inside a transport would be
// queued behind the one being written).
//
// Trusts: the wrapped transport's log() to be synchronous, as every transport in this folder is.

import Transport from 'winston-transport';
import type { Severity } from './record.js';
import { WarningLimiter, type WarningLimiterOptions } from './warning-limiter.js';

export class RateLimitedTransport extends Transport {
  private readonly limiter: WarningLimiter;

  constructor(
    readonly inner: Transport,
    options: WarningLimiterOptions = {},
  ) {
    super();
    this.limiter = new WarningLimiter((message) => inner.log?.({ level: 'warning', message }, () => {}), options);
  }

  override log(info: { level: Severity; message: unknown }, next: () => void): void {
    if (this.limiter.admit(info.level)) {
      this.inner.log?.(info, next);
    } else {
      next();
    }
  }

  /** Reports a pending count before the wrapped transport closes, so it is not lost at exit. */
  override close(): void {
    this.limiter.flush();
    this.inner.close?.();
  }
}
