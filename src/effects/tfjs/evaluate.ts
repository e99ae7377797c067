/**
 * Evaluation with a TensorFlow.js model: the part of the loop that training and `evaluate`
 * share (batch metrics, epoch metrics, the turn given to the event loop, one split evaluated
 * with its actions dispatched), `evaluate` after training, and `predict` in batches.
 */
import type * as TF from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { actions as act, type Action } from '../../reducers/actions.js';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { bestIndex, checkpointDir, getResult } from '../../state/runner/selectors.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { warning } from '../../state/warning.js';
import { loadPretrained } from '../run/runFiles.js';
import { modelPart } from './tfjs.js';
import type { Runner } from '../shell/runner.js';
import type { EpochMetricFn } from './epochMetrics.js';
import {
  type TfjsTask,
  type ResolvedTask,
  type TrainError,
  failed,
  modelOf,
  metricClash,
  batchSizeOf,
  thrown,
  registerSource,
} from './task.js';
import {
  type Batch,
  type Source,
  type Tensors,
  rowsOf,
  sourceOf,
  streamReader,
  tensorReader,
} from './data.js';
import { stepper } from './step.js';

const one = (t: Tensors, what: string): TF.Tensor => {
  if (!Array.isArray(t)) return t as TF.Tensor;
  throw new TypeError(`${what}: epoch metrics take one target tensor, the split has several`);
};

/**
 * The parts of the loop that training and {@link evaluate} share: the step, the turn given to
 * the event loop, and the evaluation of one split (dispatching its actions).
 */
