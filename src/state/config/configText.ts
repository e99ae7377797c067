/**
 * Text forms of a config with the spec's names: `yamls` / `fromYamls`, `jsons` / `fromJsons`.
 * Pure: reading and writing the files is the effect layer's job (`configFile.ts`).
 */
import * as E from 'fp-ts/lib/Either.js';
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  stringify,
  visit,
  type Document,
} from 'yaml';
import { MAX_DEPTH, shapeProblem } from '../Json.js';
import type { Config } from './Config.js';
import {
  decodeConfig,
  formatProblems,
  shapeConfigProblem,
  type ConfigError,
} from './decodeConfig.js';

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

/** Line and column (1-based) of a character offset in `text`. */
const lineColumn = (text: string, offset: number): readonly [number, number] => {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return [line, offset - before.lastIndexOf('\n')];
};

const tooDeep = `nested deeper than ${String(MAX_DEPTH)} levels of objects and arrays; flatten the value, or keep it in a file of its own`;

/**
 * Where YAML text nests too deeply to hand to the parser (whose recursion would overflow the
 * stack): a rough, linear count of block indentation levels, `- ` / `? ` markers and flow
 * brackets outside quotes, comments and block scalars. It may count high, so its limit is well
 * above {@link MAX_DEPTH}; the exact limit is checked on the parsed value.
 */
const yamlTooDeep = (text: string, limit: number): readonly [number, number] | undefined => {
  const lines = text.split('\n');
  const indents: number[] = [];
  let flow = 0;
  let quote: '"' | "'" | undefined;
  let blockScalar: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    let indent = 0;
    while (line[indent] === ' ') indent++;
    if (blockScalar !== undefined) {
      if (line.trim() === '' || indent > blockScalar) continue;
      blockScalar = undefined;
    }
    let j = indent;
    let depth = indents.length;
    if (quote === undefined && flow === 0) {
      if (line.trim() === '' || line[j] === '#') continue;
      while (indents.length > 0 && (indents[indents.length - 1] ?? 0) > indent) indents.pop();
      if (indents[indents.length - 1] !== indent) indents.push(indent);
      depth = indents.length;
      while (
        (line[j] === '-' || line[j] === '?') &&
        (line[j + 1] === ' ' || j + 1 === line.length)
      ) {
        depth++;
        j += 2;
        while (line[j] === ' ') j++;
      }
      if (depth > limit) return [i + 1, j + 1];
    }
    let prev = '';
    let spaced = true;
    for (; j < line.length; j++) {
      const c = line[j] ?? '';
      if (quote === '"') {
        if (c === '\\') j++;
        else if (c === '"') quote = undefined;
        continue;
      }
      if (quote === "'") {
        if (c === "'" && line[j + 1] === "'") j++;
        else if (c === "'") quote = undefined;
        continue;
      }
      if (c === ' ' || c === '\t' || c === '\r') {
        spaced = true;
        continue;
      }
      const start =
        prev === '' ||
        '[{,'.includes(prev) ||
        (flow > 0 && prev === ':') ||
        (spaced && ':-?'.includes(prev));
      if (c === '#' && spaced) break;
      if ((c === '"' || c === "'") && start) quote = c;
      else if ((c === '[' || c === '{') && (flow > 0 || start)) {
        flow++;
        if (depth + flow > limit) return [i + 1, j + 1];
      } else if ((c === ']' || c === '}') && flow > 0) flow--;
      else if ((c === '|' || c === '>') && flow === 0 && start) {
        blockScalar = indent;
        break;
      }
      prev = c;
      spaced = false;
    }
  }
  return undefined;
};

/** The YAML node at `path` (through aliases), or the deepest one found on the way. */
const nodeAt = (doc: Document, path: readonly string[]): unknown => {
  let node: unknown = doc.contents;
  for (const k of path) {
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    if (isMap(node)) {
      next = node.items.find((pair) => isScalar(pair.key) && String(pair.key.value) === k)?.value;
    } else if (isSeq(node)) {
      next = node.items[Number(k)];
    }
    if (next === undefined || next === null) return node;
    node = next;
  }
  return node;
};

