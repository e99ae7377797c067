/**
 * Scores: the one metric that ranks results. Pure helpers shared by the reducers (incremental
 * best tracking) and the selectors.
 */
import type { Config } from '../config/Config.js';
import { isPlainObject, type JsonObject } from '../Json.js';
import { decodeMetric } from './metric.js';
import type { BestTracking, ResultEntry, ResultsHistory } from './RunnerState.js';
import { emptyIntMap, get, intMapSet, toArray, type IntMap } from './vector.js';

/** Keys of a result that are bookkeeping, never a split (the spec's IGNORED_SET_NAMES). */
export const IGNORED_SPLITS: ReadonlySet<string> = new Set(['index', 'epoch', 'step', 'iter']);

/** Whether the best score is the smallest (`min`, for `loss`) or the largest (`max`). */
export type ScoreMode = 'min' | 'max';

/** The spec's best_fn: `min` when the score is `loss`, `max` otherwise. */
export const scoreModeOf = (config: Config): ScoreMode =>
  config.scoreName === 'loss' ? 'min' : 'max';

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
