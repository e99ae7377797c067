/**
 * Decoding a config: validation of the known keys, defaults, and the derived runId. Every problem
 * is reported at once, one line each, dot path first.
 */
import * as E from 'fp-ts/lib/Either.js';
import { KNOWN_KEYS, PositiveInt, type Config, type KeySpec } from './Config.js';
import {
  isJson,
  isPlainObject,
  setOwn,
  withoutNegativeZero,
  type Json,
  type JsonObject,
} from '../Json.js';
import { experimentNamespace, uuid5 } from './uuid.js';

/** One problem in a config: where (dot path) and what. */
export interface ConfigProblem {
  readonly path: string;
  readonly expected: string;
  readonly got: string;
}

/** A config that could not be decoded: every problem, and a message with one line each. */
export interface ConfigError {
  readonly _tag: 'ConfigError';
  readonly problems: readonly ConfigProblem[];
  readonly message: string;
}

/** Describes a value for an error message: `0`, `"fast"`, `null`, `an array`, `an object`. */
export const describeValue = (value: unknown): string => {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean') return String(value);
  if (isPlainObject(value)) return 'an object';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${String(value)}n`;
  if (typeof value === 'symbol') return 'a symbol';
  const ctor: unknown = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof ctor === 'string' && ctor !== '' ? `a ${ctor}` : 'an object';
};

/** Formats problems as the lines of a {@link ConfigError} message. */
export const formatProblems = (problems: readonly ConfigProblem[]): string =>
  problems.map((p) => `${p.path}: expected ${p.expected}, got ${p.got}`).join('\n');

/** Builds a {@link ConfigError} from its problems. */
export const configError = (problems: readonly ConfigProblem[]): ConfigError => ({
  _tag: 'ConfigError',
  problems,
  message: formatProblems(problems),
});

const joinPath = (base: string, k: string): string => (base === '' ? k : `${base}.${k}`);

/** Collects the paths of values that are not JSON (NaN, functions, class instances, ...). */
const nonJsonProblems = (value: unknown, path: string, out: ConfigProblem[]): void => {
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) nonJsonProblems(v, joinPath(path, k), out);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      nonJsonProblems(v, joinPath(path, String(i)), out);
    });
  } else if (!isJson(value)) {
    out.push({ path, expected: 'a JSON value', got: describeValue(value) });
  }
};

/**
 * Keys that say how a run is carried out, not what it computes: they do not change the runId.
 */
export const BOOKKEEPING_KEYS: ReadonlySet<string> = new Set([
  'runId',
  'timestamp',
  'checkpoint',
  'autoResume',
  'scoreSplit',
  'scoreMode',
  'minDelta',
  'logInterval',
  'saveInterval',
  'maxToKeep',
  'tensorboard',
  'logLevel',
  'log',
  'experimentId',
  'epoch',
  'step',
  'iter',
  'epochBegin',
  'stepBegin',
  'iterBegin',
]);

/** JSON with object keys sorted at every level: equal configs give equal strings. */
export const canonicalJson = (value: Json): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as JsonObject;
    const keys = Object.keys(obj).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k] ?? null)}`).join(',')}}`;
  }
  return JSON.stringify(value);
};

/**
 * The runId a config gets when none is given: a UUIDv5 of its canonical JSON without the
 * {@link BOOKKEEPING_KEYS}, in the namespace of its experiment id. Same config, same runId.
 */
export const deriveRunId = (config: JsonObject): string => {
  const content = Object.fromEntries(
    Object.entries(config).filter(([k]) => !BOOKKEEPING_KEYS.has(k)),
  );
  const experimentId = typeof config['experimentId'] === 'string' ? config['experimentId'] : '';
  return uuid5(experimentNamespace(experimentId), canonicalJson(content));
};

/** Optimal-string-alignment (Damerau-Levenshtein) distance between `a` and `b`. */
export const editDistance = (a: string, b: string): number => {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = Array.from({ length: rows * cols }, (_, k) =>
    k < cols ? k : k % cols === 0 ? k / cols : 0,
  );
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, at(i - 2, j - 2) + 1);
      }
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
};

/** `score_name` -> `scoreName`, `epoch-end` -> `epochEnd`. */
export const camelCase = (name: string): string =>
  name.replace(/[_-]+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());

/**
 * The known key an unknown `name` probably meant: its camelCase spelling, or the closest known
 * key within two edits (one for names of four characters or fewer, so `lr` is not taken for
 * `log`), case-insensitive. `undefined` when nothing is close.
 */
export const suggestKey = (name: string, known: readonly string[]): string | undefined => {
  const camel = camelCase(name);
  if (camel !== name && known.includes(camel)) return camel;
  let best: string | undefined;
  let bestDistance = name.length <= 4 ? 2 : 3;
  for (const k of known) {
    const dist = editDistance(name.toLowerCase(), k.toLowerCase());
    if (dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  }
  return best;
};

/** A config warning: a key kept as given that looks like a typo of a known key. */
export interface ConfigWarning {
  readonly path: string;
  readonly suggestion: string;
  readonly message: string;
}

/** A decoded config with the warnings found on the way. */
export interface DecodedConfig {
  readonly config: Config;
  readonly warnings: readonly ConfigWarning[];
}

const KNOWN_NAMES: readonly string[] = Object.keys(KNOWN_KEYS);
const DATALOADER_NAMES: readonly string[] = ['batchSize'];

const warnFor = (path: string, name: string, known: readonly string[]): ConfigWarning[] => {
  if (known.includes(name)) return [];
  const suggestion = suggestKey(name, known);
  if (suggestion === undefined) return [];
  const prefix = path.slice(0, path.length - name.length);
  return [
    {
      path,
      suggestion: `${prefix}${suggestion}`,
      message: `${path}: unknown key kept as given; did you mean ${prefix}${suggestion}?`,
    },
  ];
};

/**
 * Decodes anything into a {@link Config} and reports likely typos: known keys are checked and
 * defaulted, the user's keys kept as given, and `runId` derived when absent. A user key that is
 * one or two edits from a known key, or its snake_case spelling (`score_name`), is kept and
 * produces a warning naming the known key. `null` on a known key means "unset": the default
 * applies (YAML writes an empty value as `null`). Never throws.
 *
 * @example
 * decodeConfigWithWarnings({ score_name: 'acc' })
 * // Right({ config: {..., score_name: 'acc'}, warnings: [{ path: 'score_name', suggestion: 'scoreName', ... }] })
 */
export const decodeConfigWithWarnings = (input: unknown): E.Either<ConfigError, DecodedConfig> => {
  input = withoutNegativeZero(input);
  if (!isPlainObject(input)) {
    return E.left(
      configError([
        { path: '(root)', expected: 'an object of config keys', got: describeValue(input) },
      ]),
    );
  }
  const problems: ConfigProblem[] = [];
  const warnings: ConfigWarning[] = [];
  const known = KNOWN_KEYS as Record<string, KeySpec>;
  const out: Record<string, Json> = {};
  for (const [k, spec] of Object.entries(known)) {
    const value = input[k];
    if (value === undefined || value === null) {
      if (spec.default !== undefined) setOwn(out, k, spec.default);
    } else if (spec.codec.is(value)) {
      setOwn(out, k, value as Json);
    } else {
      problems.push({ path: k, expected: spec.codec.name, got: describeValue(value) });
    }
  }
  for (const [k, value] of Object.entries(input)) {
    if (Object.hasOwn(known, k) || value === undefined) continue;
    warnings.push(...warnFor(k, k, KNOWN_NAMES));
    if (k === 'dataloader') {
      if (!isPlainObject(value)) {
        problems.push({ path: k, expected: 'an object', got: describeValue(value) });
        continue;
      }
      const batchSize = value['batchSize'];
      if (batchSize !== undefined && batchSize !== null && !PositiveInt.is(batchSize)) {
        problems.push({
          path: 'dataloader.batchSize',
          expected: PositiveInt.name,
          got: describeValue(batchSize),
        });
      }
      for (const dk of Object.keys(value)) {
        warnings.push(...warnFor(`dataloader.${dk}`, dk, DATALOADER_NAMES));
      }
    }
    const before = problems.length;
    nonJsonProblems(value, k, problems);
    if (problems.length === before) setOwn(out, k, value as Json);
  }
  if (problems.length > 0) return E.left(configError(problems));
  out['runId'] ??= deriveRunId(out);
  return E.right({ config: out as Config, warnings });
};

/**
 * Decodes anything into a {@link Config}: known keys are checked and defaulted, the user's keys
 * kept as given, and `runId` derived when absent. Never throws. Every problem is reported at
 * once; see {@link decodeConfigWithWarnings} for the typo warnings.
 *
 * @example
 * decodeConfig({ accumSteps: 0 })
 * // Left({ _tag: 'ConfigError', message: 'accumSteps: expected a positive integer, got 0', ... })
 */
export const decodeConfig = (input: unknown): E.Either<ConfigError, Config> =>
  E.map((decoded: DecodedConfig) => decoded.config)(decodeConfigWithWarnings(input));
