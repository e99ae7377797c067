/**
 * Actions: every change of state as plain JSON data, so a log of them can be stored, shipped and
 * replayed. `reduce` applies one; `replay` folds a log.
 */
import type { JsonObject } from '../state/Json.js';
import { encodeResult } from '../state/runner/metric.js';
import type { RngState } from '../state/runner/rng.js';
import type { RunnerMode, RunnerState } from '../state/runner/RunnerState.js';
import {
  appendResult,
  mergeConfig,
  registerSplit,
  resetMeters,
  restore,
  setMode,
  setRng,
  setSplit,
  setTimestamp,
  startEpoch,
  stepProgress,
  updateMeters,
  type ResultRecord,
} from './reducers.js';

/** Every change of state, as data. */
export type Action =
  | { readonly type: 'appendResult'; readonly result: JsonObject; readonly index?: number }
  | { readonly type: 'stepProgress'; readonly steps: number }
  | { readonly type: 'startEpoch'; readonly epoch: number }
  | { readonly type: 'mergeConfig'; readonly patch: JsonObject; readonly overwrite: boolean }
  | { readonly type: 'setMode'; readonly mode: RunnerMode }
  | { readonly type: 'setSplit'; readonly split: string | null }
  | {
      readonly type: 'updateMeters';
      readonly values: { readonly [name: string]: number | 'NaN' | 'Infinity' | '-Infinity' };
      readonly n: number;
    }
  | { readonly type: 'resetMeters' }
  | {
      readonly type: 'registerSplit';
      readonly split: string;
      readonly size: number;
      readonly batchSize: number;
    }
  | { readonly type: 'restore'; readonly saved: RunnerState; readonly overrideConfig: boolean }
  | { readonly type: 'setRng'; readonly rng: RngState | null }
  | { readonly type: 'setTimestamp'; readonly timestamp: string };

/** The `type` of every action. */
export type ActionType = Action['type'];

const decodeNumber = (v: number | string): number =>
  typeof v === 'number' ? v : v === 'NaN' ? Number.NaN : v === '-Infinity' ? -Infinity : Infinity;

/**
 * Action creators: they build JSON-safe actions (numbers in results and meters encoded, so
 * NaN and the infinities survive a JSON log).
 */
export const actions = {
  appendResult: (result: ResultRecord, index?: number): Action =>
    index === undefined
      ? { type: 'appendResult', result: encodeResult(result) as JsonObject }
      : { type: 'appendResult', result: encodeResult(result) as JsonObject, index },
  stepProgress: (steps = 1): Action => ({ type: 'stepProgress', steps }),
  startEpoch: (epoch: number): Action => ({ type: 'startEpoch', epoch }),
  mergeConfig: (patch: JsonObject, overwrite = true): Action => ({
    type: 'mergeConfig',
    patch,
    overwrite,
  }),
  setMode: (mode: RunnerMode): Action => ({ type: 'setMode', mode }),
  setSplit: (split: string | null): Action => ({ type: 'setSplit', split }),
  updateMeters: (values: { readonly [name: string]: number }, n = 1): Action => ({
    type: 'updateMeters',
    values: Object.fromEntries(
      Object.entries(values).map(([k, v]) => [
        k,
        Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity',
      ]),
    ),
    n,
  }),
  resetMeters: (): Action => ({ type: 'resetMeters' }),
  registerSplit: (split: string, info: { size: number; batchSize: number }): Action => ({
    type: 'registerSplit',
    split,
    size: info.size,
    batchSize: info.batchSize,
  }),
  restore: (saved: RunnerState, overrideConfig = false): Action => ({
    type: 'restore',
    saved,
    overrideConfig,
  }),
  setRng: (rng: RngState | null): Action => ({ type: 'setRng', rng }),
  setTimestamp: (timestamp: string): Action => ({ type: 'setTimestamp', timestamp }),
} as const;

const unreachable = (action: never): never => {
  throw new TypeError(`unknown action ${JSON.stringify(action)}`);
};

/**
 * Applies one action. The same state and action always give the same result.
 *
 * @example
 * const next = reduce(state, actions.appendResult({ val: { loss: 0.2 } }));
 */
export const reduce = (state: RunnerState, action: Action): RunnerState => {
  switch (action.type) {
    case 'appendResult':
      return appendResult(state, action.result, action.index);
    case 'stepProgress':
      return stepProgress(state, action.steps);
    case 'startEpoch':
      return startEpoch(state, action.epoch);
    case 'mergeConfig':
      return mergeConfig(state, action.patch, { overwrite: action.overwrite });
    case 'setMode':
      return setMode(state, action.mode);
    case 'setSplit':
      return setSplit(state, action.split);
    case 'updateMeters': {
      const values: Record<string, number> = {};
      for (const k in action.values) {
        const v = action.values[k];
        if (v !== undefined) values[k] = decodeNumber(v);
      }
      return updateMeters(state, values, action.n);
    }
    case 'resetMeters':
      return resetMeters(state);
    case 'registerSplit':
      return registerSplit(state, action.split, { size: action.size, batchSize: action.batchSize });
    case 'restore':
      return restore(state, action.saved, { overrideConfig: action.overrideConfig });
    case 'setRng':
      return setRng(state, action.rng);
    case 'setTimestamp':
      return setTimestamp(state, action.timestamp);
    default:
      return unreachable(action);
  }
};

/** Folds a log of actions over `initial`: the state after all of them. */
export const replay = (initial: RunnerState, log: readonly Action[]): RunnerState =>
  log.reduce(reduce, initial);
