#!/usr/bin/env node
/** The `danling` executable: runs the CLI on the process's arguments. */
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
