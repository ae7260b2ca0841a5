// stderr in Postfix's -V form (msg_vstream): `tag: [severity: ]text` and a newline, no pid, no
// time, no length cap. Postfix writes it unbuffered; so does this (Node writes to files and pipes
// synchronously on Linux).
//
// Trusts: the stream it is given.

import Transport from 'winston-transport';
import { recordText } from './record.js';

export class StderrTransport extends Transport {
  constructor(
    private readonly tag: string,
    private readonly stream: NodeJS.WritableStream = process.stderr,
  ) {
    super();
  }

  override log(info: { level: string; message: unknown }, next: () => void): void {
    this.stream.write(`${this.tag}: ${recordText(info.level, String(info.message))}\n`);
    next();
  }
}

/** stderr in Postfix's `-v`/`-V` form: `tag: [severity: ]text`. */
export function stderrTransport(tag: string): StderrTransport {
  return new StderrTransport(tag);
}
