/**
 * Complete protocol exchanges for tests that drive a server directly, asserting every byte on
 * the way (spec §3.3–§3.6).
 */
import { expect } from '@jest/globals';
import { WireConnection } from '../../ts/native.js';
import {
  DUMMY,
  FAIL,
  OK,
  findDest,
  findDestReply,
  findEndp,
  findEndpReply,
  saveDest,
  saveEndp,
  show,
  status,
  type Bytes,
} from './attrs.js';
import { CachedConnection, Client } from './wire.js';

/** Reads exactly `expected.length` bytes and asserts they are `expected`. */
export function expectReply(client: Client, expected: Uint8Array): void {
  expect(show(client.read(expected.length))).toBe(show(expected));
}

/** save_endp: request, dummy, the descriptor (then our copy is closed, like smtp does), status=0. */
export function saveEndpoint(client: Client, label: Bytes, property: Bytes, cached: CachedConnection, ttl: number | string = 2): void {
  client.send(saveEndp(ttl, label, property));
  expectReply(client, DUMMY);
  expect(client.sendDescriptors([cached.fd])).toBe(1);
  cached.release();
  expectReply(client, status(OK));
}

export function saveBinding(client: Client, dest: Bytes, destProperty: Bytes, endpoint: Bytes, ttl: number | string = 2): void {
  client.send(saveDest(ttl, dest, destProperty, endpoint));
  expectReply(client, status(OK));
}

/** The descriptor hand-over after a find hit: dummy, one byte + one descriptor, trailing dummy. */
function takeDescriptor(client: Client): WireConnection {
  client.send(DUMMY);
  const received = client.receiveDescriptor();
  expect(received.kind).toBe('descriptor');
  client.send(DUMMY);
  return WireConnection.adopt(received.fd!);
}

/** A find_endp hit with `property`; returns the received descriptor (owned by the caller). */
export function findEndpoint(client: Client, label: Bytes, property: Bytes): WireConnection {
  client.send(findEndp(label));
  expectReply(client, findEndpReply(OK, property));
  return takeDescriptor(client);
}

export function findDestination(client: Client, dest: Bytes, destProperty: Bytes, endpProperty: Bytes): WireConnection {
  client.send(findDest(dest));
  expectReply(client, findDestReply(OK, destProperty, endpProperty));
  return takeDescriptor(client);
}

export function missEndpoint(client: Client, label: Bytes): void {
  client.send(findEndp(label));
  expectReply(client, findEndpReply(FAIL));
}

export function missDestination(client: Client, dest: Bytes): void {
  client.send(findDest(dest));
  expectReply(client, findDestReply(FAIL));
}
