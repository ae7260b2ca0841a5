/**
 * Differential suite: every scripted case of cases.ts runs against the real Postfix 3.7 scache
 * (/usr/lib/postfix/sbin/scache, started as master(8) would start it) and against ours, and the
 * two transcripts (reply bytes, descriptors received, same open file, EOF seen by cached sockets'
 * peers, log records) must agree with each other and with the script's expectations.
 *
 * Ours runs embedded in this process (ScacheServer.start), not through the CLI: each case gets a
 * fresh server pair, so records belong to exactly one case without marker requests, and an embedded
 * server starts in microseconds where a Node child takes ~0.3 s; it also takes the same
 * connection_cache_ttl_limit / ipc_timeout that Postfix gets with -o, which the CLI has no options
 * for. The CLI itself is covered by __test__/server/cli.test.ts.
 *
 * The cases run concurrently (each case on its own pair of servers), started before the first test;
 * each test waits for its case's outcome.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { startEmbedded, startPostfixScache } from '../support/servers.js';
import { killChildren } from '../support/processes.js';
import { Client } from '../support/wire.js';
import { removeTempDirectories } from '../support/temp.js';
import { cases } from './cases.js';
import { runCase, transcriptDifferences, type SideResult } from './runner.js';
import type { Case, Step } from './script.js';

interface Outcome {
  postfix: SideResult;
  ours: SideResult;
}

/** Cases running at once: enough to finish quickly, few enough to keep timing windows honest. */
const PARALLEL = 10;

async function runBoth(testCase: Case): Promise<Outcome> {
  const ttlLimit = testCase.ttlLimit ?? 2;
  const parameters: Record<string, string> = { connection_cache_ttl_limit: `${ttlLimit}s` };
  if (testCase.ipcTimeout) parameters.ipc_timeout = `${testCase.ipcTimeout}s`;
  const queued = testCase.queuedBeforeStart;
  const start = {
    beforeStart: queued
      ? (path: string) => {
          const client = Client.connectRaw(path);
          client.send(queued);
          client.close();
        }
      : undefined,
  };
  const postfix = startPostfixScache(parameters, start);
  const ours = startEmbedded(
    {
      ttlLimitMs: ttlLimit * 1000,
      ...(testCase.ipcTimeout ? { ipcTimeoutMs: testCase.ipcTimeout * 1000 } : {}),
    },
    start,
  );
  try {
    const [postfixResult, oursResult] = await Promise.all([
      runCase('postfix', postfix, testCase),
      runCase('ours', ours, testCase),
    ]);
    return { postfix: postfixResult, ours: oursResult };
  } finally {
    await Promise.all([postfix.stop(), ours.stop()]);
  }
}

/** Rough duration, so that the slow cases start first. */
function estimate(steps: Step[]): number {
  let total = 0;
  for (const step of steps) {
    if ('sleepUntil' in step) total = Math.max(total, step.sleepUntil);
    if ('peerEof' in step) total += step.to / 2;
    if ('expectNothing' in step) total += step.expectNothing;
    if ('sides' in step) total += Math.max(estimate(step.sides.postfix), estimate(step.sides.ours));
  }
  return total;
}

const outcomes = new Map<string, Promise<{ outcome?: Outcome; error?: unknown }>>();

function startAll(): void {
  const queue = [...cases].sort((a, b) => estimate(b.steps) - estimate(a.steps));
  const starters = new Map<string, () => void>();
  let active = 0;
  const next = () => {
    const testCase = queue.shift();
    if (testCase) starters.get(testCase.name)!();
  };
  for (const testCase of cases) {
    outcomes.set(
      testCase.name,
      new Promise((resolve) => {
        starters.set(testCase.name, () => {
          active += 1;
          runBoth(testCase)
            .then((outcome) => resolve({ outcome }), (error: unknown) => resolve({ error }))
            .finally(() => {
              active -= 1;
              next();
            });
        });
      }),
    );
  }
  while (active < PARALLEL && queue.length > 0) next();
}

beforeAll(startAll);

afterAll(async () => {
  const settled = await Promise.all(outcomes.values());
  // SCACHE_DIFF_REPORT=<file> keeps both transcripts and every record of every case, e.g. to read
  // Postfix's stale %m texts.
  const report = process.env.SCACHE_DIFF_REPORT;
  if (report) writeFileSync(report, JSON.stringify(settled.map(({ outcome }) => outcome), null, 2));
  await killChildren();
  removeTempDirectories();
});

const names = new Set<string>();
for (const testCase of cases) {
  if (names.has(testCase.name)) throw new Error(`duplicate case name: ${testCase.name}`);
  names.add(testCase.name);
}

describe('Postfix 3.7 scache and ours, side by side', () => {
  for (const testCase of cases) {
    test(testCase.name, async () => {
      const { outcome, error } = await outcomes.get(testCase.name)!;
      if (error) throw error;
      const { postfix, ours } = outcome!;
      expect({
        'postfix vs script': postfix.failures,
        'ours vs script': ours.failures,
        'postfix vs ours': transcriptDifferences(postfix, ours),
      }).toEqual({ 'postfix vs script': [], 'ours vs script': [], 'postfix vs ours': [] });
    });
  }
});

test('the checklist items 1-32 and 57-60 all have a case', () => {
  const numbered = new Set(cases.map((testCase) => Number(/^(\d+) /.exec(testCase.name)?.[1])).filter(Number.isFinite));
  const required = [...Array.from({ length: 32 }, (_, i) => i + 1), 57, 58, 59, 60];
  expect(required.filter((item) => !numbered.has(item))).toEqual([]);
});