const rangeStart = (node: unknown): number => {
  const range = (node as { range?: readonly number[] } | null)?.range;
  return range?.[0] ?? 0;
};

/** The first map key that repeats an earlier key of its map: the key, and both offsets. */
const duplicateKey = (doc: Document): readonly [string, number, number] | undefined => {
  let found: readonly [string, number, number] | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const raw: unknown = pair.key.value;
        const name =
          raw === null
            ? ''
            : typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean'
              ? String(raw)
              : JSON.stringify(raw);
        if (name === '<<' && pair.key.source === '<<') continue; // a merge key, applied by toJS
        const at = rangeStart(pair.key);
        const before = seen.get(name);
        if (before !== undefined) {
          found = [name, before, at];
          return visit.BREAK;
        }
        seen.set(name, at);
      }
      return undefined;
    },
  });
  return found;
};

/**
 * Parses YAML text into a plain value, without checking it as a config. Syntax errors carry the
 * line and column of the first problem. Merge keys (`<<: *base`) are applied. A key repeated in
 * one mapping, an alias inside itself (`x: &a [*a]`), or nesting deeper than {@link MAX_DEPTH}
 * levels are errors too, found in time linear in the text. Never throws.
 */
export const parseYaml = (text: string): E.Either<ConfigSyntaxError, unknown> => {
  try {
    const deep = yamlTooDeep(text, MAX_DEPTH * 4);
    if (deep !== undefined) return E.left(syntaxError('yaml', deep[0], deep[1], tooDeep));
    // uniqueKeys: false, as the yaml package's own check is quadratic in the keys of a map.
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false, merge: true });
    const first = doc.errors[0];
    if (first !== undefined) {
      const pos = first.linePos?.[0];
      const reason = (first.message.split('\n')[0] ?? first.message).replace(
        / at line \d+, column \d+:?$/,
        '',
      );
      return E.left(syntaxError('yaml', pos?.line ?? 1, pos?.col ?? 1, reason));
    }
    const dup = duplicateKey(doc);
    if (dup !== undefined) {
      const [line, column] = lineColumn(text, dup[2]);
      const [firstLine] = lineColumn(text, dup[1]);
      return E.left(
        syntaxError(
          'yaml',
          line,
          column,
          `Map keys must be unique; ${JSON.stringify(dup[0])} is already set on line ${String(firstLine)}, remove one of them`,
        ),
      );
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    const shape = shapeProblem(value);
    if (shape !== undefined) {
      const [line, column] = lineColumn(text, rangeStart(nodeAt(doc, shape.path)));
      return E.left(syntaxError('yaml', line, column, formatProblems([shapeConfigProblem(shape)])));
    }
    return E.right(value);
  } catch (error) {
    // toJS throws on alias bombs and similar; report them as syntax problems at the start.
    return E.left(
      syntaxError('yaml', 1, 1, error instanceof Error ? error.message : String(error)),
    );
  }
};

/** Where JSON text first opens a bracket deeper than `limit` (strings skipped), or `undefined`. */
const jsonTooDeep = (text: string, limit: number): number | undefined => {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
};

/**
 * Parses JSON text into a plain value, without checking it as a config. A leading UTF-8 byte
 * order mark is skipped (YAML skips it too); nesting deeper than {@link MAX_DEPTH} levels is an
 * error. Never throws.
 */
export const parseJson = (input: string): E.Either<ConfigSyntaxError, unknown> => {
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const match = /position (\d+)/.exec(reason);
    const [line, column] = lineColumn(text, match ? Number(match[1]) : text.length);
    return E.left(syntaxError('json', line, column, reason));
  }
  const deep = jsonTooDeep(text, MAX_DEPTH);
  if (deep !== undefined) {
    const [line, column] = lineColumn(text, deep);
    return E.left(syntaxError('json', line, column, tooDeep));
  }
  return E.right(value);
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
