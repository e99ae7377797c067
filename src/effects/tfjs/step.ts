/**
 * One batch through the model: the loss, the batch metrics and the predictions, by the task's
 * own step function or by the default one (`model.apply`, `task.loss`, `task.metrics`); in
 * training with the gradients of the trained variables.
 */
import type * as TF from '@tensorflow/tfjs';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import type { Batch, Tensors } from './data.js';
import { rowsOf } from './data.js';

/** What a step function gives for one batch. */
export interface StepOutput {
  /** The loss to minimise (differentiated in training), a scalar. */
  readonly loss: TF.Scalar;
  /** Batch metrics, scalars averaged over the split sample-weighted like the loss. */
  readonly metrics?: Readonly<Record<string, TF.Scalar>>;
  /** The predictions, needed for `task.metrics` and `task.epochMetrics`. */
  readonly pred?: TF.Tensor;
}

/** Where a step function runs. */
export interface StepContext {
  /** True in training (the loss is differentiated; dropout and the like on), false in evaluation. */
  readonly training: boolean;
  readonly state: RunnerState;
}

/**
 * A custom step for models that are not one `LayersModel` forward (several inputs or outputs,
 * a loss of your own making): computes the loss and metrics of one batch with tf ops. The loop
 * keeps the rest: the gradients of `task.variables` (default the model's trainable weights),
 * accumulation, clipping, the schedule, meters, checkpoints and resume. It runs inside
 * `tf.tidy` (and `tf.variableGrads` in training): create no variables in it.
 *
 * @example
 * const step: StepFn = ({ x, y }, { training }) => {
 *   const [a, b] = model.apply(x as tf.Tensor[], { training }) as tf.Tensor[];
 *   return { loss: tf.add(tf.losses.meanSquaredError(y, a), tf.losses.absoluteDifference(y, b)) };
 * };
 */
export type StepFn = (batch: Batch, context: StepContext) => StepOutput;

/** A batch-wise function of targets and predictions giving a scalar (the loss, a metric). */
export type BatchFn = (yTrue: TF.Tensor, yPred: TF.Tensor) => TF.Scalar;

/** What {@link stepper} needs of the task. */
export interface StepTask {
  readonly tf: typeof TF;
  readonly model: TF.LayersModel | undefined;
  readonly loss?: BatchFn;
  readonly metrics?: Readonly<Record<string, BatchFn>>;
  readonly step?: StepFn;
}

const single = (t: Tensors, what: string): TF.Tensor => {
  if (!Array.isArray(t)) return t as TF.Tensor;
  throw new TypeError(
    `${what} are several tensors: task.loss and task.metrics take one; give task.step for a model with several inputs or outputs`,
  );
};

const numberOf = (t: TF.Tensor): number => (t.dataSync() as Float32Array)[0] ?? Number.NaN;

/** The step of `task`: its own, or the default forward. */
export const stepper = (task: StepTask) => {
  const { tf, model } = task;
  const metricNames = Object.keys(task.metrics ?? {});

  /** Loss and metrics of one batch's predictions, as plain numbers. */
  const measure = (yTrue: TF.Tensor, yPred: TF.Tensor): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const k of metricNames) {
      const fn = task.metrics?.[k];
      if (fn !== undefined) out[k] = tf.tidy(() => numberOf(fn(yTrue, yPred)));
    }
    return out;
  };

  const forward: StepFn =
    task.step ??
    ((batch, { training }) => {
      if (model === undefined) throw new TypeError('no model and no task.step');
      const pred = model.apply(single(batch.x, 'the inputs'), { training }) as TF.Tensor;
      if (task.loss === undefined) throw new TypeError('no task.loss and no task.step');
      return { loss: task.loss(single(batch.y, 'the targets'), pred), pred };
    });

  /** The step's metrics as numbers: its own and `task.metrics` of its predictions. */
  const metricsOf = (batch: Batch, out: StepOutput): Record<string, number> => {
    const values: Record<string, number> = {};
    for (const [k, m] of Object.entries(out.metrics ?? {})) values[k] = numberOf(m);
    if (metricNames.length > 0) {
      if (out.pred === undefined) {
        throw new TypeError('task.metrics need the predictions: return pred from task.step');
      }
      Object.assign(values, measure(single(batch.y, 'the targets'), out.pred));
    }
    return values;
  };

  /** One training batch: its values and the gradients of `variables` (the caller disposes them). */
  const train = (
    batch: Batch,
    state: RunnerState,
    variables: readonly TF.Variable[],
  ): { values: Record<string, number>; grads: Record<string, TF.Tensor>; size: number } =>
    tf.tidy(() => {
      let metrics: Record<string, number> = {};
      const { value, grads } = tf.variableGrads(() => {
        const out = forward(batch, { training: true, state });
        metrics = metricsOf(batch, out);
        return out.loss;
      }, variables as TF.Variable[]);
      return { values: { loss: numberOf(value), ...metrics }, grads, size: rowsOf(batch.x) };
    });

  /** One evaluation batch: its values, and its predictions kept when `keep` (the caller disposes them). */
  const evaluate = (
    batch: Batch,
    state: RunnerState,
    keep: boolean,
  ): { values: Record<string, number>; pred: TF.Tensor | undefined } =>
    tf.tidy(() => {
      const out = forward(batch, { training: false, state });
      const values = { loss: numberOf(out.loss), ...metricsOf(batch, out) };
      return { values, pred: keep && out.pred !== undefined ? tf.keep(out.pred) : undefined };
    });

  return { train, evaluate };
};
