// Serves our connection cache on its own, for the benchmark (crates/scache-bench starts it in a
// session of its own, as it starts Postfix's scache):
//
//   node bench/serve-ours.mjs SOCKET_PATH TTL_LIMIT_SECONDS
//
// It embeds ScacheServer from dist/ (run `npm run build` first) the way an application would, with
// Postfix's defaults except connection_cache_ttl_limit, logs to stderr, and stops on SIGTERM/SIGINT.

import { ScacheServer } from '../dist/server/scache-server.js';

const [socketPath, ttlLimitSeconds] = process.argv.slice(2);
if (!socketPath || !(Number(ttlLimitSeconds) > 0)) {
  process.stderr.write('usage: node bench/serve-ours.mjs SOCKET_PATH TTL_LIMIT_SECONDS\n');
  process.exit(2);
}

const server = ScacheServer.start({ listen: { path: socketPath }, ttlLimitMs: Number(ttlLimitSeconds) * 1000 });
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
