/**
 * The spec's format_result, format_step_result and format_epoch_result as pure strings.
 */
import { isPlainObject } from '../Json.js';
import { scoreModeOf, scoreOf } from './results.js';
import type { RunnerMode, RunnerState } from './RunnerState.js';
import { get } from './vector.js';

/** Formats one value: numbers with `digits` decimals (`nan`, `inf`, `-inf` as Python prints them). */
export const formatValue = (value: unknown, digits = 4): string => {
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'nan';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    return value.toFixed(digits);
  }
  if (value === 'NaN') return 'nan';
  if (value === 'Infinity') return 'inf';
  if (value === '-Infinity') return '-inf';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return `[${value.map((v) => formatValue(v, digits)).join(', ')}]`;
  const json = JSON.stringify(value) as string | undefined;
  return json ?? String(value);
};

/**
 * Formats a result: flat values as `name: value` joined by tabs; a nested result (`{ split:
 * { metric } }`) one split a line, each line `split: name: value\tname: value`, split names
 * padded to the same width. Numbers get `digits` decimals (the spec's `.4f`).
 *
 * @example
 * formatResult({ loss: 0.1, accuracy: 0.9 }) // 'loss: 0.1000\taccuracy: 0.9000'
 * formatResult({ train: { loss: 0.1 }, val: { loss: 0.2 } }) // '\ntrain: loss: 0.1000\nval:   loss: 0.2000'
 */
export const formatResult = (result: Readonly<Record<string, unknown>>, digits = 4): string => {
  const entries = Object.entries(result).filter(([k]) => k !== 'index');
  const nested = entries.filter(([, v]) => isPlainObject(v));
  const flat = entries.filter(([, v]) => !isPlainObject(v));
  const flatText = flat.map(([k, v]) => `${k}: ${formatValue(v, digits)}`).join('\t');
  if (nested.length === 0) return flatText;
  const width = Math.max(...nested.map(([k]) => k.length)) + 1;
  const lines = nested.map(
    ([k, v]) => `${`${k}:`.padEnd(width)} ${formatResult(v as Record<string, unknown>, digits)}`,
  );
  return [flatText, ...lines]
    .filter((l) => l !== '')
    .map((l) => `\n${l}`)
    .join('');
};

/**
 * The spec's step line: `training on train [3/99]\tloss: 0.1000` (`evaluating on ...` in eval
 * mode, `running in inf mode on ...` otherwise).
 */
export const formatStepLine = (
  mode: RunnerMode,
  result: Readonly<Record<string, unknown>>,
  split: string | null,
  step: number,
  length: number,
  digits = 4,
): string => {
  let head = '';
  if (split !== null) {
    head =
      mode === 'train'
        ? `training on ${split} `
        : mode === 'eval'
          ? `evaluating on ${split} `
          : `running in ${mode} mode on ${split} `;
  }
  // A length that is not known (a stream of batches before its first pass) is `?`.
  return `${head}[${step}/${Number.isFinite(length) ? length : '?'}]\t${formatResult(result, digits)}`;
};

/**
 * The spec's epoch line: `epoch [3/9]` (the last epoch is `epochEnd - 1`) followed by the
 * formatted result; without an `epochEnd`, the result alone. Epoch 0 is printed (the spec's
 * `epoch or config.epoch` dropped it).
 */
export const formatEpochLine = (
  result: Readonly<Record<string, unknown>>,
  epoch: number | undefined,
  epochEnd: number | undefined,
  digits = 4,
): string => {
  const head =
    epoch !== undefined && epochEnd !== undefined ? `epoch [${epoch}/${epochEnd - 1}]` : '';
  return `${head}${formatResult(result, digits)}`;
};

/**
 * The spec's format_step_result: {@link formatStepLine} in the state's mode.
 *
 * @example
 * formatStepResult(state, { loss: 0.1, accuracy: 0.9 }, 'train', 3, 99)
 * // 'training on train [3/99]\tloss: 0.1000\taccuracy: 0.9000'
 */
export const formatStepResult = (
  state: RunnerState,
  result: Readonly<Record<string, unknown>>,
  split: string | null,
  step: number,
  length: number,
  digits = 4,
): string => formatStepLine(state.mode, result, split, step, length, digits);

/**
 * The spec's format_epoch_result: {@link formatEpochLine} with the epoch and epochEnd defaulting
 * to the state's (an explicit epoch 0 stays 0).
 */
export const formatEpochResult = (
  state: RunnerState,
  result: Readonly<Record<string, unknown>>,
  epoch: number = state.progress.epoch,
  epochEnd: number | undefined = state.config.epochEnd,
  digits = 4,
): string => formatEpochLine(result, epoch, epochEnd, digits);

/** `lower` or `higher`: the word for a score direction. */
const better = (state: RunnerState): string =>
  scoreModeOf(state.config) === 'min' ? 'lower is better' : 'higher is better';

/**
 * The score rule in one line, as the start-up log states it: `score: val/mae, lower is better`.
 * Before any result the split is the configured one, else `(inferred)`.
 */
export const formatScoreRule = (state: RunnerState): string => {
  const split = state.best.split ?? state.config.scoreSplit ?? '(inferred)';
  return `score: ${split}/${state.config.scoreName}, ${better(state)}`;
};

/**
 * The early-stopping line: metric, direction, the patience and minimum improvement, and the best
 * value with its epoch. `early stopping: val/mae (lower is better) did not improve by more than 0
 * for 3 epochs; best 0.1234 at epoch 4`.
 */
export const formatEarlyStop = (state: RunnerState): string => {
  const split = state.best.split ?? '(none)';
  const best = bestScoreOf(state);
  const at =
    state.best.position === null ? undefined : get(state.results.entries, state.best.position);
  const where =
    best === undefined || at === undefined
      ? 'no valid score'
      : `best ${formatValue(best)} at epoch ${at.index}`;
  return `early stopping: ${split}/${state.config.scoreName} (${better(state)}) did not improve by more than ${state.config.minDelta} for ${state.config.patience ?? 0} epochs; ${where}`;
};

const bestScoreOf = (state: RunnerState): number | undefined => {
  const p = state.best.position;
  const e = p === null ? undefined : get(state.results.entries, p);
  return e && scoreOf(e.result, state.best.split, state.config.scoreName);
};
