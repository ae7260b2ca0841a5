/**
 * No descriptor leaks: thousands of exchanges in which the client vanishes at every step — after
 * the request, after the server's `dummy`, after a find reply, after its own first dummy, after
 * the descriptor — or sends two descriptors in one message, or a byte without one; plus complete
 * exchanges, and saved connections whose peers hang up or stay until their ttl. Once the ttl has
 * passed, the server's open-descriptor count (/proc/PID/fd of the server process) is back at its
 * baseline.
 *
 * Scale with SCACHE_LEAK_CYCLES (default 3,000).
 */
import { afterAll, expect, test } from '@jest/globals';
import { closeFd, socketpair } from '../../ts/native.js';
import { DUMMY, FAIL, FD_BYTE, findDest, findDestReply, findEndp, findEndpReply, OK, saveDest, saveEndp, status } from '../support/attrs.js';
import { expectReply } from '../support/exchanges.js';
import { killChildren } from '../support/processes.js';
import { removeTempDirectories } from '../support/temp.js';
import { now, sleep, waitFor } from '../support/time.js';
import { Client } from '../support/wire.js';
import { figure, openFds, scaled, startServerProcess } from './support.js';
import { P, D } from '../support/labels.js';

afterAll(async () => {
  await killChildren();
  removeTempDirectories();
});

const CYCLES = scaled('SCACHE_LEAK_CYCLES', 3_000);

/** Peers of saved connections that stay open until the end (the server expires their connections). */
const held: number[] = [];
const HELD_AT_MOST = 300;

/** Saves a fresh connection under `endpoint` through `client`; returns the peer's descriptor. */
function save(client: Client, endpoint: string): number {
  const [cached, peer] = socketpair();
  client.send(saveEndp(1, endpoint, P));
  expectReply(client, DUMMY);
  client.sendDescriptors([cached!]);
  closeFd(cached!);
  expectReply(client, status(OK));
  return peer!;
}

/** Keeps the peer open (the server must expire the connection) or closes it (a dead peer). */
function keepOrClose(peer: number, cycle: number): void {
  if (cycle % 2 === 0 && held.length < HELD_AT_MOST) held.push(peer);
  else closeFd(peer);
}

type Variant = (path: string, keeper: Client, endpoint: string, cycle: number) => void;

