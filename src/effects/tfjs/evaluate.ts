/**
 * Evaluation with a TensorFlow.js model: the part of the loop that training and `evaluate`
 * share (batch metrics, epoch metrics, the turn given to the event loop, one split evaluated
 * with its actions dispatched), `evaluate` after training, and `predict` in batches.
 */
import type * as TF from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { actions as act, type Action } from '../../reducers/actions.js';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { getResult } from '../../state/runner/selectors.js';
import type { Runner } from '../shell/runner.js';
import type { EpochMetricFn } from './epochMetrics.js';
import {
  type SplitData,
  type TfjsTask,
  type ResolvedTask,
  type TrainError,
  modelOf,
  failed,
  rows,
  numberOf,
  metricClash,
  batchSizeOf,
} from './task.js';

/**
 * The parts of the loop that training and {@link evaluate} share: the batch metrics, the turn
 * given to the event loop, and the evaluation of one split (dispatching its actions).
 */
export const evaluator = (
  runner: Runner,
  task: TfjsTask & Pick<ResolvedTask, 'model'>,
  batchSize: number,
) => {
  const { tf, model } = task;
  const send = (action: Action): RunnerState => runner.dispatch(action);
  const metricNames = Object.keys(task.metrics ?? {});
  const epochMetrics = task.epochMetrics ?? {};
  const epochNames = Object.keys(epochMetrics);

  /** Loss and metrics of one batch, as plain numbers. */
  const measure = (yTrue: TF.Tensor, yPred: TF.Tensor): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const k of metricNames) {
      const fn = task.metrics?.[k];
      if (fn !== undefined) out[k] = tf.tidy(() => numberOf(fn(yTrue, yPred)));
    }
    return out;
  };

  // The loop never waits on anything while it trains, so signal handlers (a graceful stop)
  // could not run, nor a checkpoint written in the background: it gives the event loop a turn
  // at a batch boundary every 20 ms, and at every one while a checkpoint is being written.
  let lastTurn = performance.now();
  const turn = async (): Promise<void> => {
    if (runner.pendingSaves() === 0 && performance.now() - lastTurn < 20) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    lastTurn = performance.now();
  };

  /** Evaluates one split; `undefined` when a stop was asked for on the way. */
  const evaluate = async (
    split: string,
    data: SplitData,
  ): Promise<Record<string, number> | undefined> => {
    for (const a of [act.setMode('eval'), act.setSplit(split), act.resetMeters()]) {
      send(a);
    }
    const n = rows(data.x);
    // Predictions are kept only when epoch metrics need them.
    const preds: TF.Tensor[] = [];
    const dispose = (): void => {
      for (const p of preds) p.dispose();
    };
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const values = tf.tidy(() => {
        const xb = data.x.slice(start, size);
        const yb = data.y.slice(start, size);
        const pred = model.apply(xb, { training: false }) as TF.Tensor;
        if (epochNames.length > 0) preds.push(tf.keep(pred));
        return { loss: numberOf(task.loss(yb, pred)), ...measure(yb, pred) };
      });
      send(act.updateMeters(values, size));
      await turn();
      if (runner.stopSignal() !== null) {
        dispose();
        return undefined;
      }
    }
    const averaged = { ...getResult(runner.state, 'epoch') };
    if (epochNames.length === 0) return averaged;
    if (preds.length === 0) {
      for (const k of epochNames) averaged[k] = Number.NaN;
      return averaged;
    }
    try {
      tf.tidy(() => {
        const all = preds.length === 1 ? (preds[0] as TF.Tensor) : tf.concat(preds);
        for (const k of epochNames) averaged[k] = (epochMetrics[k] as EpochMetricFn)(data.y, all);
      });
    } finally {
      dispose();
    }
    return averaged;
  };
  return { measure, turn, evaluate };
};

/**
 * Evaluates one of `task.splits` with the current weights, after training or in a runner that
 * only evaluates: the same batches, metrics and epoch metrics as the loop's evaluation, its
 * actions dispatched (`setMode('eval')`, `setSplit`, `resetMeters`, `updateMeters`), the values
 * written as `split/name` scalars at the current step (unless `write: false`). The result is
 * not appended to the history. A graceful stop asked for on the way is an
 * `EvaluationInterrupted`.
 *
 * @example
 * const test = await evaluate(runner, { ...task, splits: { ...task.splits, test } }, 'test');
 */
export const evaluate = async (
  runner: Runner,
  given: TfjsTask,
  split: string,
  options: { readonly write?: boolean } = {},
): Promise<E.Either<TrainError | EvaluationInterrupted, Readonly<Record<string, number>>>> => {
  const model = modelOf(runner, given, 'evaluate');
  if (E.isLeft(model)) return model;
  const task = { ...given, model: model.right };
  const data = task.splits[split];
  if (data === undefined) {
    return failed('evaluate', {
      message: `no ${JSON.stringify(split)} split among ${Object.keys(task.splits).join(', ')}`,
    });
  }
  const clash = metricClash(task);
  if (clash !== undefined) return failed('evaluate', { message: clash });
  const batchSize = batchSizeOf(runner);
  const size = rows(data.x);
  const known = runner.state.splits[split];
  if (known?.size !== size || known.batchSize !== batchSize) {
    runner.dispatch(act.registerSplit(split, { size, batchSize }));
  }
  const result = await evaluator(runner, task, batchSize).evaluate(split, data);
  if (result === undefined) {
    const signal = runner.stopSignal() ?? 'SIGTERM';
    return E.left({
      _tag: 'EvaluationInterrupted',
      signal,
      message: `evaluation of ${split} interrupted by ${signal}`,
    });
  }
  if (options.write !== false) {
    const w = await runner.writeResult(result, split);
    if (E.isLeft(w)) return failed('writeResult', w.left);
  }
  const f = await runner.flush();
  if (E.isLeft(f)) return failed('action log', f.left);
  return E.right(result);
};

/** A graceful stop was asked for while {@link evaluate} ran. */
export interface EvaluationInterrupted {
  readonly _tag: 'EvaluationInterrupted';
  readonly signal: NodeJS.Signals;
  readonly message: string;
}

/**
 * The model's predictions for `x` (samples along the first axis), in batches of
 * `dataloader.batchSize` with `training: false`, concatenated: one tensor for the caller to
 * dispose. Changes no state. A `Left` when the model refuses the input (a shape mismatch).
 *
 * @example
 * const probs = predict(runner, task, xTest); // E.Either<TrainError, tf.Tensor>
 */
export const predict = (
  runner: Runner,
  task: Pick<TfjsTask, 'tf' | 'model'>,
  x: TF.Tensor,
): E.Either<TrainError, TF.Tensor> => {
  const found = modelOf(runner, task, 'predict');
  if (E.isLeft(found)) return found;
  const model = found.right;
  const { tf } = task;
  const batchSize = batchSizeOf(runner);
  const n = rows(x);
  try {
    return E.right(
      tf.tidy(() => {
        const parts: TF.Tensor[] = [];
        for (let start = 0; start < n; start += batchSize) {
          const size = Math.min(batchSize, n - start);
          parts.push(model.apply(x.slice(start, size), { training: false }) as TF.Tensor);
        }
        if (parts.length === 0) return model.apply(x, { training: false }) as TF.Tensor;
        return parts.length === 1 ? (parts[0] as TF.Tensor) : tf.concat(parts);
      }),
    );
  } catch (error) {
    return failed('predict', { message: error instanceof Error ? error.message : String(error) });
  }
};
