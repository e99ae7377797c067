/**
 * Text forms of a config with the spec's names: `yamls` / `fromYamls`, `jsons` / `fromJsons`.
 * Pure: reading and writing the files is the effect layer's job (`configFile.ts`).
 */
import * as E from 'fp-ts/lib/Either.js';
import { parseDocument, stringify } from 'yaml';
import type { Config } from './Config.js';
import { decodeConfig, type ConfigError } from './decodeConfig.js';

/** A YAML or JSON text that does not parse: where and why. `line` and `column` are 1-based. */
export interface ConfigSyntaxError {
  readonly _tag: 'ConfigSyntaxError';
  readonly format: 'yaml' | 'json';
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** Why a config text could not be read: bad syntax, or a config with problems. */
export type ConfigTextError = ConfigSyntaxError | ConfigError;

const syntaxError = (
  format: 'yaml' | 'json',
  line: number,
  column: number,
  reason: string,
): ConfigSyntaxError => ({
  _tag: 'ConfigSyntaxError',
  format,
  line,
  column,
  message: `line ${line}, column ${column}: ${reason}`,
});

/**
 * Parses YAML text into a plain value, without checking it as a config. Syntax errors carry the
 * line and column of the first problem.
 */
export const parseYaml = (text: string): E.Either<ConfigSyntaxError, unknown> => {
  try {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    const first = doc.errors[0];
    if (first !== undefined) {
      const pos = first.linePos?.[0];
      const reason = (first.message.split('\n')[0] ?? first.message).replace(
        / at line \d+, column \d+:?$/,
        '',
      );
      return E.left(syntaxError('yaml', pos?.line ?? 1, pos?.col ?? 1, reason));
    }
    return E.right(doc.toJS({ maxAliasCount: 100 }));
  } catch (error) {
    // toJS throws on alias bombs and similar; report them as syntax problems at the start.
    return E.left(
      syntaxError('yaml', 1, 1, error instanceof Error ? error.message : String(error)),
    );
  }
};

/** Line and column (1-based) of a character offset in `text`. */
const lineColumn = (text: string, offset: number): readonly [number, number] => {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return [line, offset - before.lastIndexOf('\n')];
};

/** Parses JSON text into a plain value, without checking it as a config. */
export const parseJson = (text: string): E.Either<ConfigSyntaxError, unknown> => {
  try {
    return E.right(JSON.parse(text) as unknown);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const match = /position (\d+)/.exec(reason);
    const [line, column] = lineColumn(text, match ? Number(match[1]) : text.length);
    return E.left(syntaxError('json', line, column, reason));
  }
};

/** A config as YAML text. `fromYamls(yamls(c))` gives `c` back. */
export const yamls = (config: Config): string => stringify(config, { lineWidth: 0 });

/** A config from YAML text: syntax errors with line and column, or every config problem. */
export const fromYamls = (text: string): E.Either<ConfigTextError, Config> =>
  E.flatMap(parseYaml(text), (value): E.Either<ConfigTextError, Config> => decodeConfig(value));

/** A config as JSON text (two-space indent). `fromJsons(jsons(c))` gives `c` back. */
export const jsons = (config: Config): string => `${JSON.stringify(config, null, 2)}\n`;

/** A config from JSON text: syntax errors with line and column, or every config problem. */
export const fromJsons = (text: string): E.Either<ConfigTextError, Config> =>
  E.flatMap(parseJson(text), (value): E.Either<ConfigTextError, Config> => decodeConfig(value));
