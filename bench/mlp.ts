/**
 * What the save benches share: the MLP they train (dense layers with named, seeded weights,
 * ReLU between, Adam at 0.001) and a stream that drops what is written (the progress bar).
 */
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs';

/** An output stream that drops everything. */
export const quiet = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});

/** An MLP of `layers` (inputs, hidden..., outputs) and its Adam optimizer. */
export const buildMlp = (layers: readonly number[]) => {
  const [input = 1, ...rest] = layers;
  const model = tf.sequential({
    layers: rest.map((units, i) =>
      tf.layers.dense({
        name: `d${i}`,
        units,
        ...(i === 0 ? { inputShape: [input] } : {}),
        ...(i < rest.length - 1 ? { activation: 'relu' as const } : {}),
        kernelInitializer: tf.initializers.glorotUniform({ seed: i + 1 }),
      }),
    ),
  });
  return { model, optimizer: tf.train.adam(0.001) };
};
