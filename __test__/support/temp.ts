/** Temporary directories (short paths: a UNIX socket path must fit in 108 bytes), removed at the end. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];

export function tempDirectory(prefix = 'scache-test-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  created.push(directory);
  return directory;
}

/** Call in afterAll; also runs when the process exits, for a test file that never got there. */
export function removeTempDirectories(): void {
  for (const directory of created.splice(0)) rmSync(directory, { recursive: true, force: true });
}

process.once('exit', removeTempDirectories);
