/**
 * A small real tfjs classification task for the loop's tests: a two-layer MLP built from fixed
 * seeds, a runner in a temporary folder (no signal handlers, an in-memory logger) and trainTfjs.
 */
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { modelPart, optimizerPart } from '../../../src/effects/tfjs/tfjs.js';
import { trainTfjs, type TfjsTask } from '../../../src/effects/tfjs/trainTfjs.js';
import { createRunner, type Runner } from '../../../src/effects/shell/runner.js';

export const features = (n: number, offset: number): tf.Tensor2D =>
  tf.tensor2d(
    Array.from({ length: n }, (_, i) => [0, 1, 2, 3].map((j) => Math.sin((i + offset) * (j + 1)))),
  );
export const labels = (n: number, offset: number): tf.Tensor2D =>
  tf.oneHot(
    tf.tensor1d(
      Array.from({ length: n }, (_, i) => (i + offset) % 3),
      'int32',
    ),
    3,
  ) as tf.Tensor2D;

export const splits = {
  train: { x: features(40, 0), y: labels(40, 0) },
  val: { x: features(12, 100), y: labels(12, 100) },
};

export const buildModel = (): tf.LayersModel =>
  tf.sequential({
    layers: [
      tf.layers.dense({
        name: 'hidden',
        units: 6,
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

export interface RunOptions {
  readonly optimizer?: () => tf.Optimizer;
  /** Task fields over the default (loss, splits). */
  readonly task?: (runner: Runner) => Partial<TfjsTask>;
  /** Runs after training, before close. */
  readonly after?: (runner: Runner, task: TfjsTask & { model: tf.LayersModel }) => Promise<void>;
}

/** Starts a runner on `config`, trains, runs `after`, closes. */
export const runTask = async (config: object, options: RunOptions = {}) => {
  let model: tf.LayersModel | undefined;
  let optimizer: tf.Optimizer | undefined;
  const records: { msg: string; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write: (chunk: Buffer, _e, done) => {
        records.push(JSON.parse(chunk.toString()) as { msg: string });
        done();
      },
    }),
  );
  const started = await createRunner(
    { epochEnd: 3, seed: 5, dataloader: { batchSize: 4 }, log: false, ...config },
    {
      logger,
      signals: false,
      parts: () => {
        model = buildModel();
        optimizer = options.optimizer?.() ?? tf.train.adam(0.05);
        return { model: modelPart(tf, model), optimizer: optimizerPart(tf, optimizer) };
      },
    },
  );
  if (E.isLeft(started)) throw new Error(started.left.message);
  const runner = started.right;
  if (model === undefined || optimizer === undefined) throw new Error('no parts');
  // The model and optimizer are taken from the runner's parts.
  const task: TfjsTask = {
    tf,
    loss: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
    splits,
    ...options.task?.(runner),
  };
  const outcome = await trainTfjs(runner, task);
  await options.after?.(runner, { ...task, model });
  const closed = await runner.close();
  const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
  return { outcome, closed, weights, records, runner, model, optimizer };
};

/** {@link runTask}, expecting a clean end. */
export const train = async (config: object, options: RunOptions = {}) => {
  const r = await runTask(config, options);
  if (E.isLeft(r.closed)) throw new Error(r.closed.left.message);
  if (E.isLeft(r.outcome)) throw new Error(r.outcome.left.message);
  return { ...r, outcome: r.outcome.right };
};
