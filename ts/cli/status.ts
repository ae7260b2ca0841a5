// `postfix-scache status [--socket PATH] [--json] [--limit N]`: what a running postfix-scache has
// cached right now — counts, destinations with their bindings, endpoints with their connections,
// ages and remaining ttls — as a table for people or JSON for programs. It asks with our status
// request (ScacheClient.status), which Postfix's own scache does not know.

import yargs from 'yargs';
import { ScacheClient, DEFAULT_CLIENT_TIMEOUT_MS, DEFAULT_STATUS_LIMIT } from '../client/scache-client.js';
import { ScacheClientError } from '../client/errors.js';
import type { CacheStatus } from '../client/cache-status.js';
import { defaultSocketPath } from './standalone.js';

const PROGRAM = 'postfix-scache';

/** Runs the command; resolves with the exit status (0, or 1 after printing an error to stderr). */
export async function runStatus(argv: string[]): Promise<number> {
  const args = await yargs(argv)
    .scriptName(`${PROGRAM} status`)
    .usage(
      '$0 [--socket PATH] [--json] [--limit N]\n\n' +
        'Show what a running postfix-scache has cached: counts, destinations and their bindings,\n' +
        'endpoints and their connections, with ages and remaining ttls.',
    )
    .option('socket', {
      alias: 's',
      type: 'string',
      describe: 'the server socket to ask',
      default: defaultSocketPath(),
      defaultDescription: '/tmp/postfix-scache-<uid>/scache',
    })
    .option('json', { type: 'boolean', default: false, describe: 'print the status as JSON' })
    .option('limit', {
      type: 'number',
      default: DEFAULT_STATUS_LIMIT,
      describe: 'list at most N destinations and N endpoints (counts are always complete)',
    })
    .option('timeout', { type: 'number', default: DEFAULT_CLIENT_TIMEOUT_MS, describe: 'milliseconds to wait for the server' })
    .check((parsed) => {
      if (!Number.isInteger(parsed.limit) || parsed.limit < 0) throw new Error('--limit must be a whole number ≥ 0');
      if (!Number.isInteger(parsed.timeout) || parsed.timeout < 1) throw new Error('--timeout must be a whole number ≥ 1');
      return true;
    })
    .strict()
    .help()
    .parseAsync();

  let status: CacheStatus;
  try {
    const client = await ScacheClient.connect(args.socket, { timeoutMs: args.timeout });
    try {
      status = await client.status(args.limit);
    } finally {
      client.close();
    }
  } catch (error) {
    process.stderr.write(`${PROGRAM} status: ${explain(error, args.socket)}\n`);
    return 1;
  }
  process.stdout.write(args.json ? `${JSON.stringify({ socket: args.socket, ...status }, null, 2)}\n` : formatStatus(status, args.socket));
  return 0;
}

function explain(error: unknown, socket: string): string {
  if (!(error instanceof ScacheClientError)) return (error as Error)?.message ?? String(error);
  const detail = error.reason;
  switch (error.kind) {
    case 'connect':
      return (
        `no server answers at ${socket} (${detail}); ` +
        `start one with \`${PROGRAM} --listen ${socket}\`, or name its socket with --socket`
      );
    case 'unsupported':
      return `${socket} is not postfix-scache: it does not know the status request (Postfix's own scache answers status=1)`;
    case 'protocol':
      return `${socket} does not speak the connection cache protocol as expected: ${detail}`;
    default:
      return `${socket}: ${detail}`;
  }
}

/**
 * A label or property made readable on one line: its `\n`-separated fields (properties end with an
 * empty line) joined by spaces.
 */
export function oneLine(text: string): string {
  const fields = text.replace(/\n+$/, '').split('\n');
  const shown = fields
    .join(' ')
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return shown === '' ? '-' : shown;
}

/** `850ms`, `1.5s`, `42s`, `4m02s`, `3h07m`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const two = (n: number) => String(n).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${two(Math.floor(seconds / 60) % 60)}m`;
}

/** Columns padded to their widest cell; the last column is not padded. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((text) => `${text}\n`).join('');
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** The human-readable status: a summary line, then the destinations and connections tables. */
export function formatStatus(status: CacheStatus, socket: string): string {
  let out =
    `${PROGRAM} at ${socket}: ${plural(status.destinationsCount, 'destination')}, ` +
    `${plural(status.endpointsCount, 'endpoint')}, ${plural(status.connectionsCount, 'connection')}\n`;

  const bindings = status.destinations.flatMap((destination) =>
    destination.bindings.map((binding) => [
      oneLine(destination.label),
      oneLine(binding.endpoint),
      duration(binding.ttlMs),
      oneLine(binding.property),
    ]),
  );
  if (bindings.length > 0) {
    out += `\n${table(['DESTINATION', 'ENDPOINT', 'TTL', 'PROPERTY'], bindings)}`;
  }
  if (status.destinations.length < status.destinationsCount) {
    out += `(${status.destinations.length} of ${plural(status.destinationsCount, 'destination')} listed: raise --limit)\n`;
  }

  const connections = status.endpoints.flatMap((endpoint) =>
    endpoint.connections.map((connection) => [
      oneLine(endpoint.label),
      duration(connection.ageMs),
      duration(connection.ttlMs),
      oneLine(connection.property),
    ]),
  );
  if (connections.length > 0) {
    out += `\n${table(['ENDPOINT', 'AGE', 'TTL', 'PROPERTY'], connections)}`;
  }
  if (status.endpoints.length < status.endpointsCount) {
    out += `(${status.endpoints.length} of ${plural(status.endpointsCount, 'endpoint')} listed: raise --limit)\n`;
  }
  return out;
}
