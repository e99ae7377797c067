/**
 * Decoding a config: validation of the known keys, defaults, and the derived runId. Every problem
 * is reported at once, one line each, dot path first.
 */
import * as E from 'fp-ts/lib/Either.js';
import {
  KNOWN_KEYS,
  MAX_NAME_BYTES,
  PositiveInt,
  configId,
  configName,
  utf8Length,
  type Config,
  type KeySpec,
} from './Config.js';
import {
  MAX_DEPTH,
  MAX_VALUES,
  isJson,
  isPlainObject,
  setOwn,
  shapeProblem,
  withoutNegativeZero,
  type Json,
  type JsonObject,
  type ShapeProblem,
} from '../Json.js';
import { experimentNamespace, uuid5 } from './uuid.js';

/** One problem in a config: where (dot path) and what. */
export interface ConfigProblem {
  readonly path: string;
  readonly expected: string;
  readonly got: string;
  /** What to do about it, when there is more to say than the expected value. */
  readonly fix?: string;
}

/** A config that could not be decoded: every problem, and a message with one line each. */
export interface ConfigError {
  readonly _tag: 'ConfigInvalid';
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
  problems
    .map(
      (p) =>
        `${p.path}: expected ${p.expected}, got ${p.got}${p.fix === undefined ? '' : `; ${p.fix}`}`,
    )
    .join('\n');

/** Builds a {@link ConfigError} from its problems. */
export const configError = (problems: readonly ConfigProblem[]): ConfigError => ({
  _tag: 'ConfigInvalid',
  problems,
  message: formatProblems(problems),
});

const joinPath = (base: string, k: string): string => (base === '' ? k : `${base}.${k}`);

const dotted = (keys: readonly string[]): string => (keys.length === 0 ? '(root)' : keys.join('.'));

/** The {@link ConfigProblem} for a cycle or an over-deep nesting found by `shapeProblem`. */
export const shapeConfigProblem = (shape: ShapeProblem): ConfigProblem =>
  shape.kind === 'cycle'
    ? {
        path: dotted(shape.path),
        expected: 'JSON data without cycles',
        got: `a reference back to ${dotted(shape.target ?? [])}`,
        fix: 'remove the cycle (a YAML alias used inside its own anchor makes one)',
      }
    : shape.kind === 'size'
      ? {
          path: dotted(shape.path),
          expected: `at most ${String(MAX_VALUES)} values (a shared value counts each time it is used)`,
          got: 'more',
          fix: 'use fewer aliases of large values, or keep the data in a file of its own',
        }
      : {
          path: dotted(shape.path),
          expected: `at most ${String(MAX_DEPTH)} levels of nested objects and arrays`,
          got: 'deeper nesting',
          fix: 'flatten the value, or keep it in a file of its own',
        };

/** Keys whose value becomes one folder name under `projectRoot` or the run dir. */
export const NAME_KEYS: Readonly<Record<string, string>> = {
  name: 'dir',
  experimentName: 'dir',
  runName: 'dir',
  experimentId: 'dir',
  runId: 'dir',
  checkpointDirName: 'checkpointDir',
};

/**
 * Why `value` cannot be one folder name: it holds `/`, `\\` or NUL, is `.` or `..`, or is over
 * {@link MAX_NAME_BYTES} bytes. `undefined` when it can.
 */
const folderNameProblem = (key: string, value: string): ConfigProblem | undefined => {
  const other = NAME_KEYS[key] ?? 'dir';
  if (/[/\\\0]/.test(value) || value === '.' || value === '..') {
    return {
      path: key,
      expected: 'a single folder name without "/", "\\", ".." or NUL',
      got: describeValue(value),
      fix: `use ${other} to choose another folder`,
    };
  }
  const bytes = utf8Length(value);
  if (bytes > MAX_NAME_BYTES) {
    return {
      path: key,
      expected: `a folder name of at most ${String(MAX_NAME_BYTES)} bytes`,
      got: `${String(bytes)} bytes`,
      fix: `shorten it, or use ${other} to choose the folder`,
    };
  }
  return undefined;
};

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
  'projectRoot',
  'dir',
  'checkpointDir',
  'logPath',
  'logInterval',
  'saveInterval',
  'saveSteps',
  'evalSteps',
  'restartCount',
  'maxToKeep',
  'keepBest',
  'keepEvery',
  'tensorboard',
  'logLevel',
  'logFormat',
  'log',
  'backend',
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
 * Optimal-string-alignment (Damerau-Levenshtein) distance between `a` and `b`, or `max` when it is
 * at least `max`: only the band of cells within `max` of the diagonal is computed, and the walk
 * stops once a whole row reaches `max`, so a bounded call costs O(max * length).
 */
export const editDistance = (a: string, b: string, max = Number.POSITIVE_INFINITY): number => {
  if (Math.abs(a.length - b.length) >= max) return max;
  const cap = Math.min(max, a.length + b.length);
  const cols = b.length + 1;
  const d = new Uint32Array((a.length + 1) * cols).fill(cap);
  for (let j = 0; j < cols && j < cap; j++) d[j] = j;
  const at = (i: number, j: number): number => d[i * cols + j] ?? cap;
  for (let i = 1; i <= a.length; i++) {
    if (i < cap) d[i * cols] = i;
    let rowMin = at(i, 0);
    const hi = Math.min(b.length, i + cap);
    for (let j = Math.max(1, i - cap); j <= hi; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, at(i - 2, j - 2) + 1);
      }
      v = Math.min(v, cap);
      d[i * cols + j] = v;
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin >= cap) return Math.min(max, cap);
  }
  return Math.min(at(a.length, b.length), max);
};