const VARIANTS: Array<[string, Variant]> = [
  ['gone after the save_endp request', (path, _k, endpoint) => {
    const client = Client.connect(path);
    client.send(saveEndp(1, endpoint, P));
    client.close();
  }],
  ['gone after the dummy, descriptor withheld', (path, _k, endpoint) => {
    const client = Client.connect(path);
    client.send(saveEndp(1, endpoint, P));
    expectReply(client, DUMMY);
    client.close();
  }],
  ['a byte without a descriptor', (path, _k, endpoint) => {
    const client = Client.connect(path);
    client.send(saveEndp(1, endpoint, P));
    expectReply(client, DUMMY);
    client.send(FD_BYTE);
    expectReply(client, status(FAIL));
    client.close();
  }],
  ['two descriptors in one message', (path, _k, endpoint) => {
    const client = Client.connect(path);
    const [a, aPeer] = socketpair();
    const [b, bPeer] = socketpair();
    client.send(saveEndp(1, endpoint, P));
    expectReply(client, DUMMY);
    client.sendDescriptors([a!, b!]);
    expectReply(client, status(FAIL));
    [a!, aPeer!, b!, bPeer!].forEach(closeFd);
    client.close();
  }],
  ['saved, then the client is gone', (path, _k, endpoint, cycle) => {
    const client = Client.connect(path);
    keepOrClose(save(client, endpoint), cycle);
    client.close();
  }],
  ['gone after the find reply', (path, keeper, endpoint) => {
    const peer = save(keeper, endpoint);
    const client = Client.connect(path);
    client.send(findEndp(endpoint));
    expectReply(client, findEndpReply(OK, P));
    client.close();
    closeFd(peer);
  }],
  ['gone after its first dummy', (path, keeper, endpoint) => {
    const peer = save(keeper, endpoint);
    const client = Client.connect(path);
    client.send(findEndp(endpoint));
    expectReply(client, findEndpReply(OK, P));
    client.send(DUMMY);
    client.close();
    closeFd(peer);
  }],
  ['gone after the descriptor, no trailing dummy', (path, keeper, endpoint) => {
    const peer = save(keeper, endpoint);
    const client = Client.connect(path);
    client.send(findEndp(endpoint));
    expectReply(client, findEndpReply(OK, P));
    client.send(DUMMY);
    const received = client.receiveDescriptor();
    expect(received.kind).toBe('descriptor');
    closeFd(received.fd!);
    client.close();
    closeFd(peer);
  }],
  ['a complete find', (path, keeper, endpoint) => {
    const peer = save(keeper, endpoint);
    const client = Client.connect(path);
    client.send(findEndp(endpoint));
    expectReply(client, findEndpReply(OK, P));
    client.send(DUMMY);
    const received = client.receiveDescriptor();
    client.send(DUMMY);
    expect(received.kind).toBe('descriptor');
    closeFd(received.fd!);
    client.close();
    closeFd(peer);
  }],
  ['find_dest, gone after the reply', (path, keeper, endpoint) => {
    const peer = save(keeper, endpoint);
    keeper.send(saveDest(1, D, 'd', endpoint));
    expectReply(keeper, status(OK));
    const client = Client.connect(path);
    client.send(findDest(D));
    expectReply(client, findDestReply(OK, 'd', P));
    client.close();
    closeFd(peer);
  }],
  ['part of a request, then gone', (path, _k, endpoint) => {
    const client = Client.connect(path);
    client.send(saveEndp(1, endpoint, P).subarray(0, 30));
    client.close();
  }],
];

test(`${CYCLES} exchanges cut short at every step: the server's descriptors return to their baseline`, async () => {
  const server = await startServerProcess();
  const settle = async () => {
    let last = openFds(server.pid);
    await waitFor(() => {
      const seen = openFds(server.pid);
      const stable = seen === last;
      last = seen;
      return stable;
    }, 2000, 100);
    return last;
  };
  const baseline = await settle();
  const keeper = Client.connect(server.path);
  const perVariant = new Map<string, number>();
  let peak = baseline;
  const started = now();
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const [name, run] = VARIANTS[cycle % VARIANTS.length]!;
    // A fresh endpoint per cycle, so that no find meets a connection another cycle left.
    run(server.path, keeper, `smtp\n10.1.${(cycle >> 8) & 255}.${cycle & 255}\n25\n0\n`, cycle);
    perVariant.set(name, (perVariant.get(name) ?? 0) + 1);
    if (cycle % 100 === 0) peak = Math.max(peak, openFds(server.pid));
    // Let the server's loop and this process's event loop breathe now and then.
    if (cycle % 200 === 0) await sleep(1);
  }
  const seconds = (now() - started) / 1000;
  peak = Math.max(peak, openFds(server.pid));
  keeper.close();
  // The ttl (1 s) passes: every connection still cached is expired and closed.
  await sleep(1500);
  const returned = await waitFor(() => openFds(server.pid) === baseline, 5000, 50);
  const final = openFds(server.pid);
  held.splice(0).forEach(closeFd);
  expect({ final, returned }).toEqual({ final: baseline, returned: true });
  expect(server.records().filter((line) => /^(fatal|panic|error):/.test(line))).toEqual([]);
  expect(await server.stop()).toEqual({ code: 0, signal: null });
  figure(
    'no descriptor leak',
    `${CYCLES} exchanges (${perVariant.size} ways of ending them) in ${seconds.toFixed(1)} s; server descriptors: ` +
      `baseline ${baseline}, peak ${peak}, ${final} once the ttl had passed`,
  );
}, 120_000);
