/**
 * Per-test resources for the server suites: everything created through these helpers is closed by
 * `cleanup()` (call it in afterAll), in reverse order of creation.
 */
import { expect } from '@jest/globals';
import type { WireConnection } from '../../ts/native.js';
import type { ScacheServerOptions } from '../../ts/server/scache-server.js';
import { startEmbedded, waitForRecords, type EmbeddedServer, type ServerUnderTest } from './servers.js';
import { sleep } from './time.js';
import { CachedConnection, Client } from './wire.js';

const disposers: Array<() => unknown> = [];

export function onCleanup(dispose: () => unknown): void {
  disposers.push(dispose);
}

/** Disposes of everything, even if some disposals fail; then reports the first failure. */
export async function cleanup(): Promise<void> {
  const failures: unknown[] = [];
  for (const dispose of disposers.splice(0).reverse()) {
    try {
      await dispose();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
}

export function newServer(options: Omit<ScacheServerOptions, 'listen' | 'logger'> = {}): EmbeddedServer {
  const server = startEmbedded(options);
  onCleanup(() => server.stop());
  return server;
}

export function newClient(path: string): Client {
  const client = Client.connect(path);
  onCleanup(() => client.close());
  return client;
}

export function newCached(): CachedConnection {
  const cached = new CachedConnection();
  onCleanup(() => cached.destroy());
  return cached;
}

export function owned(received: WireConnection): WireConnection {
  onCleanup(() => received.close());
  return received;
}

/** The server's records are exactly `expected` (waits for them, then a little for any extra). */
export async function expectRecords(server: ServerUnderTest, expected: string[]): Promise<void> {
  await waitForRecords(server, expected.length);
  await sleep(100);
  expect([...server.records]).toEqual(expected);
}
