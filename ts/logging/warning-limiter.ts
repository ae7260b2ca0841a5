// The policy that keeps a flood of warnings (e.g. from a client sending malformed requests as fast
// as it can) from filling the disk: at most `perSecond` warnings pass in any one-second window that
// starts with a warning; the rest are counted, and the count is reported once the window ends.
// Other severities always pass: info carries the statistics, and error, fatal and panic are rare
// and must never be lost.
//
// Trusts: the injected clock to be monotonic and the scheduler to call back (late is fine: a
// window that has ended is also closed by the next record).

import type { Severity } from './record.js';

export const DEFAULT_WARNINGS_PER_SECOND = 100;
const WINDOW_MS = 1000;

export interface WarningLimiterOptions {
  /** Warnings let through per window (default 100). */
  perSecond?: number;
  /** Milliseconds from a monotonic clock (default performance.now). */
  now?: () => number;
  /** Calls back after `delayMs`; returns a cancel function (default: an unreferenced setTimeout). */
  schedule?: (callback: () => void, delayMs: number) => () => void;
}

function unreferencedTimeout(callback: () => void, delayMs: number): () => void {
  const timer = setTimeout(callback, delayMs).unref();
  return () => clearTimeout(timer);
}

export function suppressedText(count: number, perSecond: number): string {
  const warnings = count === 1 ? 'warning' : 'warnings';
  return `suppressed ${count} ${warnings} in the last second (at most ${perSecond} warnings per second are logged)`;
}

export class WarningLimiter {
  private readonly perSecond: number;
  private readonly now: () => number;
  private readonly schedule: (callback: () => void, delayMs: number) => () => void;
  private windowEnd = -Infinity;
  private passed = 0;
  private suppressed = 0;
  private cancelReport: (() => void) | undefined;

  /** `report` receives the text of a `suppressed N warnings` warning; it must not be limited. */
  constructor(
    private readonly report: (text: string) => void,
    options: WarningLimiterOptions = {},
  ) {
    this.perSecond = options.perSecond ?? DEFAULT_WARNINGS_PER_SECOND;
    this.now = options.now ?? (() => performance.now());
    this.schedule = options.schedule ?? unreferencedTimeout;
  }

  /** Whether a record of this severity may be logged now. */
  admit(severity: Severity): boolean {
    const now = this.now();
    // Any record after the window's end reports the window first, even if its timer is late.
    const ended = now >= this.windowEnd;
    if (ended) this.flush();
    if (severity !== 'warning') return true;
    if (ended) {
      this.windowEnd = now + WINDOW_MS;
      this.passed = 0;
    }
    if (this.passed < this.perSecond) {
      this.passed++;
      return true;
    }
    if (this.suppressed++ === 0) {
      this.cancelReport = this.schedule(() => this.flush(), this.windowEnd - now);
    }
    return false;
  }

  /** Reports what the current window has suppressed so far, if anything (at its end, or at exit). */
  flush(): void {
    this.cancelReport?.();
    this.cancelReport = undefined;
    if (this.suppressed === 0) return;
    const count = this.suppressed;
    this.suppressed = 0;
    this.report(suppressedText(count, this.perSecond));
  }
}
