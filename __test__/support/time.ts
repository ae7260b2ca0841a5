/** Small timing helpers. Times are `performance.now()` milliseconds. */
import { performance } from 'node:perf_hooks';

export const now = (): number => performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Polls `condition` every `intervalMs` until it holds (true) or `timeoutMs` passed (false). */
export async function waitFor(condition: () => boolean, timeoutMs: number, intervalMs = 10): Promise<boolean> {
  const deadline = now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (now() >= deadline) return false;
    await sleep(Math.min(intervalMs, deadline - now()));
  }
}
