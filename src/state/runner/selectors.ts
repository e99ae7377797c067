/**
 * Selectors: pure `(state) => value` functions, one for every property of the spec's
 * `BaseRunner`, camelCased. Best and latest selectors are O(log32 n) in the history's length.
 */
import { configId, configName, type Config } from '../config/Config.js';
import { setOwn, type JsonObject } from '../Json.js';
import { getIn } from '../config/merge.js';
import { decodeMetric, decodeResult } from './metric.js';
import {
  persistState,
  type Meter,
  type PersistedState,
  type ResultEntry,
  type RunnerMode,
  type RunnerState,
} from './RunnerState.js';
import { improves, latestEntry, scoreModeOf, scoreOf, type ScoreMode } from './results.js';
import { experimentNamespace, parseUuid, uuid5 } from '../config/uuid.js';
import { get, toArray } from './vector.js';

/**
 * A selector asked for something the state cannot give (no end set, no batch size known):
 * a programmer error with a stable `code` and a message that says what to set.
 */
export class RunnerStateError extends Error {
  override readonly name = 'RunnerStateError';
  constructor(
    readonly code: 'NoEnd' | 'NoBatchSize' | 'NoSplits' | 'NoScaleBase',
    message: string,
  ) {
    super(message);
  }
}

// --- identity ----------------------------------------------------------------------------------

/** The run's config. */
export const config = (state: RunnerState): Config => state.config;
/** Creation time of the run. */
export const timestamp = (state: RunnerState): string => state.timestamp;
/** `config.name`, else `experimentName-runName`. */
export const name = (state: RunnerState): string => configName(state.config);
/** The first 8 characters of experimentId, then of runId. */
export const id = (state: RunnerState): string => configId(state.config);

/**
 * The run's UUID: a UUIDv5 of {@link id} in the run's namespace (the runId when it is a UUID, as
 * derived runIds are; else a UUIDv5 of the runId in the experiment's namespace).
 */
export const uuid = (state: RunnerState): string => {
  const { runId, experimentId } = state.config;
  const ns = parseUuid(runId) ?? parseUuid(uuid5(experimentNamespace(experimentId), runId));
  return uuid5(ns ?? experimentNamespace(experimentId), id(state));
};

// --- core ---------------------------------------------------------------------------------------

/** The running mode. */
export const mode = (state: RunnerState): RunnerMode => state.mode;
/** The current split, or `null`. */
export const split = (state: RunnerState): string | null => state.split;
/** The current epoch. */
export const epoch = (state: RunnerState): number => state.progress.epoch;
/** Optimizer steps taken. */
export const step = (state: RunnerState): number => state.progress.step;
/** Iterations (batches) run: steps x accumSteps. */
export const iter = (state: RunnerState): number => state.progress.iter;

// --- data ---------------------------------------------------------------------------------------

/**
 * Samples per batch of the current split when it is registered, else `config.dataloader.batchSize`.
 * Throws a {@link RunnerStateError} (`NoBatchSize`) when neither is known.
 */
export const batchSize = (state: RunnerState): number => {
  const current = state.split === null ? undefined : state.splits[state.split];
  if (current !== undefined) return current.batchSize;
  const configured = getIn(state.config as JsonObject, 'dataloader.batchSize');
  if (typeof configured === 'number') return configured;
  throw new RunnerStateError(
    'NoBatchSize',
    'batchSize is unknown: set config.dataloader.batchSize or registerSplit the current split',
  );
};

/** `batchSize x worldSize x accumSteps`. */
export const batchSizeEquivalent = (state: RunnerState): number =>
  batchSize(state) * worldSize(state) * accumSteps(state);

/** Iterations accumulated into one optimizer step (`config.accumSteps`, default 1). */
export const accumSteps = (state: RunnerState): number => state.config.accumSteps;

// --- progress -----------------------------------------------------------------------------------

/** Epochs this run has left to train from where it began: `epochEnd - epochBegin`. */
export const totalEpochs = (state: RunnerState): number => {
  const end = state.config.epochEnd;
  if (end === undefined) {
    throw new RunnerStateError('NoEnd', 'totalEpochs is unknown: set config.epochEnd');
  }
  return end - state.progress.epochBegin;
};