/** `score_name` -> `scoreName`, `epoch-end` -> `epochEnd`. */
export const camelCase = (name: string): string =>
  name.replace(/[_-]+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());

/** Bit `c & 31` set for every character code `c` of `s`: a cheap, lossy set of its characters. */
const charMask = (s: string): number => {
  let mask = 0;
  for (let i = 0; i < s.length; i++) mask |= 1 << (s.charCodeAt(i) & 31);
  return mask;
};

/** How many characters of `s` are surely absent from the string of `mask`. */
const absent = (s: string, mask: number): number => {
  let n = 0;
  for (let i = 0; i < s.length; i++) if ((mask & (1 << (s.charCodeAt(i) & 31))) === 0) n++;
  return n;
};

/** Known keys prepared for {@link suggestKey}: lower-cased, with their character masks. */
interface KnownNames {
  readonly names: readonly string[];
  readonly set: ReadonlySet<string>;
  readonly lower: readonly string[];
  readonly masks: readonly number[];
}

const prepareNames = (known: readonly string[]): KnownNames => {
  const lower = known.map((k) => k.toLowerCase());
  return { names: known, set: new Set(known), lower, masks: lower.map(charMask) };
};

const suggestFrom = (name: string, known: KnownNames): string | undefined => {
  const camel = camelCase(name);
  if (camel !== name && known.set.has(camel)) return camel;
  let best: string | undefined;
  let bestDistance = name.length <= 4 ? 2 : 3;
  const lower = name.toLowerCase();
  const mask = charMask(lower);
  known.names.forEach((k, i) => {
    const kLower = known.lower[i] ?? '';
    // Cheap lower bounds first (the difference in length; characters one string lacks), so most
    // unknown keys never reach the O(n * max) edit distance: decoding stays fast per key.
    if (Math.abs(k.length - name.length) >= bestDistance) return;
    if (absent(lower, known.masks[i] ?? 0) >= bestDistance) return;
    if (absent(kLower, mask) >= bestDistance) return;
    const dist = editDistance(lower, kLower, bestDistance);
    if (dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  });
  return best;
};

/**
 * The known key an unknown `name` probably meant: its camelCase spelling, or the closest known
 * key within two edits (one for names of four characters or fewer, so `lr` is not taken for
 * `log`), case-insensitive. `undefined` when nothing is close.
 */
export const suggestKey = (name: string, known: readonly string[]): string | undefined =>
  suggestFrom(name, prepareNames(known));

/** A config warning: a key kept as given that looks like a typo of a known key. */
export interface ConfigWarning {
  readonly _tag: 'ConfigKeyUnknown';
  readonly path: string;
  readonly suggestion: string;
  readonly message: string;
}

/** A decoded config with the warnings found on the way. */
export interface DecodedConfig {
  readonly config: Config;
  readonly warnings: readonly ConfigWarning[];
}

const KNOWN_NAMES = prepareNames(Object.keys(KNOWN_KEYS));
const DATALOADER_NAMES = prepareNames(['batchSize']);

const warnFor = (path: string, name: string, known: KnownNames): ConfigWarning[] => {
  if (known.set.has(name)) return [];
  const suggestion = suggestFrom(name, known);
  if (suggestion === undefined) return [];
  const prefix = path.slice(0, path.length - name.length);
  return [
    {
      _tag: 'ConfigKeyUnknown',
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
 * // Right({ config: {..., score_name: 'acc'}, warnings: [{ _tag: 'ConfigKeyUnknown', path: 'score_name', suggestion: 'scoreName', ... }] })
 */
export const decodeConfigWithWarnings = (input: unknown): E.Either<ConfigError, DecodedConfig> => {
  const shape = shapeProblem(input);
  if (shape !== undefined) return E.left(configError([shapeConfigProblem(shape)]));
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
      const nameProblem =
        Object.hasOwn(NAME_KEYS, k) && typeof value === 'string' && value !== ''
          ? folderNameProblem(k, value)
          : undefined;
      problems.push(
        nameProblem ?? { path: k, expected: spec.codec.name, got: describeValue(value) },
      );
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
  const config = out as Config;
  if (config.dir === undefined) {
    // The run dir is projectRoot/<name>-<id>/timestamp: that one folder name must fit too.
    const folder = `${configName(config)}-${configId(config)}`;
    const bytes = utf8Length(folder);
    if (bytes > MAX_NAME_BYTES) {
      const key = config.name === undefined ? 'experimentName' : 'name';
      return E.left(
        configError([
          {
            path: key,
            expected: `a run folder name (name-id) of at most ${String(MAX_NAME_BYTES)} bytes`,
            got: `${String(bytes)} bytes`,
            fix: `shorten ${config.name === undefined ? 'experimentName or runName' : 'name'}, or use dir to choose the folder`,
          },
        ]),
      );
    }
  }
  return E.right({ config, warnings });
};

/**
 * Decodes anything into a {@link Config}: known keys are checked and defaulted, the user's keys
 * kept as given, and `runId` derived when absent. Never throws. Every problem is reported at
 * once; see {@link decodeConfigWithWarnings} for the typo warnings.
 *
 * @example
 * decodeConfig({ accumSteps: 0 })
 * // Left({ _tag: 'ConfigInvalid', message: 'accumSteps: expected a positive integer, got 0', ... })
 */
export const decodeConfig = (input: unknown): E.Either<ConfigError, Config> =>
  E.map((decoded: DecodedConfig) => decoded.config)(decodeConfigWithWarnings(input));
