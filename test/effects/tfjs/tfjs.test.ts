import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { modelPart, optimizerPart } from '../../../src/effects/tfjs/tfjs.js';
import { saveCheckpoint, loadCheckpoint } from '../../../src/effects/run/runFiles.js';
import { createState } from '../../../src/state/runner/RunnerState.js';
import { checkpointDir } from '../../../src/state/runner/selectors.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-tfjs-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const build = (hidden = 8): tf.LayersModel =>
  tf.sequential({
    layers: [
      tf.layers.dense({
        name: 'hidden',
        units: hidden,
        activation: 'relu',
        inputShape: [4],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({
        name: 'out',
        units: 3,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });

const x = tf.tensor2d([
  [5.1, 3.5, 1.4, 0.2],
  [6.2, 2.9, 4.3, 1.3],
  [7.7, 3.0, 6.1, 2.3],
  [5.0, 3.4, 1.5, 0.2],
]);
const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3);

const trainStep = (model: tf.LayersModel, opt: tf.Optimizer): void => {
  opt.minimize(() =>
    tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, model.predict(x) as tf.Tensor),
  );
};

const weights = (model: tf.LayersModel): Float32Array[] =>
  model.getWeights().map((w) => w.dataSync() as Float32Array);

describe('tfjs parts', () => {
  it('save after 40 Adam steps, load into a fresh model, continue: bitwise equal to never stopping', async () => {
    const a = build();
    const optA = tf.train.adam(0.05);
    for (let i = 0; i < 40; i++) trainStep(a, optA);
    const state = createState({ projectRoot: root, epochEnd: 5 }, { timestamp: 'T' });
    const saved = await saveCheckpoint(state, {
      model: modelPart(tf, a),
      optimizer: optimizerPart(tf, optA),
    });
    expect(E.isRight(saved)).toBe(true);

    const b = build();
    const optB = tf.train.adam(0.05);
    const loaded = await loadCheckpoint(state, join(checkpointDir(state), 'latest.safetensors'), {
      parts: { model: modelPart(tf, b), optimizer: optimizerPart(tf, optB) },
    });
    if (E.isLeft(loaded)) throw new Error(loaded.left.message);
    expect(weights(b)).toEqual(weights(a));

    for (let i = 0; i < 5; i++) {
      trainStep(a, optA);
      trainStep(b, optB);
    }
    const [wa, wb] = [weights(a), weights(b)];
    wa.forEach((w, i) => {
      expect(
        Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(
          Buffer.from(wb[i]!.buffer, wb[i]!.byteOffset, wb[i]!.byteLength),
        ),
      ).toBe(true);
    });
  });

  it('a model of another shape is refused, naming the weight', async () => {
    const a = build(8);
    const state = createState({ projectRoot: root }, { timestamp: 'T' });
    await saveCheckpoint(state, { model: modelPart(tf, a) });
    const other = build(6);
    const before = weights(other);
    const r = await loadCheckpoint(state, join(checkpointDir(state), 'latest.safetensors'), {
      parts: { model: modelPart(tf, other) },
    });
    expect(E.isLeft(r) && r.left.message).toContain('hidden');
    expect(weights(other)).toEqual(before);
  });

  it.each([
    ['adam', () => tf.train.adam(0.01)],
    ['sgd', () => tf.train.sgd(0.01)],
    ['momentum', () => tf.train.momentum(0.01, 0.9)],
    ['rmsprop', () => tf.train.rmsprop(0.01)],
  ] as const)(
    'a state dict (%s and its model) leaves no tensor behind, and the slots still train',
    async (_name, make) => {
      const model = build();
      const opt = make();
      trainStep(model, opt);
      const parts = { model: modelPart(tf, model), optimizer: optimizerPart(tf, opt) };
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) {
        await parts.model.stateDict();
        await parts.optimizer.stateDict();
      }
      // getWeights() makes a new tensor of the iteration count at each call; a save a step
      // left one behind per save, which slowed every tensor op of a long run.
      expect(tf.memory().numTensors).toBe(before);
      trainStep(model, opt);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
      opt.dispose();
    },
  );
});
