/**
 * Every child process a test starts is registered here, so that it is killed when the test file
 * ends (afterAll(killChildren)), whatever happened, and as a last resort when the Jest worker exits.
 */
import type { ChildProcess } from 'node:child_process';

const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** True while the process has not exited. */
export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Resolves with the exit code or signal once the process has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (!running(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Kills (SIGKILL) every registered child still running and waits for them to exit. */
export async function killChildren(): Promise<void> {
  const waits: Array<Promise<unknown>> = [];
  for (const child of children) {
    if (running(child)) {
      waits.push(exited(child));
      child.kill('SIGKILL');
    }
  }
  await Promise.all(waits);
}

process.once('exit', () => {
  for (const child of children) if (running(child)) child.kill('SIGKILL');
});
