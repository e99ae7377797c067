/**
 * The runner state: one plain, JSON-safe, deep-frozen record holding everything the spec's
 * `BaseRunner` keeps in attributes: config, identity (timestamp), mode, split, progress counters,
 * the results history with incremental best tracking, meters, per-split sizes, the parallel
 * context and the random generator's state.
 */
import * as E from 'fp-ts/lib/Either.js';
import type { Config } from '../config/Config.js';
import {
  decodeConfig,
  describeValue,
  type ConfigError,
  type ConfigProblem,
} from '../config/decodeConfig.js';
import { deepFreeze, isPlainObject } from '../Json.js';
import type { MetricValue } from './metric.js';
import { seedRng, type RngState } from './rng.js';
import {
  computeBest,
  emptyResults,
  persistResults,
  restoreResults,
  type BestTracking,
  type ResultEntry,
  type ResultsHistory,
} from './results.js';
import { isVec, toArray } from './vector.js';

export type { BestTracking, ResultEntry, ResultsHistory } from './results.js';

/**
 * Version of the state's persisted layout; a saved state with a newer version is refused.
 * 1: the results history saved in its in-memory trie layout, with best tracking.
 * 2: `results` a plain array `[{ index, result }]`, nothing derived saved ({@link persistState}).
 */
export const SCHEMA_VERSION = 2;

/** The spec's RunnerMode. */
export type RunnerMode = 'train' | 'eval' | 'inf';

/** Every valid {@link RunnerMode}. */
export const RUNNER_MODES: readonly RunnerMode[] = Object.freeze(['train', 'eval', 'inf']);

/** Progress counters: optimizer steps, iterations (batches) and epochs, with their values at start/resume. */
export interface Progress {
  readonly epoch: number;
  readonly step: number;
  readonly iter: number;
  readonly epochBegin: number;
  readonly stepBegin: number;
  readonly iterBegin: number;
}

/** The spec's AverageMeter: last value, running average, sum and count. */
export interface Meter {
  readonly val: MetricValue;
  readonly avg: MetricValue;
  readonly sum: MetricValue;
  readonly count: number;
}

/** What the loop registers about a split (datasets themselves live outside the state). */
export interface SplitInfo {
  readonly size: number;
  readonly batchSize: number;
}

/** The parallel context: process index among all and among local processes, and their number. */
export interface ParallelContext {
  readonly rank: number;
  readonly localRank: number;
  readonly worldSize: number;
}

/** The runner state. Plain JSON data, deep-frozen; changed only by reducers. */
export interface RunnerState {
  readonly schemaVersion: number;
  readonly config: Config;
  /** Creation time of the run (passed in: the core has no clock). */
  readonly timestamp: string;
  readonly mode: RunnerMode;
  readonly split: string | null;
  readonly progress: Progress;
  readonly results: ResultsHistory;
  readonly best: BestTracking;
  readonly meters: { readonly [name: string]: Meter };
  readonly splits: { readonly [split: string]: SplitInfo };
  readonly parallel: ParallelContext;
  /** The random generator's state, or `null` while no seed is set. */
  readonly rng: RngState | null;
}

/** What the core cannot know by itself: the time and the process's place in a parallel run. */
export interface StateContext {
  readonly timestamp?: string;
  readonly rank?: number;
  readonly localRank?: number;
  readonly worldSize?: number;
  /** A generator state to start from; by default one seeded from `config.seed`, if set. */
  readonly rng?: RngState;
}

/** Thrown by {@link createState} on a bad config; `error` holds every problem. */
export class ConfigDecodeError extends Error {
  override readonly name = 'ConfigDecodeError';
  constructor(readonly error: ConfigError) {
    super(`invalid config:\n${error.message}`);
  }
}

const ZERO_PROGRESS: Progress = {
  epoch: 0,
  step: 0,
  iter: 0,
  epochBegin: 0,
  stepBegin: 0,
  iterBegin: 0,
};