export const evaluator = (
  runner: Runner,
  task: Omit<ResolvedTask, 'optimizer'>,
  batchSize: number,
) => {
  const { tf } = task;
  const send = (action: Action): RunnerState => runner.dispatch(action);
  const epochMetrics = task.epochMetrics ?? {};
  const epochNames = Object.keys(epochMetrics);
  const steps = stepper(task);
  // With phases, an evaluation runs each phase's step, its values prefixed with the phase's name;
  // the predictions (for epoch metrics) are the first phase's that gives them.
  const phased = task.phases?.map((p) => ({
    prefix: `${p.name}/`,
    steps: stepper({ ...task, step: p.step }),
  }));
  const evaluateBatch = (
    batch: Batch,
    state: RunnerState,
    keep: boolean,
  ): { values: Record<string, number>; pred: TF.Tensor | undefined } => {
    if (phased === undefined) return steps.evaluate(batch, state, keep);
    const values: Record<string, number> = {};
    let pred: TF.Tensor | undefined;
    for (const p of phased) {
      const out = p.steps.evaluate(batch, state, keep && pred === undefined);
      for (const [k, v] of Object.entries(out.values)) values[p.prefix + k] = v;
      pred ??= out.pred;
    }
    return { values, pred };
  };

  // The loop never waits on anything while it trains, so signal handlers (a graceful stop)
  // could not run, nor a checkpoint written in the background: it gives the event loop a turn
  // at a batch boundary every 20 ms, and at every one while a checkpoint is being written by
  // this thread. (A turn at every batch while the writer thread wrote cost a small model 5-10%
  // of its epoch time: bench/RESULTS.md.)
  let lastTurn = performance.now();
  const turn = async (): Promise<void> => {
    if (!runner.savesNeedTurns() && performance.now() - lastTurn < 20) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    lastTurn = performance.now();
  };

  /**
   * Evaluates one split; `undefined` when a stop was asked for on the way. Throws on data that
   * cannot be read (the caller turns it into a `TrainFailed`).
   */
  const evaluate = async (
    split: string,
    source: Source,
    epoch: number,
  ): Promise<Record<string, number> | undefined> => {
    for (const a of [act.setMode('eval'), act.setSplit(split), act.resetMeters()]) {
      send(a);
    }
    const reader =
      source.kind === 'tensors'
        ? tensorReader(tf, source, batchSize)
        : streamReader(split, source.open({ epoch, seed: 0 }));
    // Predictions (and, for batches, targets) are kept only when epoch metrics need them.
    const keep = epochNames.length > 0;
    const preds: TF.Tensor[] = [];
    const targets: TF.Tensor[] = [];
    const dispose = (): void => {
      for (const p of [...preds, ...targets]) p.dispose();
    };
    let batches = 0;
    try {
      for (;;) {
        const next = reader.next();
        const batch: Batch | undefined = next instanceof Promise ? await next : next;
        if (batch === undefined) break;
        batches += 1;
        const size = rowsOf(batch.x);
        try {
          const { values, pred } = evaluateBatch(batch, runner.state, keep);
          if (keep) {
            if (pred === undefined) {
              throw new TypeError(
                'task.epochMetrics need the predictions: return pred from task.step',
              );
            }
            preds.push(pred);
            if (source.kind === 'stream') targets.push(tf.keep(tf.clone(one(batch.y, split))));
          }
          send(act.updateMeters(values, size));
        } finally {
          reader.release(batch);
        }
        await turn();
        if (runner.stopSignal() !== null) {
          reader.close();
          dispose();
          return undefined;
        }
      }
    } catch (error) {
      reader.close();
      dispose();
      throw error;
    }
    if (batches === 0 && source.kind === 'stream') {
      dispose();
      throw new TypeError(
        `splits.${split} gave no batches${source.repeatable === 'unknown' ? ' (an iterator or generator is used up after one pass: give { batches: (pass) => ... } making a new one each pass)' : ''}`,
      );
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
        const y =
          source.kind === 'tensors'
            ? one(source.y, split)
            : targets.length === 1
              ? (targets[0] as TF.Tensor)
              : tf.concat(targets);
        for (const k of epochNames) averaged[k] = (epochMetrics[k] as EpochMetricFn)(y, all);
      });
    } finally {
      dispose();
    }
    return averaged;
  };
  return { steps, turn, evaluate };
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
  if (E.isLeft(model) && given.step === undefined && given.phases === undefined) return model;
  const task = { ...given, model: E.isRight(model) ? model.right : undefined };
  const data = task.splits[split];
  if (data === undefined) {
    return failed('evaluate', {
      message: `no ${JSON.stringify(split)} split among ${Object.keys(task.splits).join(', ')}`,
    });
  }
  const clash = metricClash(task);
  if (clash !== undefined) return failed('evaluate', { message: clash });
  const batchSize = batchSizeOf(runner);
  const source = sourceOf(split, data);
  if (typeof source === 'string') return failed('evaluate', { message: source });
  registerSource(runner, split, source, batchSize);
  let result: Record<string, number> | undefined;
  try {
    result = await evaluator(runner, task, batchSize).evaluate(
      split,
      source,
      runner.state.progress.epoch,
    );
  } catch (error) {
    return thrown('evaluate', error);
  }
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
  const n = rowsOf(x);
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

/**
 * `restoreBest`: loads the model part of `best.safetensors` into `model`; the path loaded, or
 * `undefined` (with a `BestWeightsUnavailable` warning) when there is none or no model.
 */
export const restoreBestWeights = async (
  runner: Runner,
  tf: typeof TF,
  model: TF.LayersModel | undefined,
  saved: boolean,
): Promise<E.Either<TrainError, string | undefined>> => {
  const path = join(checkpointDir(runner.state), 'best.safetensors');
  if (!saved || !existsSync(path) || model === undefined) {
    const w = warning(
      'BestWeightsUnavailable',
      model === undefined
        ? 'restoreBest: no model to load the best weights into (a custom step with variables): load your part from best.safetensors yourself'
        : `restoreBest: no ${path} (no valid score, or save: false); the model keeps its last weights`,
    );
    runner.logger.warn({ warning: w._tag }, w.message);
    return E.right(undefined);
  }
  const loaded = await loadPretrained(runner.state, modelPart(tf, model), path);
  if (E.isLeft(loaded)) return failed('restoreBest', loaded.left);
  runner.logger.info(
    { restoredFrom: path, bestIndex: bestIndex(runner.state) },
    `restored the best weights (epoch ${String(bestIndex(runner.state))}) from ${path}`,
  );
  return E.right(path);
};
