// The errors a ScacheClient rejects with: one class, with a `kind` to branch on.

/**
 * What went wrong:
 *
 * - `connect`: the socket could not be connected to (absent, refused, not a socket, no permission);
 * - `timeout`: the server did not answer within `timeoutMs`;
 * - `closed`: the server closed the connection, or the client was closed (by `close()`, or after
 *   an earlier failure left the exchange in an unknown state);
 * - `protocol`: the server broke the protocol (a wrong announcement, a malformed reply, a missing
 *   descriptor);
 * - `unsupported`: the server does not know the request (Postfix's own scache and `status()`);
 * - `invalid_socket`: the socket given to `saveEndp` cannot be cached (no descriptor, not a
 *   UNIX-domain or TCP stream socket);
 * - `io`: any other system error.
 */
export type ScacheClientErrorKind = 'connect' | 'timeout' | 'closed' | 'protocol' | 'unsupported' | 'invalid_socket' | 'io';

/** A request (or the connection) failed; `kind` says how. */
export class ScacheClientError extends Error {
  override readonly name = 'ScacheClientError';

  constructor(
    /** How it failed. */
    readonly kind: ScacheClientErrorKind,
    /** The socket the client talks to. */
    readonly path: string,
    /** The request that failed (`save_endp`, ..., `status`), or `connect`. */
    readonly request: string,
    /** What happened, without the request and path the full message starts with. */
    readonly reason: string,
  ) {
    super(`${request} (${path}): ${reason}`);
  }
}
