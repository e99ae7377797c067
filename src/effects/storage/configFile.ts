/**
 * Reading and writing config files (YAML or JSON, by extension): the effectful half of the
 * config text forms. One rule: `.json` is JSON, `.yaml` / `.yml` is YAML (any case), anything else
 * is an error. A config file must be a regular file of at most {@link MAX_CONFIG_BYTES} bytes.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { parseJson, parseYaml, type ConfigSyntaxError } from '../../state/config/configText.js';
import { mergeDeep } from '../../state/config/merge.js';
import { applyOverrides, parseArgs, type ArgsError } from '../../state/config/overrides.js';
import type { JsonObject } from '../../state/Json.js';

/** A config file that could not be read or parsed; `message` names the file. */
export type ConfigFileError =
  | { readonly _tag: 'ConfigFileUnreadable'; readonly path: string; readonly message: string }
  | {
      readonly _tag: 'ConfigFileSyntax';
      readonly path: string;
      readonly error: ConfigSyntaxError;
      readonly message: string;
    }
  | { readonly _tag: 'ConfigFileNotAnObject'; readonly path: string; readonly message: string };

/** The largest config file read: 16 MiB. Anything bigger is data, not a config. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

const formatOf = (path: string): 'yaml' | 'json' | undefined => {
  const ext = extname(path).toLowerCase();
  return ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
};

/**
 * Reads a text file; on failure, a message naming the file and what to do
 * (`run.yaml: no such file; check the path`). Never rejects.
 */
export const readText = async (path: string): Promise<E.Either<string, string>> => {
  try {
    // stat first: reading a FIFO would wait forever, and a huge file would be read whole.
    const info = await stat(path);
    if (info.isDirectory()) return E.left(`${path}: is a directory; give a .yaml or .json file`);
    if (!info.isFile()) {
      return E.left(
        `${path}: not a regular file (a FIFO, device or socket); give a .yaml or .json file`,
      );
    }
    if (info.size > MAX_CONFIG_BYTES) {
      return E.left(
        `${path}: ${String(info.size)} bytes, over the ${String(MAX_CONFIG_BYTES)}-byte limit of a config file; keep data out of the config`,
      );
    }
    return E.right(await readFile(path, 'utf8'));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file; check the path'
        : code === 'EISDIR'
          ? 'is a directory; give a .yaml or .json file'
          : code === 'EACCES'
            ? 'permission denied'
            : String(error);
    return E.left(`${path}: ${reason}`);
  }
};

/**
 * Reads a YAML (`.yaml`, `.yml`) or JSON (`.json`) config file into a plain object, not yet
 * decoded; any other extension is a `ConfigFileUnreadable` naming the allowed ones. Never rejects.
 */
export const readConfigFile = async (
  path: string,
): Promise<E.Either<ConfigFileError, Record<string, unknown>>> => {
  const format = formatOf(path);
  if (format === undefined) {
    return E.left({
      _tag: 'ConfigFileUnreadable',
      path,
      message: `${path}: unknown config file extension; use .json (JSON), .yaml or .yml (YAML)`,
    });
  }
  const read = await readText(path);
  if (E.isLeft(read)) return E.left({ _tag: 'ConfigFileUnreadable', path, message: read.left });
  const text = read.right;
  const parsed = format === 'json' ? parseJson(text) : parseYaml(text);
  if (E.isLeft(parsed)) {
    return E.left({
      _tag: 'ConfigFileSyntax',
      path,
      error: parsed.left,
      message: `${path}: ${parsed.left.message}`,
    });
  }
  const value = parsed.right;
  if (value === null || value === undefined) return E.right({});
  if (typeof value !== 'object' || Array.isArray(value)) {
    return E.left({
      _tag: 'ConfigFileNotAnObject',
      path,
      message: `${path}: expected a mapping of config keys at the top level`,
    });
  }
  return E.right(value as Record<string, unknown>);
};

/**
 * A training script's config from its command line: the config files named as positional
 * words (else `defaults`) and by `--config`, merged in order (later keys win), then the
 * `--key value` overrides. What every example script does first; an error names the argument
 * or the file.
 *
 * @example
 * const config = await readConfigArgs(process.argv.slice(2), { defaults: ['config.yaml'] });
 * // `node train.js --optim.lr 0.02 --epochEnd 40` -> config.yaml with those two keys replaced
 */
export const readConfigArgs = async (
  argv: readonly string[],
  options: { readonly defaults?: readonly string[] } = {},
): Promise<E.Either<ArgsError | ConfigFileError, JsonObject>> => {
  const args = parseArgs(argv);
  if (E.isLeft(args)) return args;
  const { positional, configFiles, overrides } = args.right;
  let config: JsonObject = {};
  for (const file of [
    ...(positional.length > 0 ? positional : (options.defaults ?? [])),
    ...configFiles,
  ]) {
    const read = await readConfigFile(file);
    if (E.isLeft(read)) return read;
    config = mergeDeep(config, read.right as JsonObject, { overwrite: true });
  }
  return E.right(applyOverrides(config, overrides));
};
