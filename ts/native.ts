// The native binding, through the loader napi-rs generates at build time (native/index.js). It loads
// a local build in this checkout or, in an installed package, the platform package beside it
// (postfix-scache-<platform>, an optional dependency of the root package).
//
// The loader is imported dynamically so that its failure can be replaced by an error that names
// the platform and the package to install: the generated one only speaks of an npm bug.

import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as Binding from '../native/index.js';

export type * from '../native/index.js';

/** The platforms a prebuilt binary is published for (package.json `napi.targets`). */
export const PREBUILT_PLATFORMS = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl'] as const;

const PACKAGE = 'postfix-scache';
const LOADER = new URL('../native/index.js', import.meta.url);

/** This process's platform as napi-rs names it: `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, ... */
export function nativePlatform(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return `linux-${process.arch}-${report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`;
}

function packageVersion(): string | undefined {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The loader's failure, explained: which platform, which package, what to do. */
function explain(cause: unknown): Error {
  const platform = nativePlatform();
  const platformPackage = `${PACKAGE}-${platform}`;
  let message: string;
  if (process.platform !== 'linux') {
    message = `${PACKAGE} runs on Linux only (it needs epoll and SCM_RIGHTS descriptor passing); this is ${platform}`;
  } else if (!(PREBUILT_PLATFORMS as readonly string[]).includes(platform)) {
    message =
      `${PACKAGE} has no prebuilt native addon for ${platform} (there are: ${PREBUILT_PLATFORMS.join(', ')}); ` +
      'build it from a checkout of the repository with `npm run build` (needs Rust)';
  } else {
    let installed = false;
    try {
      createRequire(LOADER).resolve(`${platformPackage}/package.json`);
      installed = true;
    } catch {
      // not installed
    }
    const version = packageVersion();
    message = installed
      ? `${PACKAGE} cannot load its native addon for ${platform} from ${platformPackage}: ${
          (cause as Error)?.message ?? String(cause)
        }`
      : `${PACKAGE} needs its native addon for ${platform}, from the package ${platformPackage}, which is not ` +
        `installed. It is an optional dependency of ${PACKAGE}: install it (npm install ${platformPackage}` +
        `${version ? `@${version}` : ''}), and do not install with --omit=optional or --no-optional`;
  }
  return new Error(message, { cause });
}

/** True when this process runs the postfix-scache command (dist/cli/main.js, maybe via a bin link). */
function runningTheCommand(): boolean {
  try {
    const command = fileURLToPath(new URL('./cli/main.js', import.meta.url));
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(command);
  } catch {
    return false;
  }
}

async function load(): Promise<typeof Binding> {
  try {
    return await import('../native/index.js');
  } catch (error) {
    const explained = explain(error);
    if (runningTheCommand()) {
      // The command fails before it could install its error handling (this runs while its modules
      // load): one line, as its other fatal errors are, instead of a stack and a chain of causes.
      process.stderr.write(`${PACKAGE}: fatal: ${explained.message}\n`);
      process.exit(1);
    }
    throw explained;
  }
}

const binding = await load();

export const {
  LogReceiver,
  LogSocket,
  NativeClient,
  NativeServer,
  WireConnection,
  closeFd,
  descriptorLimit,
  dropPrivileges,
  listenUnix,
  openDescriptorCount,
  sameSocket,
  socketpair,
  streamSocketProblem,
} = binding;
export type LogReceiver = Binding.LogReceiver;
export type LogSocket = Binding.LogSocket;
export type NativeClient = Binding.NativeClient;
export type NativeServer = Binding.NativeServer;
export type WireConnection = Binding.WireConnection;
