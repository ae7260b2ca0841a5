/**
 * Real connections for the client suites: a connected pair of Node sockets over a UNIX-domain or a
 * TCP socket (one end to cache, the other to watch as the "remote" peer), fake servers that
 * misbehave, and reading with a deadline. Everything made here is destroyed by `closeAll()`.
 */
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { tempDirectory } from '../support/temp.js';

const disposers: Array<() => unknown> = [];

export function onClose(dispose: () => unknown): void {
  disposers.push(dispose);
}

export async function closeAll(): Promise<void> {
  for (const dispose of disposers.splice(0).reverse()) {
    try {
      await dispose();
    } catch {
      // keep going
    }
  }
}

export type Transport = 'unix' | 'tcp';

export interface ConnectedPair {
  /** Our end: the connection to cache. */
  local: net.Socket;
  /** The other end, as the remote server would hold it. */
  peer: net.Socket;
}

/** A fresh connection over `transport`: a net.Server accepts once, `local` is the client side. */
export async function connectedPair(transport: Transport): Promise<ConnectedPair> {
  const server = net.createServer();
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  if (transport === 'unix') {
    server.listen(join(tempDirectory('scache-client-'), 'peer'));
  } else {
    server.listen(0, '127.0.0.1');
  }
  await once(server, 'listening');
  const address = server.address();
  const local =
    typeof address === 'string' ? net.connect(address) : net.connect((address as net.AddressInfo).port, '127.0.0.1');
  await once(local, 'connect');
  const [peer] = await accepted;
  server.close();
  onClose(() => {
    local.destroy();
    peer.destroy();
  });
  return { local, peer };
}

/** The next bytes `socket` receives (at least `count` of them), or what arrived by the deadline. */
export function receive(socket: net.Socket, count: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', done);
      socket.pause();
      resolve(data);
    };
    const onData = (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.length >= count) done();
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', onData);
    socket.once('close', done);
    socket.resume();
  });
}

/** Resolves true when `socket` sees the end of the stream (its peer closed) within the deadline. */
export function sawEnd(socket: net.Socket, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.readableEnded || socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const ended = () => {
      clearTimeout(timer);
      resolve(true);
    };
    socket.once('end', ended);
    socket.once('close', ended);
    socket.resume();
  });
}

/** The announcement every connection cache server sends first. */
export const ANNOUNCEMENT = Buffer.from('protocol\0connection_cache_protocol\0\0', 'latin1');

/**
 * A fake server on a fresh UNIX socket path; `onClient` decides what each client gets (e.g. the
 * announcement and then nothing, or a wrong announcement).
 */
export async function fakeServer(onClient: (socket: net.Socket) => void): Promise<string> {
  const path = join(tempDirectory('scache-fake-'), 'scache');
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onClient(socket);
  });
  server.listen(path);
  await once(server, 'listening');
  onClose(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return path;
}

/**
 * The README's example (between `<!-- example:NAME -->` and `<!-- /example:NAME -->`), as the
 * JavaScript it shows, so that the tests run exactly what the README says.
 */
export function readmeExample(readme: string, name: string): string {
  const start = readme.indexOf(`<!-- example:${name} -->`);
  const end = readme.indexOf(`<!-- /example:${name} -->`);
  if (start < 0 || end < start) throw new Error(`README.md has no example ${name}`);
  const block = readme.slice(start, end);
  const code = /```js\n([\s\S]*?)```/.exec(block);
  if (!code) throw new Error(`README.md's example ${name} has no js block`);
  return code[1]!;
}
