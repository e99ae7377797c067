/**
 * Decoding a config: validation of the known keys, defaults, and the derived runId. Every problem
 * is reported at once, one line each, dot path first.
 */
import * as E from 'fp-ts/lib/Either.js';
import { KNOWN_KEYS, PositiveInt, type Config, type KeySpec } from './Config.js';
import { isJson, isPlainObject, type Json, type JsonObject } from './Json.js';
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
  'logInterval',
  'saveInterval',
  'tensorboard',
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

/**
 * Decodes anything into a {@link Config}: known keys are checked and defaulted, the user's keys
 * kept as given, and `runId` derived when absent. Never throws.
 *
 * @example
 * decodeConfig({ accumSteps: 0 })
 * // Left({ _tag: 'ConfigError', message: 'accumSteps: expected a positive integer, got 0', ... })
 */
export const decodeConfig = (input: unknown): E.Either<ConfigError, Config> => {
  if (!isPlainObject(input)) {
    return E.left(
      configError([
        { path: '(root)', expected: 'an object of config keys', got: describeValue(input) },
      ]),
    );
  }
  const problems: ConfigProblem[] = [];
  const known = KNOWN_KEYS as Record<string, KeySpec>;
  const out: Record<string, Json> = {};
  for (const [k, spec] of Object.entries(known)) {
    const value = input[k];
    if (value === undefined) {
      if (spec.default !== undefined) out[k] = spec.default;
    } else if (spec.codec.is(value)) {
      out[k] = value as Json;
    } else {
      problems.push({ path: k, expected: spec.codec.name, got: describeValue(value) });
    }
  }
  for (const [k, value] of Object.entries(input)) {
    if (k in known) continue;
    if (value === undefined) continue;
    if (k === 'dataloader') {
      if (!isPlainObject(value)) {
        problems.push({ path: k, expected: 'an object', got: describeValue(value) });
        continue;
      }
      const batchSize = value['batchSize'];
      if (batchSize !== undefined && !PositiveInt.is(batchSize)) {
        problems.push({
          path: 'dataloader.batchSize',
          expected: PositiveInt.name,
          got: describeValue(batchSize),
        });
      }
    }
    const before = problems.length;
    nonJsonProblems(value, k, problems);
    if (problems.length === before) out[k] = value as Json;
  }
  if (problems.length > 0) return E.left(configError(problems));
  out['runId'] ??= deriveRunId(out);
  return E.right(out as Config);
};
