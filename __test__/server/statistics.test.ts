/**
 * Our statistics lines (spec §6): the exact texts, integer percentages, the ctime-style interval
 * start, which requests count, "max simultaneous" sampled after saves and reset every interval,
 * nothing logged for an empty interval; at close and every statusUpdateTimeMs.
 */
import { afterAll, expect, test } from '@jest/globals';
import { attrs, FAIL, findDestReply, findEndpReply, BAD } from '../support/attrs.js';
import {
  expectReply,
  findDestination,
  findEndpoint,
  missDestination,
  missEndpoint,
  saveBinding,
  saveEndpoint,
} from '../support/exchanges.js';
import { cleanup, newCached, newClient, newServer, owned } from '../support/harness.js';
import { waitForRecords } from '../support/servers.js';
import { removeTempDirectories } from '../support/temp.js';
import { sleep } from '../support/time.js';
import { E, E2, P, D, Q } from '../support/labels.js';

afterAll(async () => {
  await cleanup();
  removeTempDirectories();
});

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `ctime(t) + 4`, 15 characters: `Mmm dd hh:mm:ss`, day space-padded, local time. */
function ctime15(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** The interval start line for a start somewhere between `from` and `to`. */
function startLineBetween(from: Date, to: Date): string[] {
  const lines = new Set<string>();
  for (let t = Math.floor(from.getTime() / 1000) * 1000; t <= to.getTime(); t += 1000) {
    lines.add(`statistics: start interval ${ctime15(new Date(t))}`);
  }
  return [...lines];
}

test('at close: the four lines with exact texts and truncated percentages; BAD requests count nothing', async () => {
  const before = new Date();
  const server = newServer();
  const after = new Date();
  const client = newClient(server.path);
  saveBinding(client, D, Q, E);
  saveEndpoint(client, E, P, newCached());
  saveEndpoint(client, E, P, newCached());
  saveEndpoint(client, E2, P, newCached());
  owned(findDestination(client, D, Q, P));
  owned(findDestination(client, D, Q, P));
  missDestination(client, D);
  owned(findEndpoint(client, E2, P));
  missEndpoint(client, E2);
  client.send(attrs(['request', 'find_endp']));
  expectReply(client, findEndpReply(BAD));
  client.send(attrs(['request', 'find_dest']));
  expectReply(client, findDestReply(BAD));
  client.close();
  // The two BAD requests' warnings (missing attribute label, bad or missing request parameter).
  expect(await waitForRecords(server, 4)).toBe(true);
  await sleep(100);
  const warnings = server.records.length;
  expect(warnings).toBe(4);
  await server.stop();
  const lines = server.records.slice(warnings);
  expect(lines).toHaveLength(4);
  expect(startLineBetween(before, after)).toContain(lines[0]);
  expect(lines.slice(1)).toEqual([
    'statistics: domain lookup hits=2 miss=1 success=66%',
    'statistics: address lookup hits=1 miss=1 success=50%',
    'statistics: max simultaneous domains=1 addresses=2 connection=3',
  ]);
});

test('nothing happened: nothing is logged at close', async () => {
  const server = newServer();
  const client = newClient(server.path);
  client.close();
  await sleep(50);
  await server.stop();
  expect(server.records).toEqual([]);
});

test('every statusUpdateTimeMs: lines only for intervals with activity, maxima restart from 0', async () => {
  const server = newServer({ statusUpdateTimeMs: 1000 });
  const client = newClient(server.path);
  const [a, b, c] = [newCached(), newCached(), newCached()];
  saveEndpoint(client, E, P, a);
  saveEndpoint(client, E, P, b);
  owned(findEndpoint(client, E, P));
  owned(findEndpoint(client, E, P));
  client.send(attrs(['request', 'find_endp'], ['label', E2]));
  expectReply(client, findEndpReply(FAIL));
  expect(await waitForRecords(server, 3, 2500)).toBe(true);
  const firstDump = new Date();
  expect(server.records.slice(1)).toEqual([
    'statistics: address lookup hits=2 miss=1 success=66%',
    'statistics: max simultaneous domains=0 addresses=1 connection=2',
  ]);
  // An interval without activity logs nothing, although a timer fired.
  await sleep(1300);
  expect(server.records).toHaveLength(3);
  // The cache is empty now: one save makes the maximum 1, not 2 from the earlier interval.
  saveEndpoint(client, E, P, c);
  expect(await waitForRecords(server, 5, 2500)).toBe(true);
  expect(server.records[4]).toBe('statistics: max simultaneous domains=0 addresses=1 connection=1');
  // The second interval started at the first dump (or the empty dump after it).
  expect(startLineBetween(new Date(firstDump.getTime() - 1000), new Date())).toContain(server.records[3]);
  client.close();
  await server.stop();
});
