/**
 * A second example: a small convolutional network on MNIST digits (shipped as JSON by the
 * `mnist` package, about 10,000 of them; nothing is downloaded) with danling's runner and
 * TensorFlow.js's pure-JS CPU backend. It shows a cosine learning-rate schedule with warm-up, an
 * epoch metric as the score, a hook, and the best weights restored, evaluated on a held-out test
 * split and used for predictions at the end.
 *
 *   npm run mnist                                  # config examples/mnist.yaml
 *   npm run mnist -- --autoResume true             # continues the last run of this config
 *   npm run mnist -- --data.train 500 --epochEnd 2 --schedule.warmupSteps 5
 *
 * In your own project, import from 'danling', 'danling/effects' and 'danling/tfjs' instead of
 * '../src/...'.
 */
import * as tf from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import mnist from 'mnist';
import { constants } from 'node:os';
import { getIn, type JsonObject, type RunnerState } from '../src/index.js';
import { createRunner, readConfigArgs } from '../src/effects/index.js';
import {
  accuracy,
  evaluate,
  f1Macro,
  modelPart,
  optimizerPart,
  predict,
  trainTfjs,
  type SplitData,
  type TfjsHooks,
  type TfjsTask,
} from '../src/effects/tfjs/index.js';

const fail = (message: string): never => {
  process.stderr.write(`mnist: ${message}\n`);
  process.exit(2);
};

// The config: examples/mnist.yaml (or the files given), then --key value overrides.
const read = await readConfigArgs(process.argv.slice(2), { defaults: ['examples/mnist.yaml'] });
const input = E.isRight(read) ? read.right : fail(read.left.message);

await tf.setBackend('cpu');

/** A positive integer of the config (its own keys: data, model, optim), or the default. */
const intOf = (config: JsonObject, path: string, fallback: number): number => {
  const v = getIn(config, path);
  if (v === undefined) return fallback;
  return typeof v === 'number' && Number.isInteger(v) && v > 0
    ? v
    : fail(`${path}: expected a positive integer, got ${JSON.stringify(v)}`);
};
const numberOf = (config: JsonObject, path: string, fallback: number): number => {
  const v = getIn(config, path);
  if (v === undefined) return fallback;
  return typeof v === 'number' && v > 0
    ? v
    : fail(`${path}: expected a positive number, got ${JSON.stringify(v)}`);
};

// The model and optimizer are built once the seed is known (drawn if the config has none), as
// the runner's parts: the loop, evaluate and predict take them from there.
const buildParts = (state: RunnerState) => {
  const config = state.config as JsonObject;
  const seed = state.config.seed ?? 0;
  const filters = intOf(config, 'model.filters', 8);
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        name: 'conv',
        inputShape: [28, 28, 1],
        filters,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.maxPooling2d({ name: 'pool', poolSize: 2 }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({
        name: 'out',
        units: 10,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
  const optimizer = tf.train.adam(numberOf(config, 'optim.lr', 0.01));
  return { model: modelPart(tf, model), optimizer: optimizerPart(tf, optimizer) };
};

const started = await createRunner(input, { parts: buildParts });
if (E.isLeft(started)) fail(started.left.message);
const runner = E.isRight(started) ? started.right : fail('unreachable');
const config = runner.state.config as JsonObject;

// The data: the package's digits taken in a fixed order, one of each digit in turn (0, 1, ...,
// 9, 0, 1, ...), so every split is balanced and a run (and its resume) is reproducible; the
// first data.train go to training, the next data.val to validation, the next data.test to the
// test split. (The package's own `mnist.set` shuffles with Math.random.)
const sizes = {
  train: intOf(config, 'data.train', 2000),
  val: intOf(config, 'data.val', 1000),
  test: intOf(config, 'data.test', 1000),
};
const order: [digit: number, index: number][] = [];
for (let i = 0; mnist.some((d) => i < d.length); i++) {
  for (const d of mnist) if (i < d.length) order.push([d.id, i]);
}
const wanted = sizes.train + sizes.val + sizes.test;
if (wanted > order.length) {
  fail(`data.train + data.val + data.test is ${wanted}; the mnist package has ${order.length}`);
}
const pixels = 28 * 28;
const take = (start: number, n: number): SplitData => {
  const x = new Float32Array(n * pixels);
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const [digit, index] = order[start + k] ?? [0, 0];
    x.set((mnist[digit] ?? fail(`no digit ${digit}`)).get(index), k * pixels);
    labels[k] = digit;
  }
  return {
    x: tf.tensor4d(x, [n, 28, 28, 1]),
    y: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10)),
  };
};
const splits = {
  train: take(0, sizes.train),
  val: take(sizes.train, sizes.val),
};
const test = take(sizes.train + sizes.val, sizes.test);