/** Iterations per epoch of the training split: `ceil(size / batchSize / worldSize)`. */
const itersPerEpoch = (state: RunnerState): number => {
  const info = state.splits['train'] ?? Object.values(state.splits)[0];
  if (info === undefined) {
    throw new RunnerStateError(
      'NoSplits',
      'steps per epoch are unknown: registerSplit the training split (its size and batch size) or set config.stepEnd',
    );
  }
  return Math.ceil(info.size / info.batchSize / state.parallel.worldSize);
};

/**
 * Steps this run has left from where it began: `stepEnd - stepBegin` when `stepEnd` is set, else
 * `totalEpochs x ceil(size / batchSize / worldSize)` of the training split (the spec's rule).
 */
export const totalSteps = (state: RunnerState): number => {
  const end = state.config.stepEnd;
  if (end !== undefined) return end - state.progress.stepBegin;
  if (state.config.epochEnd === undefined) {
    throw new RunnerStateError(
      'NoEnd',
      'totalSteps is unknown: set config.stepEnd or config.epochEnd',
    );
  }
  return totalEpochs(state) * itersPerEpoch(state);
};

/** `ceil(totalSteps / accumSteps)`: optimizer steps left. */
export const trainableSteps = (state: RunnerState): number =>
  Math.ceil(totalSteps(state) / accumSteps(state));

/**
 * How far the whole run is, in [0, 1]: `step / stepEnd` when `stepEnd` is set, else
 * `iter / (epochEnd x iterations per epoch)`. Unlike the spec (absolute counter over the steps
 * left), this stays right after a resume. Throws a {@link RunnerStateError} (`NoEnd`) when no end
 * is set, instead of the spec's unnamed failure.
 */
export const progress = (state: RunnerState): number => {
  const { stepEnd, epochEnd } = state.config;
  if (stepEnd !== undefined) return Math.min(1, state.progress.step / stepEnd);
  if (epochEnd === undefined) {
    throw new RunnerStateError(
      'NoEnd',
      'progress is unknown: set config.epochEnd or config.stepEnd',
    );
  }
  return Math.min(1, state.progress.iter / (epochEnd * itersPerEpoch(state)));
};

// --- parallel -----------------------------------------------------------------------------------

/** Number of processes. */
export const worldSize = (state: RunnerState): number => state.parallel.worldSize;
/** Process index among all processes. */
export const rank = (state: RunnerState): number => state.parallel.rank;
/** Process index among the local processes. */
export const localRank = (state: RunnerState): number => state.parallel.localRank;
/** Whether more than one process runs. */
export const distributed = (state: RunnerState): boolean => state.parallel.worldSize > 1;
/** Whether this is the main process of all (rank 0). */
export const isMainProcess = (state: RunnerState): boolean => state.parallel.rank === 0;
/** Whether this is the main process of its machine (local rank 0). */
export const isLocalMainProcess = (state: RunnerState): boolean => state.parallel.localRank === 0;

// --- results and scores -------------------------------------------------------------------------

/** A result as selectors give it back: numbers decoded, with its `index`. */
export type IndexedResult = Readonly<Record<string, unknown>> & { readonly index: number };

const withIndex = (entry: ResultEntry): IndexedResult => ({
  ...(decodeResult(entry.result) as Record<string, unknown>),
  index: entry.index,
});

/** The whole history, insertion-ordered: `[{ index, result }]` with numbers decoded. O(n). */
export const results = (
  state: RunnerState,
): readonly { index: number; result: Record<string, unknown> }[] =>
  toArray(state.results.entries).map((e) => ({
    index: e.index,
    result: decodeResult(e.result) as Record<string, unknown>,
  }));

/** The epoch a (resumed) loop starts at: the one after the last finished epoch. */
export const nextEpoch = (state: RunnerState): number =>
  latestEntry(state.results)?.index === state.progress.epoch
    ? state.progress.epoch + 1
    : state.progress.epoch;

