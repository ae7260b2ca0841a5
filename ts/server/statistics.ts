// scache's statistics lines (spec §6), from the counters of one interval. The texts, the integer
// percentages and the `ctime()`-style interval start are Postfix's, so log watchers keep working.

import type { NativeCounters } from '../native.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Mmm dd hh:mm:ss` with a space-padded day, in local time, as `ctime(t) + 4` gives it. */
export function ctimeStamp(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const day = String(date.getDate()).padStart(2, ' ');
  return `${MONTHS[date.getMonth()]} ${day} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

function success(hits: number, miss: number): number {
  // C integer arithmetic: hits * 100 in int, then truncating division.
  return Math.trunc(((hits * 100) | 0) / (hits + miss));
}

/** The lines to log for one interval; none when nothing happened in it. */
export function statisticsLines(counters: NativeCounters, intervalStart: Date): string[] {
  const { destHits, destMiss, endpHits, endpMiss, maxDests, maxEndps, maxSessions, evictedDead, evictedLimit } = counters;
  const lines: string[] = [];
  if (destHits || destMiss || endpHits || endpMiss || maxDests || maxEndps || maxSessions || evictedDead || evictedLimit) {
    lines.push(`statistics: start interval ${ctimeStamp(intervalStart)}`);
  }
  if (destHits || destMiss) {
    lines.push(`statistics: domain lookup hits=${destHits} miss=${destMiss} success=${success(destHits, destMiss)}%`);
  }
  if (endpHits || endpMiss) {
    lines.push(`statistics: address lookup hits=${endpHits} miss=${endpMiss} success=${success(endpHits, endpMiss)}%`);
  }
  if (maxDests || maxEndps || maxSessions) {
    lines.push(`statistics: max simultaneous domains=${maxDests} addresses=${maxEndps} connection=${maxSessions}`);
  }
  // Not in Postfix, which neither watches its connections nor limits them.
  if (evictedDead || evictedLimit) {
    lines.push(`statistics: closed early dead_peer=${evictedDead} over_limit=${evictedLimit}`);
  }
  return lines;
}
