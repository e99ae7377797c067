/**
 * The results history and everything derived from it: the history's types, the score of a
 * result, the score direction, best tracking and the persisted (plain array) form. Pure helpers
 * shared by the reducers (incremental best tracking) and the selectors.
 */
import type { Config } from '../config/Config.js';
import { deepFreeze, isPlainObject, type JsonObject } from '../Json.js';
import { decodeMetric } from './metric.js';
import {
  emptyIntMap,
  emptyVec,
  fromArray,
  get,
  intMapSet,
  push,
  toArray,
  type IntMap,
  type Vec,
} from './vector.js';

/** One result of the history: its index (usually the epoch) and `{ split: { metric: value } }`. */
export interface ResultEntry extends JsonObject {
  readonly index: number;
  readonly result: JsonObject;
}

/**
 * The results history, insertion-ordered: a persistent vector of entries and a map from index
 * to position, so appending and looking up are O(log32 n). This is the in-memory layout only:
 * files hold {@link persistResults}'s plain array. Read it with the `results` selector.
 */
export interface ResultsHistory {
  readonly entries: Vec<ResultEntry>;
  readonly positions: IntMap;
}

/**
 * Incremental best tracking: the score split in use and the position of the best entry (the
 * earliest among equal scores: a later tie is never best), or `null` when no entry has a valid
 * score. Derived from the history; never persisted.
 */
export interface BestTracking {
  readonly split: string | null;
  readonly position: number | null;
}

/** An empty history. */
export const emptyResults = (): ResultsHistory => ({
  entries: emptyVec<ResultEntry>(),
  positions: emptyIntMap,
});

/** `history` with `entry` appended for an index it does not hold yet. O(log32 n). */
export const appendEntry = (history: ResultsHistory, entry: ResultEntry): ResultsHistory => ({
  entries: push(history.entries, entry),
  positions: intMapSet(history.positions, entry.index, history.entries.size),
});

/** The history as files hold it: `[{ index, result }]`, insertion-ordered. O(n). */
export const persistResults = (history: ResultsHistory): readonly ResultEntry[] =>
  toArray(history.entries);

/** The in-memory history of a persisted one (entries assumed checked; they are deep-frozen). O(n). */
export const restoreResults = (entries: readonly ResultEntry[]): ResultsHistory => {
  const vec = fromArray(entries.map((e) => deepFreeze(e)));
  return { entries: vec, positions: computePositions({ entries: vec, positions: emptyIntMap }) };
};

/** Keys of a result that are bookkeeping, never a split (the spec's IGNORED_SET_NAMES). */
export const IGNORED_SPLITS: ReadonlySet<string> = new Set(['index', 'epoch', 'step', 'iter']);

/** Whether the best score is the smallest (`min`) or the largest (`max`). */
export type ScoreMode = 'min' | 'max';

/**
 * Metric names that `scoreMode: auto` minimises (compared lower-cased, after the last `/` or
 * `.`), besides every name ending in `loss` or `error`.
 */
export const MINIMISED_METRICS: ReadonlySet<string> = new Set([
  'loss',
  'mae',
  'mse',
  'rmse',
  'msle',
  'rmsle',
  'mape',
  'smape',
  'error',
  'err',
  'perplexity',
  'ppl',
  'nll',
  'wer',
  'cer',
  'ter',
  'fid',
  'eer',
  'bpc',
  'bpd',
]);

/** The direction `scoreMode: auto` infers from a metric name (see {@link MINIMISED_METRICS}). */
export const inferScoreMode = (scoreName: string): ScoreMode => {
  const base = (scoreName.split(/[/.]/).at(-1) ?? scoreName).toLowerCase();
  const minimised =
    MINIMISED_METRICS.has(base) ||
    base.endsWith('loss') ||
    base.endsWith('error') ||
    base.endsWith('_err');
  return minimised ? 'min' : 'max';
};

/**
 * The score direction: `config.scoreMode` when it is `min` or `max`, else inferred from the
 * metric name (`loss`, names ending in `loss` or `error`, and the error metrics of
 * {@link MINIMISED_METRICS} are minimised; everything else is maximised). The spec minimised
 * `loss` alone, so `mae` was maximised and the worst epoch kept as best.
 */
export const scoreModeOf = (config: Config): ScoreMode =>
  config.scoreMode === 'min' || config.scoreMode === 'max'
    ? config.scoreMode
    : inferScoreMode(config.scoreName);

/**
 * The split whose metric is the score, as the spec picks it from the latest result:
 * `config.scoreSplit`, else `val`, else `validate`, else the second split, else the only one
 * (keys `index`, `epoch`, `step` and `iter` are not splits). `null` when there is none.
 */
export const resolveScoreSplit = (
  config: Config,
  latest: JsonObject | undefined,
): string | null => {
  if (config.scoreSplit !== undefined) return config.scoreSplit;
  if (latest === undefined) return null;
  const splits = Object.keys(latest).filter((k) => !IGNORED_SPLITS.has(k));
  if (splits.includes('val')) return 'val';
  if (splits.includes('validate')) return 'validate';
  return splits[1] ?? splits[0] ?? null;
};

/**
 * The score of a result: `result[split][scoreName]` as a number, or `undefined` when it is
 * missing, not a number, or NaN (such a result never becomes best). Infinities are scores.
 */
export const scoreOf = (
  result: JsonObject,
  split: string | null,
  scoreName: string,
): number | undefined => {
  if (split === null) return undefined;
  const section = result[split];
  if (!isPlainObject(section)) return undefined;
  const x = decodeMetric(section[scoreName]);
  return x === undefined || Number.isNaN(x) ? undefined : x;
};

/** Whether score `a` is strictly better than `b` under `mode`. */
export const isBetter = (a: number, b: number, mode: ScoreMode): boolean =>
  mode === 'min' ? a < b : a > b;

/**
 * Whether score `a` improves on `b` by more than `minDelta` under `mode` (Keras' `min_delta`):
 * with `minDelta` 0 this is {@link isBetter}.
 */
export const improves = (a: number, b: number, mode: ScoreMode, minDelta: number): boolean =>
  mode === 'min' ? a < b - minDelta : a > b + minDelta;

/** The latest entry of the history, or `undefined` when it is empty. */
export const latestEntry = (history: ResultsHistory): ResultEntry | undefined =>
  get(history.entries, history.entries.size - 1);

/**
 * Best tracking computed from scratch over the whole history: O(n). The reducers call it only
 * when the score split or score name changes, or when the best entry gets worse.
 */
export const computeBest = (config: Config, history: ResultsHistory): BestTracking => {
  const split = resolveScoreSplit(config, latestEntry(history)?.result);
  const mode = scoreModeOf(config);
  let position: number | null = null;
  let best = 0;
  toArray(history.entries).forEach((entry, i) => {
    const s = scoreOf(entry.result, split, config.scoreName);
    if (s !== undefined && (position === null || isBetter(s, best, mode))) {
      position = i;
      best = s;
    }
  });
  return { split, position };
};

/** The index -> position map of a history, rebuilt from its entries. */
export const computePositions = (history: ResultsHistory): IntMap =>
  toArray(history.entries).reduce<IntMap>((m, e, i) => intMapSet(m, e.index, i), emptyIntMap);
