// How a daemon under master(8) ends (spec §7.6, §7.7): after max_idle seconds without clients, when
// master closes the status channel (postfix reload or stop), after the -S client, and — never
// silently — when the server loop stops going round (the daemon_timeout watchdog). Each of these
// runs the exit handler: statistics, then exit. SIGTERM is left to Node's default, which, like
// Postfix's, ends the process at once without statistics. A panic in the core ends it with status 1.

import { closeLogger, type PostfixLogger } from '../logging/logger.js';
import type { ScacheServer } from '../server/scache-server.js';

export interface LifecycleOptions {
  maxIdleMs: number;
  daemonTimeoutMs: number;
  verbose: boolean;
}

export function superviseDaemon(server: ScacheServer, logger: PostfixLogger, options: LifecycleOptions): void {
  let exiting = false;
  const exit = async (reason: string | undefined, status = 0) => {
    if (exiting) return;
    exiting = true;
    if (options.verbose && reason) logger.info(reason);
    await server.close();
    await closeLogger(logger);
    process.exit(status);
  };

  const idle = idleTimer(options.maxIdleMs, () => void exit('idle timeout -- exiting'));
  server.on('clients', (count) => (count === 0 ? idle.start() : idle.stop()));
  server.on('masterGone', () => void exit('master disconnect -- exiting'));
  server.on('finished', () => void exit(undefined));
  server.on('error', async (error) => {
    // Postfix aborts on a panic; master restarts the service either way.
    logger.panic(error.message);
    await closeLogger(logger);
    process.exit(1);
  });
  watchdog(server, options.daemonTimeoutMs, async () => {
    logger.fatal('watchdog timeout');
    await closeLogger(logger);
    process.exit(1);
  });
}

/** A timer that runs only while no client is connected, restarted in full each time it starts. */
function idleTimer(maxIdleMs: number, expire: () => void) {
  let timer: NodeJS.Timeout | undefined;
  const controls = {
    start() {
      controls.stop();
      timer = setTimeout(expire, maxIdleMs);
    },
    stop() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
  controls.start();
  return controls;
}

/**
 * Postfix re-arms an alarm of daemon_timeout/3 at every pass of its event loop and dies when three
 * go by without a pass. Here the loop runs on its own thread: every daemon_timeout/3 the watchdog
 * makes it go round and checks that it went round since the last look.
 */
function watchdog(server: ScacheServer, daemonTimeoutMs: number, expire: () => void): void {
  const periodMs = Math.floor(daemonTimeoutMs / 3);
  let last = server.loopHeartbeat();
  let missed = 0;
  setInterval(() => {
    const beats = server.loopHeartbeat();
    missed = beats === last ? missed + 1 : 0;
    last = beats;
    if (missed >= 3) expire();
  }, periodMs).unref();
}
