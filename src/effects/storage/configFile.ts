/**
 * Reading and writing config files (YAML or JSON, by extension): the effectful half of the
 * config text forms.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { parseJson, parseYaml, type ConfigSyntaxError } from '../../state/config/configText.js';

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

const formatOf = (path: string): 'yaml' | 'json' =>
  extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';

/**
 * Reads a text file; on failure, a message naming the file and what to do
 * (`run.yaml: no such file; check the path`). Never rejects.
 */
export const readText = async (path: string): Promise<E.Either<string, string>> => {
  try {
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
 * Reads a YAML (`.yaml`, `.yml`, anything else) or JSON (`.json`) config file into a plain
 * object, not yet decoded. Never rejects.
 */
export const readConfigFile = async (
  path: string,
): Promise<E.Either<ConfigFileError, Record<string, unknown>>> => {
  const read = await readText(path);
  if (E.isLeft(read)) return E.left({ _tag: 'ConfigFileUnreadable', path, message: read.left });
  const text = read.right;
  const parsed = formatOf(path) === 'json' ? parseJson(text) : parseYaml(text);
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
