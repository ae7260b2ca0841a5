// What the core reports, turned into log records and callbacks. Batches arrive once per loop
// iteration of the core; handling one costs the core nothing, because it has already moved on.

import type { NativeEvent, NativeObservation } from '../native.js';
import type { PostfixLogger } from '../logging/logger.js';

export interface EventHandlers {
  logger: PostfixLogger;
  /** The number of connected clients changed. */
  onClients?: (count: number) => void;
  /** master(8) closed the status channel: Postfix exits (after its statistics) on this. */
  onMasterGone?: () => void;
  /** The `-S` client has been served. */
  onFinished?: () => void;
  /** The core's thread panicked: the server is gone. */
  onPanicked?: (message: string) => void;
  /** A save, lookup or eviction (only when the plan asked for observations). */
  onObserved?: (observation: NativeObservation) => void;
}

export function dispatchEvents(events: NativeEvent[], handlers: EventHandlers): void {
  for (const event of events) {
    switch (event.kind) {
      case 'warning':
        handlers.logger.warning(event.text ?? '');
        break;
      case 'trace':
        handlers.logger.info(event.text ?? '');
        break;
      case 'clients':
        handlers.onClients?.(event.count ?? 0);
        break;
      case 'master_gone':
        handlers.onMasterGone?.();
        break;
      case 'finished':
        handlers.onFinished?.();
        break;
      case 'panicked':
        handlers.onPanicked?.(event.text ?? '');
        break;
      case 'observed':
        if (event.observation) handlers.onObserved?.(event.observation);
        break;
      case 'dropped':
        handlers.logger.warning(`${event.count ?? 0} log records were dropped: the logger could not keep up`);
        break;
    }
  }
}
