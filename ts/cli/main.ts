#!/usr/bin/env node
// The postfix-scache command. The first argument decides what it does:
//  - `install ...`: writes the launcher master(8) runs (install.ts);
//  - `status ...`: shows what a running server has cached (status.ts);
//  - a single-dash option: master's argv — the daemon as a Postfix service (master.ts);
//  - anything else: the stand-alone server (standalone.ts), what `npm start` runs.

import { hideBin } from 'yargs/helpers';
import { exitOnUncaught } from './exit.js';
import { runInstall } from './install.js';
import { isMasterArgv, runUnderMaster } from './master.js';
import { runStandAlone } from './standalone.js';
import { runStatus } from './status.js';

exitOnUncaught();
const argv = hideBin(process.argv);
if (argv[0] === 'install') {
  process.exitCode = await runInstall(argv.slice(1));
} else if (argv[0] === 'status') {
  process.exitCode = await runStatus(argv.slice(1));
} else if (isMasterArgv(argv)) {
  await runUnderMaster(argv);
} else {
  await runStandAlone(argv);
}