/** Per class: how many, how many right, and the class it is most often mistaken for. */
const confusion = (yTrue: tf.Tensor, logits: tf.Tensor) => {
  const truth = tf.tidy(() => yTrue.argMax(-1).dataSync());
  const guess = tf.tidy(() => logits.argMax(-1).dataSync());
  const counts = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  truth.forEach((t, i) => {
    const row = counts[t];
    const g = guess[i] ?? 0;
    if (row !== undefined) row[g] = (row[g] ?? 0) + 1;
  });
  return counts.map((row, digit) => {
    const total = row.reduce((a, b) => a + b, 0);
    const right = row[digit] ?? 0;
    let takenFor: number | undefined;
    row.forEach((c, g) => {
      if (g !== digit && c > 0 && (takenFor === undefined || c > (row[takenFor] ?? 0)))
        takenFor = g;
    });
    return {
      digit,
      total,
      recall: total === 0 ? 1 : right / total,
      takenFor,
      times: takenFor === undefined ? 0 : (row[takenFor] ?? 0),
    };
  });
};

// The hook: after each epoch, the validation digit the model gets wrong most often and what it
// takes it for (one prediction pass over the val split; it only logs, so it returns no actions
// and a resume or replay is not affected).
const hooks: TfjsHooks = {
  epochEnd: (_state, { runner: r, epoch }) => {
    const logits = predict(r, { tf }, splits.val.x);
    if (E.isLeft(logits)) {
      r.logger.warn({ epoch }, `worst digit: ${logits.left.message}`);
      return undefined;
    }
    const rows = confusion(splits.val.y, logits.right);
    logits.right.dispose();
    const worst = rows.reduce((a, b) => (b.recall < a.recall ? b : a));
    r.logger.info(
      { epoch, worst },
      `worst digit: ${worst.digit} (recall ${worst.recall.toFixed(3)})` +
        (worst.takenFor === undefined
          ? ''
          : `, taken for a ${worst.takenFor} in ${worst.times} of ${worst.total}`),
    );
    return undefined;
  },
};

const task: TfjsTask = {
  tf,
  loss: (y, logits) => tf.losses.softmaxCrossEntropy(y, logits),
  // Over the whole val split once an epoch (exact, unlike a batch average); accuracy is the
  // score (scoreName in mnist.yaml).
  epochMetrics: { accuracy, f1: f1Macro },
  splits,
  hooks,
  restoreBest: true,
};

/**
 * After training: the best epoch's weights (restoreBest) on the test split, which training never
 * saw, and the predictions for its first ten digits. A message when something failed; a stop
 * asked for during the test evaluation ends it like one during training.
 */
const testAndPredict = async (): Promise<E.Either<string, number | undefined>> => {
  const tested = await evaluate(runner, { ...task, splits: { ...splits, test } }, 'test');
  if (E.isLeft(tested)) {
    const e = tested.left;
    return e._tag === 'EvaluationInterrupted'
      ? E.right(128 + constants.signals[e.signal])
      : E.left(e.message);
  }
  const shown = Object.entries(tested.right)
    .map(([k, v]) => `${k} ${v.toFixed(4)}`)
    .join(', ');
  process.stdout.write(`test (${sizes.test} digits): ${shown}\n`);
  const n = Math.min(10, sizes.test);
  const first = test.x.slice(0, n);
  const logits = predict(runner, task, first);
  first.dispose();
  if (E.isLeft(logits)) return E.left(logits.left.message);
  const [probs, truth] = tf.tidy(() => [
    tf.softmax(logits.right).arraySync() as number[][],
    test.y.slice(0, n).argMax(-1).dataSync(),
  ]);
  logits.right.dispose();
  const lines = probs.map((row, i) => {
    const guess = row.indexOf(Math.max(...row));
    const mark = guess === truth[i] ? '' : '  (wrong)';
    return `  test digit ${i}: label ${truth[i] ?? '?'}, predicted ${guess} (p ${(row[guess] ?? 0).toFixed(3)})${mark}`;
  });
  process.stdout.write(`predictions:\n${lines.join('\n')}\n`);
  return E.right(undefined);
};

const outcome = await trainTfjs(runner, task);
// A graceful stop (Ctrl-C, SIGTERM, SIGUSR1) ends training with an exit code: no test then.
const after =
  E.isRight(outcome) && outcome.right.exitCode === undefined
    ? await testAndPredict()
    : E.right(undefined);
runner.printResult();
const closed = await runner.close();
if (E.isLeft(outcome)) fail(outcome.left.message);
if (E.isLeft(after)) fail(after.left);
if (E.isLeft(closed)) fail(closed.left.message);
// After a graceful stop latest is saved; exit as the signal would have.
const exitCode = E.isRight(outcome) ? outcome.right.exitCode : undefined;
if (exitCode !== undefined) process.exitCode = exitCode;
else if (E.isRight(after) && after.right !== undefined) process.exitCode = after.right;