/** A fresh state for an already decoded config. */
export const initialState = (config: Config, context: StateContext = {}): RunnerState =>
  deepFreeze({
    schemaVersion: SCHEMA_VERSION,
    config,
    timestamp: context.timestamp ?? '',
    mode: 'train',
    split: null,
    progress: ZERO_PROGRESS,
    results: emptyResults(),
    best: { split: null, position: null },
    meters: {},
    splits: {},
    parallel: {
      rank: context.rank ?? 0,
      localRank: context.localRank ?? 0,
      worldSize: context.worldSize ?? 1,
    },
    rng: context.rng ?? (config.seed === undefined ? null : seedRng(config.seed)),
  });

/**
 * Decodes `input` as a config and returns a fresh state. Throws a {@link ConfigDecodeError}
 * carrying every problem when the config is invalid; use `decodeConfig` + {@link initialState}
 * for a path that never throws.
 *
 * @example
 * const state = createState({ epochEnd: 10, seed: 0 }, { timestamp: '2026-11-24T03-42-00' });
 */
export const createState = (input: unknown, context: StateContext = {}): RunnerState => {
  const decoded = decodeConfig(input);
  if (E.isLeft(decoded)) throw new ConfigDecodeError(decoded.left);
  return initialState(decoded.right, context);
};

// ---------------------------------------------------------------------------------------------
// Decoding a saved state.

/** A saved state that cannot be used: every problem, or a schema from a newer danling. */
export type StateError =
  | {
      readonly _tag: 'StateInvalid';
      readonly problems: readonly ConfigProblem[];
      readonly message: string;
    }
  | { readonly _tag: 'StateSchemaTooNew'; readonly version: number; readonly message: string };

const toArrayUnchecked = (vec: unknown): readonly ResultEntry[] =>
  toArray(vec as Parameters<typeof toArray<ResultEntry>>[0]);

const isCount = (u: unknown): u is number => Number.isSafeInteger(u) && (u as number) >= 0;
const isMetricValue = (u: unknown): u is MetricValue =>
  (typeof u === 'number' && Number.isFinite(u)) ||
  u === 'NaN' ||
  u === 'Infinity' ||
  u === '-Infinity';

/**
 * Checks a parsed JSON value as a {@link RunnerState} (a state saved by this or an older
 * danling) and returns it deep-frozen, its derived parts (index positions, best tracking)
 * rebuilt from the history so they are right whatever the file said. Never throws.
 *
 * @example
 * decodeState(JSON.parse(text)) // Right(state), or Left({ _tag: 'StateInvalid', message: 'progress.step: ...' })
 */