/**
 * Samples of the current epoch's training already done, when the state was saved inside an epoch
 * (by `saveSteps` or a graceful stop): the count of the training meters of an epoch that has no
 * result yet. 0 at an epoch boundary. A resumed loop continues at batch `trainedInEpoch /
 * batchSize` of the same shuffled order.
 */
export const trainedInEpoch = (state: RunnerState): number => {
  if (nextEpoch(state) !== state.progress.epoch) return 0;
  let n = 0;
  for (const m of Object.values(state.meters)) n = Math.max(n, m.count);
  return n;
};

/** Whether the run has reached `epochEnd` or `stepEnd` (false when neither is set). */
export const isFinished = (state: RunnerState): boolean => {
  const { epochEnd, stepEnd } = state.config;
  return (
    (epochEnd !== undefined && nextEpoch(state) >= epochEnd) ||
    (stepEnd !== undefined && state.progress.step >= stepEnd)
  );
};

/** How many results the history holds. O(1). */
export const resultCount = (state: RunnerState): number => state.results.entries.size;

/** The most recent result with its `index`, or `null` before any. */
export const latestResult = (state: RunnerState): IndexedResult | null => {
  const e = latestEntry(state.results);
  return e === undefined ? null : withIndex(e);
};

/** The score direction: `config.scoreMode`, or inferred from the metric name (see `scoreModeOf`). */
export const scoreMode = (state: RunnerState): ScoreMode => scoreModeOf(state.config);

/**
 * The spec's best_fn: `Math.min` when the score is minimised, `Math.max` otherwise, over the valid scores
 * (NaN skipped). `undefined` for no valid score.
 */
export const bestFn =
  (state: RunnerState) =>
  (scores: readonly number[]): number | undefined => {
    const valid = scores.filter((s) => !Number.isNaN(s));
    if (valid.length === 0) return undefined;
    return scoreMode(state) === 'min' ? Math.min(...valid) : Math.max(...valid);
  };

/** The split whose metric is the score (config, else inferred from the latest result), or `null`. */
export const scoreSplit = (state: RunnerState): string | null => state.best.split;
/** The metric that is the score. */
export const scoreName = (state: RunnerState): string => state.config.scoreName;

/**
 * Every index with its score, insertion-ordered: `[{ index, score }]`; `score` is `undefined`
 * where the result has no valid score (missing or NaN). O(n).
 */
export const scores = (
  state: RunnerState,
): readonly { index: number; score: number | undefined }[] =>
  toArray(state.results.entries).map((e) => ({
    index: e.index,
    score: scoreOf(e.result, state.best.split, state.config.scoreName),
  }));

/** The index of the best result (earliest among equal scores), or `null` when no valid score. */
export const bestIndex = (state: RunnerState): number | null => {
  const p = state.best.position;
  return p === null ? null : (get(state.results.entries, p)?.index ?? null);
};

/** The best result with its `index`, or `null` when no result has a valid score. */
export const bestResult = (state: RunnerState): IndexedResult | null => {
  const p = state.best.position;
  const e = p === null ? undefined : get(state.results.entries, p);
  return e === undefined ? null : withIndex(e);
};

/** The latest result's score, or `undefined` (no result, or no valid score in it). */
export const latestScore = (state: RunnerState): number | undefined => {
  const e = latestEntry(state.results);
  return e && scoreOf(e.result, state.best.split, state.config.scoreName);
};

/** The best score, or `undefined` when no result has a valid score. */
export const bestScore = (state: RunnerState): number | undefined => {
  const p = state.best.position;
  const e = p === null ? undefined : get(state.results.entries, p);
  return e && scoreOf(e.result, state.best.split, state.config.scoreName);
};

/**
 * Whether the latest result is the best: its score is strictly better than every earlier valid
 * score, so `isBest(state) === (bestIndex(state) === latestResult(state).index)` for any
 * non-empty history. A tie is not best (the spec's `|latest - best| < 1e-7` made a tie best
 * while `bestIndex` kept the earlier epoch, rewriting best files with a worse model). True
 * before any result, as the spec; false when the latest result has no valid score.
 */
