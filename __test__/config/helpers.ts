/**
 * Shared helpers for the configuration tests: temporary configuration directories whose
 * main.cf is "cold" (modified an hour ago, so Postfix's hot-file re-read does not
 * kick in), and a way to capture a ConfigError's exact texts.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, type ConfigSource, type LoadedConfig } from '../../ts/config/index.js';

const createdDirectories: string[] = [];

/** A fresh, empty temporary directory, removed by removeConfigDirectories(). */
export function emptyDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'scache-config-test-'));
  createdDirectories.push(directory);
  return directory;
}

/** A fresh directory holding `content` as main.cf, with an old modification time. */
export function configDirectoryWith(content: string | Buffer): string {
  const directory = emptyDirectory();
  const path = join(directory, 'main.cf');
  writeFileSync(path, content);
  const anHourAgo = new Date(Date.now() - 3600 * 1000);
  utimesSync(path, anHourAgo, anHourAgo);
  return directory;
}

export function removeConfigDirectories(): void {
  for (const directory of createdDirectories.splice(0)) rmSync(directory, { recursive: true, force: true });
}

export const identity = { processName: 'scache', serviceName: 'scache', processId: 4242, hostname: 'vm' } as const;

/** loadConfig() on a main.cf with this content (and optional overrides). */
export function load(content: string | Buffer, extra: Partial<ConfigSource> = {}): LoadedConfig {
  return loadConfig({ ...identity, configDir: configDirectoryWith(content), env: {}, ...extra });
}

/** The ConfigError thrown by `action`; fails the test if nothing (or something else) is thrown. */
export function configErrorOf(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}