export const decodeState = (input: unknown): E.Either<StateError, RunnerState> => {
  const problems: ConfigProblem[] = [];
  const bad = (path: string, expected: string, got: unknown): void => {
    problems.push({ path, expected, got: describeValue(got) });
  };
  if (!isPlainObject(input)) {
    bad('(root)', 'a runner state object', input);
    return E.left(invalid(problems));
  }
  const version = input['schemaVersion'];
  if (!Number.isSafeInteger(version) || (version as number) < 1) {
    bad('schemaVersion', 'a positive integer', version);
    return E.left(invalid(problems));
  }
  if ((version as number) > SCHEMA_VERSION) {
    return E.left({
      _tag: 'StateSchemaTooNew',
      version: version as number,
      message: `schemaVersion: the state was saved by a newer danling (schema ${String(version)}, this one reads up to ${SCHEMA_VERSION}); upgrade danling to load it`,
    });
  }
  const config = decodeConfig(input['config']);
  if (E.isLeft(config)) {
    for (const p of config.left.problems) {
      problems.push({ ...p, path: p.path === '(root)' ? 'config' : `config.${p.path}` });
    }
  }
  if (typeof input['timestamp'] !== 'string') bad('timestamp', 'a string', input['timestamp']);
  if (!RUNNER_MODES.includes(input['mode'] as RunnerMode)) {
    bad('mode', `one of ${RUNNER_MODES.join(', ')}`, input['mode']);
  }
  const split = input['split'];
  if (split !== null && typeof split !== 'string') bad('split', 'a string or null', split);
  const progress = input['progress'];
  if (!isPlainObject(progress)) bad('progress', 'an object', progress);
  else {
    for (const k of Object.keys(ZERO_PROGRESS)) {
      if (!isCount(progress[k])) bad(`progress.${k}`, 'a non-negative integer', progress[k]);
    }
  }
  const results = input['results'];
  let entries: readonly ResultEntry[] | undefined;
  // Schema 2 files hold a plain array; schema 1 files (and a JSON copy of a live state) hold
  // the in-memory layout, a trie of entries beside derived fields: both are read.
  if (Array.isArray(results)) entries = results as readonly ResultEntry[];
  else if (isPlainObject(results) && isVec(results['entries'])) {
    entries = toArrayUnchecked(results['entries']);
  } else bad('results', 'an array of {index, result}', results);
  entries?.forEach((e: unknown, i) => {
    if (!isPlainObject(e) || !Number.isSafeInteger(e['index']) || !isPlainObject(e['result'])) {
      bad(`results.${i}`, 'a result {index: integer, result: object}', e);
    }
  });
  const meters = input['meters'];
  if (!isPlainObject(meters)) bad('meters', 'an object', meters);
  else {
    for (const [name, m] of Object.entries(meters)) {
      const ok =
        isPlainObject(m) &&
        isMetricValue(m['val']) &&
        isMetricValue(m['avg']) &&
        isMetricValue(m['sum']) &&
        isCount(m['count']);
      if (!ok) bad(`meters.${name}`, 'a meter {val, avg, sum, count}', m);
    }
  }
  const splits = input['splits'];
  if (!isPlainObject(splits)) bad('splits', 'an object', splits);
  else {
    for (const [name, s] of Object.entries(splits)) {
      if (!isPlainObject(s) || !isCount(s['size']) || !isCount(s['batchSize'])) {
        bad(`splits.${name}`, 'a split {size, batchSize}', s);
      }
    }
  }
  const parallel = input['parallel'];
  if (!isPlainObject(parallel)) bad('parallel', 'an object', parallel);
  else {
    for (const k of ['rank', 'localRank']) {
      if (!isCount(parallel[k])) bad(`parallel.${k}`, 'a non-negative integer', parallel[k]);
    }
    const ws = parallel['worldSize'];
    if (!isCount(ws) || ws === 0) bad('parallel.worldSize', 'a positive integer', ws);
  }
  const rng = input['rng'];
  if (rng !== null && !(Array.isArray(rng) && rng.every((x) => Number.isSafeInteger(x)))) {
    bad('rng', 'null or an array of integers', rng);
  }
  if (problems.length > 0 || E.isLeft(config)) return E.left(invalid(problems));
  const saved = input as unknown as RunnerState;
  const history = restoreResults(entries ?? []);
  return E.right(
    deepFreeze({
      ...saved,
      schemaVersion: SCHEMA_VERSION,
      config: config.right,
      results: history,
      best: computeBest(config.right, history),
    }),
  );
};

/** A state as files hold it (schema 2): `results` a plain array, best tracking left out. */
export type PersistedState = Omit<RunnerState, 'results' | 'best'> & {
  readonly results: readonly ResultEntry[];
};

/**
 * The persisted form of a state (what checkpoints, snapshots and `restore` actions hold): plain
 * JSON a reader in any language can use, with no caches. {@link decodeState} reads it back.
 * O(n) in the history's length.
 */
export const persistState = (state: RunnerState): PersistedState => {
  const { best: _best, results, ...rest } = state;
  return { ...rest, schemaVersion: SCHEMA_VERSION, results: persistResults(results) };
};

const invalid = (problems: readonly ConfigProblem[]): StateError => ({
  _tag: 'StateInvalid',
  problems,
  message: problems.map((p) => `${p.path}: expected ${p.expected}, got ${p.got}`).join('\n'),
});
