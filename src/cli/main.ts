#!/usr/bin/env node
/**
 * The `danling` command line. A thin layer: parsing and printing here, the work in effects.
 */
import { KNOWN_KEYS, type KeySpec } from '../state/Config.js';

const help = (): string => {
  const rows = Object.entries(KNOWN_KEYS as Record<string, KeySpec>).map(([name, spec]) => {
    const dflt = spec.default === undefined ? '' : ` (default: ${JSON.stringify(spec.default)})`;
    return `  --${name.padEnd(20)} ${spec.doc}${dflt}`;
  });
  return [
    'Usage: danling config [file.yaml|file.json] [--key value ...]',
    '',
    'Known config keys:',
    ...rows,
    '',
  ].join('\n');
};

const main = (argv: readonly string[]): number => {
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help());
    return 0;
  }
  process.stderr.write(`danling: unknown command ${JSON.stringify(argv[0])}; see danling --help\n`);
  return 2;
};

process.exitCode = main(process.argv.slice(2));
