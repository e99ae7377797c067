/**
 * A tfjs optimizer's learning rate, read and set (SGD and Momentum keep it as a scalar tensor
 * too), and gradient clipping by global norm and by value.
 */
import type * as TF from '@tensorflow/tfjs';

/** The fields of a tfjs optimizer that hold its rate (SGD and Momentum keep a scalar too). */
interface RateField {
  learningRate?: unknown;
  setLearningRate?: (lr: number) => void;
}

/** The optimizer's learning rate, when it has a numeric one. */
export const optimizerLr = (optimizer: TF.Optimizer): number | undefined => {
  const lr = (optimizer as unknown as RateField).learningRate;
  return typeof lr === 'number' ? lr : undefined;
};

/**
 * Sets a tfjs optimizer's rate: `setLearningRate` where the optimizer has one (SGD, Momentum:
 * they keep `-lr` as a scalar), else the `learningRate` field, which Adam, Adamax, RMSProp and
 * Adagrad read at every `applyGradients`. Nothing is done when the rate is unchanged.
 */
export const setOptimizerLr = (optimizer: TF.Optimizer, lr: number): void => {
  const o = optimizer as unknown as RateField;
  if (o.learningRate === lr) return;
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
};

/**
 * Gradient clipping as `config.clipNorm` / `config.clipValue` ask (TensorFlow's
 * `clip_by_global_norm`, then `clip_by_value`): with a global L2 norm `n` over all gradients
 * above `clipNorm`, each is scaled by `clipNorm / n`; then each value is clipped to
 * `[-clipValue, clipValue]`. Call inside `tf.tidy`.
 */
export const clipGradients = (
  tf: typeof TF,
  grads: Readonly<Record<string, TF.Tensor>>,
  clip: { readonly clipNorm?: number | undefined; readonly clipValue?: number | undefined },
): Record<string, TF.Tensor> => {
  let out: Record<string, TF.Tensor> = { ...grads };
  const { clipNorm, clipValue } = clip;
  if (clipNorm !== undefined) {
    const squares = Object.values(out).map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(squares.length === 1 ? (squares[0] as TF.Tensor) : tf.addN(squares));
    const scale = tf.div(clipNorm, tf.maximum(norm, clipNorm));
    const scaled: Record<string, TF.Tensor> = {};
    for (const [k, g] of Object.entries(out)) scaled[k] = tf.mul(g, scale);
    out = scaled;
  }
  if (clipValue !== undefined) {
    const clipped: Record<string, TF.Tensor> = {};
    for (const [k, g] of Object.entries(out)) clipped[k] = tf.clipByValue(g, -clipValue, clipValue);
    out = clipped;
  }
  return out;
};
