/**
 * The warning rate limit, driven by a hand-moved clock: how many pass per window, what is never
 * limited, when and how the "suppressed" line is written, and that the wrapper keeps it in order
 * with the records it writes.
 */
import { describe, expect, test } from '@jest/globals';
import { createLogger, closeLogger } from '../../ts/logging/logger.js';
import { RateLimitedTransport } from '../../ts/logging/rate-limited-transport.js';
import { StderrTransport } from '../../ts/logging/stderr-transport.js';
import { suppressedText, WarningLimiter } from '../../ts/logging/warning-limiter.js';
import { CapturingStream, ManualTime } from './helpers.js';

function limiter(perSecond: number) {
  const time = new ManualTime();
  const reports: string[] = [];
  const limiter = new WarningLimiter((text) => reports.push(text), {
    perSecond,
    now: time.now,
    schedule: time.schedule,
  });
  const admitted = (count: number) =>
    Array.from({ length: count }, () => limiter.admit('warning')).filter(Boolean).length;
  return { time, reports, limiter, admitted };
}

describe('WarningLimiter', () => {
  test('wording', () => {
    expect(suppressedText(1, 100)).toBe(
      'suppressed 1 warning in the last second (at most 100 warnings per second are logged)',
    );
    expect(suppressedText(250, 3)).toBe(
      'suppressed 250 warnings in the last second (at most 3 warnings per second are logged)',
    );
  });

  test('lets N warnings through per second and reports the rest when the window ends', () => {
    const { time, reports, admitted } = limiter(3);
    expect(admitted(10)).toBe(3);
    expect(reports).toEqual([]);
    time.advanceTo(999);
    expect(reports).toEqual([]);
    time.advanceTo(1000);
    expect(reports).toEqual([suppressedText(7, 3)]);
    time.advanceTo(5000);
    expect(reports).toHaveLength(1);
  });

  test('info, error, fatal and panic are never limited', () => {
    const { limiter: l, reports, admitted } = limiter(1);
    expect(admitted(5)).toBe(1);
    for (const severity of ['info', 'error', 'fatal', 'panic'] as const) {
      expect(Array.from({ length: 1000 }, () => l.admit(severity)).every(Boolean)).toBe(true);
    }
    l.flush();
    expect(reports).toEqual([suppressedText(4, 1)]);
  });

  test('a window starts with its first warning and lasts one second', () => {
    const { time, reports, admitted } = limiter(2);
    time.advanceTo(500);
    expect(admitted(3)).toBe(2); // window 500..1500
    time.advanceTo(1499);
    expect(admitted(1)).toBe(0);
    time.advanceTo(1500); // the window's end: its two suppressed warnings are reported
    expect(reports).toEqual([suppressedText(2, 2)]);
    expect(admitted(3)).toBe(2); // window 1500..2500
    time.advanceTo(2500);
    expect(reports).toEqual([suppressedText(2, 2), suppressedText(1, 2)]);
  });

  test('a quiet window reports nothing and schedules nothing', () => {
    const { time, reports, admitted } = limiter(5);
    expect(admitted(5)).toBe(5);
    expect(time.pending).toBe(0);
    time.advanceTo(10_000);
    expect(admitted(5)).toBe(5);
    expect(reports).toEqual([]);
  });

  test('when the timer is late, the next warning closes the old window first', () => {
    const time = new ManualTime();
    const reports: string[] = [];
    let admittedAfterReport = 0;
    const limiter = new WarningLimiter((text) => reports.push(`${text} (then ${admittedAfterReport})`), {
      perSecond: 1,
      now: time.now,
      schedule: () => () => {}, // a timer that never fires (a busy event loop)
    });
    limiter.admit('warning');
    limiter.admit('warning');
    limiter.admit('warning');
    time.advanceTo(1200);
    if (limiter.admit('warning')) admittedAfterReport++;
    expect(reports).toEqual([`${suppressedText(2, 1)} (then 0)`]);
    expect(admittedAfterReport).toBe(1);
  });

  test('when the timer is late, any record after the window closes it first', () => {
    const time = new ManualTime();
    const reports: string[] = [];
    const limiter = new WarningLimiter((text) => reports.push(text), {
      perSecond: 1,
      now: time.now,
      schedule: () => () => {},
    });
    limiter.admit('warning');
    limiter.admit('warning');
    time.advanceTo(999);
    expect(limiter.admit('info')).toBe(true);
    expect(reports).toEqual([]);
    time.advanceTo(1000);
    expect(limiter.admit('info')).toBe(true);
    expect(reports).toEqual([suppressedText(1, 1)]);
  });

  test('flush reports a pending count at once and cancels the timer', () => {
    const { time, reports, limiter: l, admitted } = limiter(1);
    admitted(4);
    expect(time.pending).toBe(1);
    l.flush();
    expect(reports).toEqual([suppressedText(3, 1)]);
    expect(time.pending).toBe(0);
    l.flush();
    expect(reports).toHaveLength(1);
  });

  test('the default limit is 100 per second', () => {
    const time = new ManualTime();
    const limiter = new WarningLimiter(() => {}, { now: time.now, schedule: time.schedule });
    expect(Array.from({ length: 1000 }, () => limiter.admit('warning')).filter(Boolean)).toHaveLength(100);
  });
});

describe('RateLimitedTransport', () => {
  function stderrLogger(perSecond: number) {
    const time = new ManualTime();
    const stream = new CapturingStream();
    const transport = new RateLimitedTransport(new StderrTransport('postfix/scache', stream), {
      perSecond,
      now: time.now,
      schedule: time.schedule,
    });
    return { time, stream, logger: createLogger([transport]) };
  }

  test('writes the suppressed line to the same destination, at the end of the window', () => {
    const { time, stream, logger } = stderrLogger(2);
    for (let i = 1; i <= 5; i++) logger.warning(`bad request ${i}`);
    logger.info('statistics: address lookup hits=0 miss=1 success=0%');
    time.advanceTo(1000);
    logger.warning('bad request 6');
    expect(stream.text).toBe(
      'postfix/scache: warning: bad request 1\n' +
        'postfix/scache: warning: bad request 2\n' +
        'postfix/scache: statistics: address lookup hits=0 miss=1 success=0%\n' +
        `postfix/scache: warning: ${suppressedText(3, 2)}\n` +
        'postfix/scache: warning: bad request 6\n',
    );
  });

  test('a late timer: the suppressed line still comes before the next window\'s first warning', () => {
    const stream = new CapturingStream();
    let now = 0;
    const transport = new RateLimitedTransport(new StderrTransport('t', stream), {
      perSecond: 1,
      now: () => now,
      schedule: () => () => {},
    });
    const logger = createLogger([transport]);
    logger.warning('a');
    logger.warning('b');
    now = 1000;
    logger.warning('c');
    expect(stream.text).toBe(`t: warning: a\nt: warning: ${suppressedText(1, 1)}\nt: warning: c\n`);
  });

  test('closing the logger writes a pending count', async () => {
    const { stream, logger } = stderrLogger(1);
    logger.warning('a');
    logger.warning('b');
    logger.warning('c');
    await closeLogger(logger);
    expect(stream.text).toBe(`postfix/scache: warning: a\npostfix/scache: warning: ${suppressedText(2, 1)}\n`);
  });
});
