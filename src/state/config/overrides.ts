/**
 * Command-line overrides in chanfig's style, parsed purely: `--optim.lr 0.01`, `--optim.lr=0.01`,
 * `--log false`, a bare `--flag` (true), and `--config file.yaml` (the file is read elsewhere).
 */
import * as E from 'fp-ts/lib/Either.js';
import { parse } from 'yaml';
import { isJson, withoutNegativeZero, type Json, type JsonObject } from '../Json.js';
import { setIn } from './merge.js';

/** One `--key value` override: a dotted path and a value parsed as a YAML scalar. */
export interface Override {
  readonly path: string;
  readonly value: Json;
}

/** What a command line says: positional words, config files, overrides, and `--help`. */
export interface ParsedArgs {
  readonly positional: readonly string[];
  readonly configFiles: readonly string[];
  readonly overrides: readonly Override[];
  readonly help: boolean;
}

/** A command line that cannot be understood: which argument, and why. */
export interface ArgsError {
  readonly _tag: 'ArgsInvalid';
  readonly arg: string;
  readonly message: string;
}

const argsError = (arg: string, reason: string): ArgsError => ({
  _tag: 'ArgsInvalid',
  arg,
  message: `${arg}: ${reason}`,
});

/**
 * Parses a value the way YAML reads a scalar or flow collection: `0.01` -> 0.01, `false` ->
 * false, `[1, 2]` -> [1, 2], `null` -> null. Anything that is not valid YAML, or not JSON data
 * (`.inf`, `.nan`), stays the string as typed; the empty string stays `''`.
 */
export const parseScalar = (raw: string): Json => {
  if (raw.trim() === '') return raw;
  try {
    const value: unknown = withoutNegativeZero(parse(raw)); // -0 reads as 0, as in a config file
    return isJson(value) ? value : raw;
  } catch {
    return raw;
  }
};

const KEY = /^[A-Za-z_$][\w$-]*(\.[\w$-]+)*$/;

/**
 * Parses command-line arguments (without `node` and the script). Words before, between and after
 * options are positional; `--` makes every later word positional. Never throws.
 *
 * @example
 * parseArgs(['config', 'run.yaml', '--optim.lr', '0.01', '--log=false'])
 * // Right({ positional: ['config', 'run.yaml'], configFiles: [],
 * //         overrides: [{ path: 'optim.lr', value: 0.01 }, { path: 'log', value: false }], help: false })
 */
export const parseArgs = (argv: readonly string[]): E.Either<ArgsError, ParsedArgs> => {
  const positional: string[] = [];
  const configFiles: string[] = [];
  const overrides: Override[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
        return E.left(argsError(arg, 'unknown short option; config keys are given as --key value'));
      }
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!KEY.test(name)) {
      return E.left(
        argsError(arg, 'expected --key or --dotted.key (letters, digits, _ and -), then a value'),
      );
    }
    let raw: string | undefined;
    if (eq !== -1) {
      raw = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        raw = next;
        i++;
      }
    }
    if (name === 'config') {
      if (raw === undefined || raw === '') {
        return E.left(argsError(arg, 'expected a file after --config, e.g. --config run.yaml'));
      }
      configFiles.push(raw);
      continue;
    }
    overrides.push({ path: name, value: raw === undefined ? true : parseScalar(raw) });
  }
  return E.right({ positional, configFiles, overrides, help });
};

/** Sets every override into `base`, later ones winning. `base` is not touched. */
export const applyOverrides = (base: JsonObject, overrides: readonly Override[]): JsonObject =>
  overrides.reduce((acc, o) => setIn(acc, o.path, o.value), base);
