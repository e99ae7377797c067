/**
 * Epoch metrics for `TfjsTask.epochMetrics`: functions of all targets and predictions of a split
 * (`(yTrue, yPred) => number`), computed once per evaluated split per epoch, so they are exact
 * where an average of batch values is not. Thin wrappers over the pure array versions in
 * `src/state/runner/epochMetrics.ts`.
 */
import type * as TF from '@tensorflow/tfjs';
import * as pure from '../../state/runner/epochMetrics.js';

/** A function of a whole split's targets and predictions giving one number. */
export type EpochMetricFn = (yTrue: TF.Tensor, yPred: TF.Tensor) => number;

const matrix = (t: TF.Tensor): pure.Matrix => {
  const rows = t.rank === 0 ? 1 : t.shape[0];
  return { data: t.dataSync(), rows, cols: rows === 0 ? 0 : t.size / rows };
};

/**
 * Class indices of a tensor: argmax of the last axis for a `[n, k]` tensor with `k > 1`
 * (one-hot targets, logits, probabilities), else the values themselves (`[n]` or `[n, 1]`
 * indices; a `[n, 1]` or `[n]` float prediction is thresholded at 0.5).
 */
const classes = (t: TF.Tensor, predicted: boolean): ArrayLike<number> => {
  const k = t.rank >= 2 ? (t.shape.at(-1) ?? 1) : 1;
  if (k > 1) {
    const idx = t.argMax(-1);
    const out = idx.dataSync();
    idx.dispose();
    return out;
  }
  const v = t.dataSync();
  return predicted && t.dtype === 'float32' ? Array.from(v, (x) => (x > 0.5 ? 1 : 0)) : v;
};

/** R² (coefficient of determination), averaged over output columns (scikit-learn's `r2_score`). */
export const r2Score: EpochMetricFn = (yTrue, yPred) => pure.r2(matrix(yTrue), matrix(yPred));

/**
 * ROC AUC of a binary task, ties counting one half: targets 0/1 as `[n]` or `[n, 1]` (or one-hot
 * `[n, 2]`), scores as `[n]` / `[n, 1]` (or `[n, 2]`: the second column).
 */
export const auc: EpochMetricFn = (yTrue, yPred) => {
  const column = (t: TF.Tensor): ArrayLike<number> => {
    if (t.rank === 2 && t.shape[1] === 2) {
      const c = t.slice([0, 1], [-1, 1]);
      const v = c.dataSync();
      c.dispose();
      return v;
    }
    return t.dataSync();
  };
  return pure.auc(column(yTrue), column(yPred));
};

/** Macro F1 over the classes present (argmax of one-hot targets and of the predictions). */
export const f1Macro: EpochMetricFn = (yTrue, yPred) =>
  pure.f1Macro(classes(yTrue, false), classes(yPred, true));

/** Accuracy over the whole split (argmax of one-hot targets and of the predictions). */
export const accuracy: EpochMetricFn = (yTrue, yPred) =>
  pure.accuracy(classes(yTrue, false), classes(yPred, true));
