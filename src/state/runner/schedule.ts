/**
 * Learning-rate schedules as pure functions of the runner state (`config.schedule`): the rate of
 * the next optimizer step depends on the step count, the run's end and, for `plateau`, the
 * results history, all of which checkpoints carry. A resumed run therefore gets the same rate at
 * the same step as an uninterrupted one, and no schedule keeps state of its own.
 */
import type { ScheduleConfig } from '../config/Config.js';
import { toArray } from './vector.js';
import type { RunnerState } from './RunnerState.js';
import { improves, scoreModeOf, scoreOf } from './results.js';

/** What a schedule needs besides its config. */
export interface ScheduleInput {
  /** The base rate (before warm-up and decay), already scaled by the linear scaling rule. */
  readonly baseLr: number;
  /** Optimizer steps done before the step the rate is for (`state.progress.step`). */
  readonly step: number;
  /** The step at which `cosine` and `linear` reach `minLr`. */
  readonly totalSteps: number;
  /** How often `plateau` has cut the rate (see {@link plateauReductions}). */
  readonly reductions: number;
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/**
 * The rate of one optimizer step under `schedule` (undefined: constant). Within
 * `[min(minLr, baseLr), baseLr]`; non-decreasing during warm-up; non-increasing after it.
 *
 * @example
 * scheduledLr({ kind: 'cosine', warmupSteps: 10 }, { baseLr: 0.1, step: 55, totalSteps: 100, reductions: 0 }) // 0.05
 */
export const scheduledLr = (schedule: ScheduleConfig | undefined, input: ScheduleInput): number => {
  const { baseLr, step } = input;
  if (schedule === undefined) return baseLr;
  const minLr = Math.min(schedule.minLr ?? 0, baseLr);
  const warmup = schedule.warmupSteps ?? 0;
  // The warm-up climbs to the rate the schedule starts at: for plateau, the base rate after the
  // cuts made so far (a cut during warm-up must not make the rate fall when warm-up ends).
  if (step < warmup) {
    const peak =
      schedule.kind === 'plateau'
        ? Math.max(minLr, baseLr * (schedule.factor ?? 0.1) ** input.reductions)
        : baseLr;
    return minLr + ((peak - minLr) * (step + 1)) / (warmup + 1);
  }
  const t = step - warmup;
  const span = Math.max(1, input.totalSteps - warmup);
  const u = clamp(t / span, 0, 1);
  let lr: number;
  switch (schedule.kind) {
    case 'constant':
      lr = baseLr;
      break;
    case 'step':
      lr = baseLr * (schedule.gamma ?? 0.1) ** Math.floor(t / (schedule.stepSize ?? 1));
      break;
    case 'exponential':
      lr = baseLr * (schedule.gamma ?? 1) ** t;
      break;
    case 'cosine':
      lr = minLr + ((baseLr - minLr) * (1 + Math.cos(Math.PI * u))) / 2;
      break;
    case 'linear':
      lr = minLr + (baseLr - minLr) * (1 - u);
      break;
    case 'plateau':
      lr = baseLr * (schedule.factor ?? 0.1) ** input.reductions;
      break;
  }
  // gamma > 1 would grow the rate: the base rate is the ceiling of every schedule.
  return clamp(lr, minLr, baseLr);
};

/**
 * How often `plateau` has cut the rate, from the results history (Keras' ReduceLROnPlateau
 * without cooldown): walking the scores in order, every `patience` (default 10) results in a
 * row without an improvement by more than `threshold` (default 0) over the best so far count one
 * cut, and the wait starts again. 0 for other kinds. O(results); the loop calls it once per
 * epoch.
 */
export const plateauReductions = (state: RunnerState): number => {
  const schedule = state.config.schedule;
  if (schedule?.kind !== 'plateau') return 0;
  const patience = schedule.patience ?? 10;
  const threshold = schedule.threshold ?? 0;
  const mode = scoreModeOf(state.config);
  let best: number | undefined;
  let wait = 0;
  let cuts = 0;
  for (const e of toArray(state.results.entries)) {
    const s = scoreOf(e.result, state.best.split, state.config.scoreName);
    if (s === undefined) continue;
    if (best === undefined || improves(s, best, mode, threshold)) {
      best = s;
      wait = 0;
    } else if (++wait >= patience) {
      cuts += 1;
      wait = 0;
    }
  }
  return cuts;
};

/**
 * The step at which `cosine` and `linear` end: `schedule.totalSteps`, else the run's end in
 * optimizer steps (`stepEnd`, or `epochEnd x stepsPerEpoch`, the smaller when both are set).
 * Unlike the `totalSteps` selector it does not depend on where the run resumed.
 */
export const scheduleTotalSteps = (state: RunnerState, stepsPerEpoch: number): number => {
  const given = state.config.schedule?.totalSteps;
  if (given !== undefined) return given;
  const { stepEnd, epochEnd } = state.config;
  const byEpoch = epochEnd === undefined ? Number.POSITIVE_INFINITY : epochEnd * stepsPerEpoch;
  const end = Math.min(stepEnd ?? Number.POSITIVE_INFINITY, byEpoch);
  return Number.isFinite(end) ? end : 1;
};

/**
 * The base rate: `schedule.lr` times `config.lrScaleFactor` (the factor `scaleLr` records) when
 * the schedule names one, else `optimizerLr` (the rate the optimizer was built with, which the
 * caller may have scaled with `scaleLr` already).
 */
export const baseLearningRate = (state: RunnerState, optimizerLr: number): number => {
  const lr = state.config.schedule?.lr;
  return lr === undefined ? optimizerLr : lr * (state.config.lrScaleFactor ?? 1);
};

/**
 * The learning rate of the next optimizer step of `state`: {@link scheduledLr} at
 * `state.progress.step`, with the base rate of {@link baseLearningRate} and the plateau cuts of
 * {@link plateauReductions}. A pure function of the state: equal after a JSON round trip.
 *
 * @example
 * learningRate(state, 0.01, 25) // the rate trainTfjs sets before the next step
 */
export const learningRate = (
  state: RunnerState,
  optimizerLr: number,
  stepsPerEpoch: number,
): number =>
  scheduledLr(state.config.schedule, {
    baseLr: baseLearningRate(state, optimizerLr),
    step: state.progress.step,
    totalSteps: scheduleTotalSteps(state, stepsPerEpoch),
    reductions: plateauReductions(state),
  });