export const isBest = (state: RunnerState): boolean => {
  const n = state.results.entries.size;
  return n === 0 || state.best.position === n - 1;
};

/**
 * The index of the last result that improved on every earlier valid score by more than
 * `config.minDelta` (Keras' `min_delta`), or `null` when no result has a valid score. With
 * `minDelta` 0 it is {@link bestIndex}. Computed from the history, so it survives a resume. O(n).
 */
export const lastImprovementIndex = (state: RunnerState): number | null => {
  const mode = scoreModeOf(state.config);
  const delta = state.config.minDelta;
  let best: number | undefined;
  let at: number | null = null;
  for (const e of toArray(state.results.entries)) {
    const s = scoreOf(e.result, state.best.split, state.config.scoreName);
    if (s === undefined) continue;
    if (best === undefined || improves(s, best, mode, delta)) {
      best = s;
      at = e.index;
    }
  }
  return at;
};

/**
 * Early stopping: whether `config.patience` results have passed since the last improvement
 * ({@link lastImprovementIndex}). False without `patience` or before any valid score.
 */
export const patienceExhausted = (state: RunnerState): boolean => {
  const patience = state.config.patience;
  if (patience === undefined) return false;
  const last = lastImprovementIndex(state);
  const latest = latestEntry(state.results)?.index;
  return last !== null && latest !== undefined && latest - last >= patience;
};

// --- meters -------------------------------------------------------------------------------------

/** The meters, with their numbers decoded. */
export const meters = (
  state: RunnerState,
): Readonly<Record<string, { val: number; avg: number; sum: number; count: number }>> =>
  Object.fromEntries(
    Object.entries(state.meters).map(([k, m]: [string, Meter]) => [
      k,
      {
        val: decodeMetric(m.val) ?? Number.NaN,
        avg: decodeMetric(m.avg) ?? Number.NaN,
        sum: decodeMetric(m.sum) ?? Number.NaN,
        count: m.count,
      },
    ]),
  );

/**
 * The spec's get_result: the meters' last values (`'step'`) or averages (`'epoch'`), by name.
 */
export const getResult = (
  state: RunnerState,
  level: 'step' | 'epoch',
): Readonly<Record<string, number>> => {
  const out: Record<string, number> = {};
  for (const k in state.meters) {
    const m = state.meters[k];
    if (m !== undefined)
      setOwn(out, k, decodeMetric(level === 'step' ? m.val : m.avg) ?? Number.NaN);
  }
  return out;
};

// --- IO paths (pure strings; nothing is created) ------------------------------------------------

const join = (...parts: readonly string[]): string =>
  parts
    .filter((p) => p !== '')
    .join('/')
    .replace(/\/{2,}/g, '/');

/** The run's directory: `config.dir`, else `projectRoot/name-id/timestamp`. */
export const dir = (state: RunnerState): string =>
  state.config.dir ??
  join(state.config.projectRoot, `${name(state)}-${id(state)}`, state.timestamp);

/** The checkpoint directory: `config.checkpointDir`, else `dir/checkpointDirName`. */
export const checkpointDir = (state: RunnerState): string =>
  state.config.checkpointDir ?? join(dir(state), state.config.checkpointDirName);

/** The log file: `config.logPath`, else `dir/run.log`. */
export const logPath = (state: RunnerState): string =>
  state.config.logPath ?? join(dir(state), 'run.log');

/** The name of the checkpoint folder under the run dir (`config.checkpointDirName`). */
export const checkpointDirName = (state: RunnerState): string => state.config.checkpointDirName;

/**
 * The spec's state_dict: everything a checkpoint needs to restore the runner, in the persisted
 * form (plain arrays, nothing derived; parts' state dicts are saved beside it).
 */
export const stateDict = (state: RunnerState): PersistedState => persistState(state);

/** The spec's dict: the config as a plain object. */
export const dict = (state: RunnerState): Config => state.config;
