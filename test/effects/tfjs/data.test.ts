/**
 * Data besides in-memory tensors, and the custom step, with a real tfjs model: a split given as
 * `{ batches: (pass) => tf.data... }` (exact resume inside an epoch), an async generator for
 * evaluation, bare arrays, datasets and iterators (and the clear errors where a resume cannot be
 * exact), a stream of unknown size; `task.step` for a model with two inputs and for plain
 * variables without a model; a throwing step as a `TrainFailed`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { f1Macro } from '../../../src/effects/tfjs/epochMetrics.js';
import type { Batch, Pass, StepFn, TfjsHooks } from '../../../src/effects/tfjs/trainTfjs.js';
import { evaluate, trainTfjs, type TfjsTask } from '../../../src/effects/tfjs/trainTfjs.js';
import { createRunner } from '../../../src/effects/shell/runner.js';
import { dir, results } from '../../../src/state/runner/selectors.js';
import { runTask, splits, train } from './harness.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-data-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const rowsOf = (t: tf.Tensor): number[][] => t.arraySync() as number[][];
const xs = rowsOf(splits.train.x);
const ys = rowsOf(splits.train.y);

/** The training split as a tf.data pipeline shuffled from the pass's seed, in batches of 4. */
const seededTrain = (passes: Pass[] = []) => ({
  size: 40,
  batchSize: 4,
  batches: (pass: Pass) => {
    passes.push(pass);
    return tf.data
      .zip({ xs: tf.data.array(xs), ys: tf.data.array(ys) })
      .shuffle(40, String(pass.seed))
      .batch(4);
  },
});

/** The validation split as an async generator of { x, y } batches of 5, made for each pass. */
const valBatches = {
  batches: () =>
    (async function* () {
      await Promise.resolve();
      const x = rowsOf(splits.val.x);
      const y = rowsOf(splits.val.y);
      for (let i = 0; i < x.length; i += 5) {
        yield { x: tf.tensor2d(x.slice(i, i + 5)), y: tf.tensor2d(y.slice(i, i + 5)) };
      }
    })(),
};

const readRows = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { split: string; step: number; metrics: Record<string, number> });

describe('a split as batches made from the pass seed', () => {
  it('stopped inside an epoch and resumed: bitwise equal, with a cosine schedule and an epoch metric as the score', async () => {
    const config = {
      projectRoot: root,
      epochEnd: 3,
      scoreName: 'f1',
      schedule: { kind: 'cosine', warmupSteps: 4, minLr: 0.001 },
    };
    const passes: Pass[] = [];
    const task =
      (hooks: TfjsHooks = {}) =>
      () => ({
        splits: { train: seededTrain(passes), val: valBatches },
        epochMetrics: { f1: f1Macro },
        hooks,
      });
    const straight = await train({ ...config, name: 'straight' }, { task: task() });
    expect(straight.outcome.state.progress).toMatchObject({ epoch: 2, step: 30 });
    // Each epoch's order comes from a seed drawn from the run's random stream.
    const seeds = passes.map((p) => p.seed);
    expect(new Set(seeds).size).toBe(3);

    passes.length = 0;
    const stopAt: TfjsHooks = {
      stepEnd: (s, c) => {
        if (s.progress.step === 13) c.runner.requestStop('SIGTERM');
      },
    };
    const stopped = await train({ ...config, name: 'resumed' }, { task: task(stopAt) });
    expect(stopped.outcome.reason).toBe('interrupted');
    expect(stopped.outcome.state.progress).toMatchObject({ epoch: 1, step: 13 });
    const resumed = await train({ ...config, name: 'resumed', autoResume: true }, { task: task() });
    expect(resumed.outcome.reason).toBe('epochEnd');
    // The resume made epoch 1's pass again from the same seed and skipped its first 3 batches.
    expect(passes.map((p) => p.seed)).toEqual([seeds[0], seeds[1], seeds[1], seeds[2]]);
    expect(resumed.weights).toEqual(straight.weights);
    expect(resumed.outcome.state.results).toEqual(straight.outcome.state.results);
    expect(resumed.outcome.state.rng).toEqual(straight.outcome.state.rng);
    expect(resumed.outcome.state.splits['train']).toEqual({ size: 40, batchSize: 4 });
    const f1s = results(resumed.outcome.state).map(
      (h) => (h.result['val'] as Record<string, number>)['f1'] ?? Number.NaN,
    );
    expect(f1s.every((x) => x >= 0 && x <= 1)).toBe(true);
  }, 60_000);

  it('the same batches as arrays, tensors in memory and a stream of unknown size train alike', async () => {
    // An array of batches in a fixed order; the same order as a generator of unknown size.
    const fixed = Array.from({ length: 10 }, (_, i) => ({
      x: splits.train.x.slice(i * 4, 4),
      y: splits.train.y.slice(i * 4, 4),
    }));
    const copy = (b: Batch): Batch => ({
      x: (b.x as tf.Tensor).clone(),
      y: (b.y as tf.Tensor).clone(),
    });
    const array = await train(
      { projectRoot: root, name: 'array', epochEnd: 2, logInterval: 5 },
      { task: () => ({ splits: { train: fixed.map(copy), val: splits.val } }) },
    );
    const unknown = await train(
      { projectRoot: root, name: 'unknown', epochEnd: 2, logInterval: 5 },
      {
        task: () => ({
          splits: {
            train: {
              batches: function* () {
                for (const b of fixed) yield copy(b);
              },
            },
            val: splits.val,
          },
        }),
      },
    );
    expect(unknown.weights).toEqual(array.weights);
    expect(unknown.outcome.state.results).toEqual(array.outcome.state.results);
    // The size is counted by the first pass and registered: the first epoch's step lines say
    // `?`, the second's the number of batches.
    const lines = unknown.records.map((r) => r.msg).filter((m) => m.startsWith('training on'));
    expect(lines[0]).toContain('[5/?]');
    expect(lines.at(-1)).toContain('[10/10]');
    expect(unknown.outcome.state.splits['train']).toEqual({ size: 40, batchSize: 4 });
    const rows = readRows(join(dir(unknown.outcome.state), 'metrics.jsonl'));
    const losses = rows.filter((r) => r.split === 'train' && 'loss' in r.metrics);
    expect(losses.map((r) => r.step)).toEqual([5, 10, 15, 20]);
  }, 60_000);
});

describe('where a resume cannot be exact, or the data is used up', () => {
  it('a bare tf.data.Dataset stopped inside an epoch: the resume is refused with the fix', async () => {
    const dataset = () => tf.data.zip({ xs: tf.data.array(xs), ys: tf.data.array(ys) }).batch(4);
    const stopAt: TfjsHooks = {
      stepEnd: (s, c) => {
        if (s.progress.step === 3) c.runner.requestStop('SIGTERM');
      },
    };
    const config = { projectRoot: root, name: 'bare', epochEnd: 2 };
    const stopped = await train(config, {
      task: () => ({ splits: { train: dataset(), val: splits.val }, hooks: stopAt }),
    });
    expect(stopped.outcome.reason).toBe('interrupted');
    const resumed = await runTask(
      { ...config, autoResume: true },
      { task: () => ({ splits: { train: dataset(), val: splits.val } }) },
    );
    expect(E.isLeft(resumed.outcome) && resumed.outcome.left.message).toContain(
      'splits.train is a bare dataset or iterator, which danling cannot replay in the same order: give it as { batches: ({ seed }) => dataset.shuffle(n, String(seed)) }',
    );
  }, 60_000);

  it('a generator given once is used up after one pass: a TrainFailed naming the fix', async () => {
    const once = (function* () {
      for (let i = 0; i < 40; i += 4) {
        yield { x: splits.train.x.slice(i, 4), y: splits.train.y.slice(i, 4) };
      }
    })();
    const r = await runTask(
      { projectRoot: root, name: 'once', epochEnd: 3 },
      { task: () => ({ splits: { train: once, val: splits.val } }) },
    );
    expect(E.isLeft(r.outcome) && r.outcome.left.message).toBe(
      'trainTfjs: splits.train gave no batches in epoch 1 (an iterator or generator is used up after one pass: give { batches: (pass) => ... } making a new one each pass)',
    );
    expect(r.runner.state.results.entries.size).toBe(1);
  }, 60_000);

  it('a cosine schedule over a stream of unknown size without stepEnd: says what to set', async () => {
    const r = await runTask(
      { projectRoot: root, name: 'cos', epochEnd: 2, schedule: { kind: 'cosine' } },
      { task: () => ({ splits: { train: { batches: () => [] }, val: splits.val } }) },
    );
    expect(E.isLeft(r.outcome) && r.outcome.left.message).toContain(
      "a cosine schedule needs the run's length in steps, and the size of splits.train is unknown: set schedule.totalSteps or stepEnd",
    );
  });

  it('a split that is not data: the field and the forms it can take', async () => {
    const r = await runTask(
      { projectRoot: root, name: 'bad', epochEnd: 1 },
      { task: () => ({ splits: { train: splits.train, val: { x: 1, y: 2 } as never } }) },
    );
    expect(E.isLeft(r.outcome) && r.outcome.left.message).toBe(
      'trainTfjs: splits.val: expected { x, y } tensors, { batches: (pass) => ... }, a tf.data.Dataset or an iterable of { x, y } batches',
    );
  });
});

describe('a custom step', () => {
  it('the default forward written as a step trains bitwise the same', async () => {
    const config = { projectRoot: root, epochEnd: 2 };
    const plain = await train({ ...config, name: 'plain' });
    const stepped = await runTask(
      { ...config, name: 'stepped' },
      {
        task: (runner) => {
          const model = (runner.parts['model'] as unknown as { model: tf.LayersModel }).model;
          const step: StepFn = ({ x, y }, { training }) => {
            const pred = model.apply(x as tf.Tensor, { training }) as tf.Tensor;
            return { loss: tf.losses.softmaxCrossEntropy(y as tf.Tensor, pred), pred };
          };
          return { step };
        },
      },
    );
    expect(E.isRight(stepped.outcome)).toBe(true);
    expect(stepped.weights).toEqual(plain.weights);
  }, 60_000);

  it('a model with two inputs and a metric of its own', async () => {
    const a = tf.input({ shape: [2], name: 'a' });
    const b = tf.input({ shape: [2], name: 'b' });
    const joined = tf.layers.concatenate().apply([a, b]) as tf.SymbolicTensor;
    const out = tf.layers
      .dense({
        units: 3,
        name: 'out',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      })
      .apply(joined) as tf.SymbolicTensor;
    const model = tf.model({ inputs: [a, b], outputs: out });
    const split = (x: tf.Tensor, y: tf.Tensor) => ({
      x: [x.slice([0, 0], [-1, 2]), x.slice([0, 2], [-1, 2])],
      y,
    });
    const step: StepFn = ({ x, y }, { training }) => {
      const pred = model.apply(x as tf.Tensor[], { training }) as tf.Tensor;
      const hit = tf.equal(tf.argMax(y as tf.Tensor, -1), tf.argMax(pred, -1));
      return {
        loss: tf.losses.softmaxCrossEntropy(y as tf.Tensor, pred),
        metrics: { hit: tf.mean<tf.Scalar>(tf.cast(hit, 'float32')) },
        pred,
      };
    };
    const started = await createRunner(
      {
        projectRoot: root,
        name: 'two',
        epochEnd: 30,
        seed: 1,
        log: false,
        dataloader: { batchSize: 8 },
      },
      { signals: false },
    );
    if (E.isLeft(started)) throw new Error(started.left.message);
    const runner = started.right;
    const r = await trainTfjs(runner, {
      tf,
      model,
      optimizer: tf.train.adam(0.05),
      step,
      epochMetrics: { f1: f1Macro },
      splits: {
        train: split(splits.train.x, splits.train.y),
        val: split(splits.val.x, splits.val.y),
      },
      save: false,
    });
    if (E.isLeft(r)) throw new Error(r.left.message);
    const history = results(runner.state);
    const first = history[0]?.result['train'] as Record<string, number>;
    const last = history.at(-1)?.result['train'] as Record<string, number>;
    expect(Object.keys(last)).toEqual(['loss', 'hit']);
    expect(last['loss']).toBeLessThan((first['loss'] ?? 0) * 0.9);
    expect(last['hit']).toBeGreaterThanOrEqual(0);
    expect(last['hit']).toBeLessThanOrEqual(1);
    expect(Object.keys(history.at(-1)?.result['val'] ?? {})).toEqual(['loss', 'hit', 'f1']);
    expect(E.isRight(await runner.close())).toBe(true);
  }, 60_000);

  it('plain variables without a model (y = 3x - 1), and a step that throws is a TrainFailed', async () => {
    const w = tf.variable(tf.scalar(0), true, 'w');
    const b = tf.variable(tf.scalar(0), true, 'b');
    const x = tf.linspace(-1, 1, 32).reshape([32, 1]);
    const y = x.mul(3).sub(1);
    const started = await createRunner(
      {
        projectRoot: root,
        name: 'line',
        epochEnd: 60,
        seed: 1,
        log: false,
        dataloader: { batchSize: 8 },
      },
      { signals: false },
    );
    if (E.isLeft(started)) throw new Error(started.left.message);
    const runner = started.right;
    const task = {
      tf,
      optimizer: tf.train.sgd(0.2),
      variables: [w, b],
      step: (({ x: bx, y: by }) => ({
        loss: tf.losses.meanSquaredError(by as tf.Tensor, (bx as tf.Tensor).mul(w).add(b)),
      })) as StepFn,
      splits: { train: { x, y } },
      save: false,
    };
    const r = await trainTfjs(runner, task);
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(w.dataSync()[0]).toBeCloseTo(3, 2);
    expect(b.dataSync()[0]).toBeCloseTo(-1, 2);

    expect(E.isRight(await runner.close())).toBe(true);
    const again = await createRunner(
      { projectRoot: root, name: 'line2', epochEnd: 1, seed: 1, log: false },
      { signals: false },
    );
    if (E.isLeft(again)) throw new Error(again.left.message);
    const broken = await trainTfjs(again.right, {
      ...task,
      step: () => {
        throw new Error('shapes do not match');
      },
    });
    expect(E.isLeft(broken) && broken.left.message).toBe('trainTfjs: shapes do not match');
    expect(E.isRight(await again.right.close())).toBe(true);
  }, 60_000);
});

describe('phases: several optimizers in turn', () => {
  const twoPlayers = (root: string, name: string, config: object = {}) => {
    const a = tf.variable(tf.scalar(0), true, `${name}-a`);
    const b = tf.variable(tf.scalar(0), true, `${name}-b`);
    const d = tf.train.sgd(0.5);
    const g = tf.train.sgd(0.5);
    const parts = {
      a: {
        stateDict: () =>
          Promise.resolve({ json: { a: a.dataSync()[0] ?? 0, b: b.dataSync()[0] ?? 0 } }),
        loadStateDict: (sd: { json?: unknown }) => {
          const j = sd.json as { a: number; b: number };
          a.assign(tf.scalar(j.a));
          b.assign(tf.scalar(j.b));
        },
      },
    };
    return {
      a,
      b,
      d,
      g,
      parts,
      config: {
        projectRoot: root,
        name,
        seed: 1,
        log: true,
        dataloader: { batchSize: 2 },
        ...config,
      },
    };
  };

  it("the second phase trains against the first's update of the same step; values and rates are prefixed", async () => {
    const p = twoPlayers(root, 'gan', { epochEnd: 1, stepEnd: 1, logInterval: 1 });
    const started = await createRunner(p.config, { signals: false, parts: p.parts });
    if (E.isLeft(started)) throw new Error(started.left.message);
    const runner = started.right;
    const x = tf.zeros([8, 1]);
    const task: TfjsTask = {
      tf,
      phases: [
        // d: (a - 1)^2, one SGD step of 0.5 takes a from 0 to 1.
        {
          name: 'd',
          optimizer: p.d,
          variables: [p.a],
          step: () => ({ loss: tf.square<tf.Scalar>(p.a.sub(1)) }),
        },
        // g: (b - a)^2 with a already 1: b goes from 0 to 1 (against the old a it would stay 0).
        {
          name: 'g',
          optimizer: p.g,
          variables: [p.b],
          step: () => ({ loss: tf.square<tf.Scalar>(p.b.sub(p.a)) }),
        },
      ],
      splits: { train: { x, y: x } },
      save: false,
    };
    const r = await trainTfjs(runner, task);
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(p.a.dataSync()[0]).toBe(1);
    expect(p.b.dataSync()[0]).toBe(1);
    // evaluate runs each phase's step too, its values prefixed: (1 - 1)^2 and (1 - 1)^2.
    const evaluated = await evaluate(runner, task, 'train', { write: false });
    expect(E.isRight(evaluated) && evaluated.right).toEqual({ 'd/loss': 0, 'g/loss': 0 });
    const rows = readRows(join(dir(runner.state), 'metrics.jsonl'));
    const tags = rows.flatMap((row) => Object.keys(row.metrics).map((k) => `${row.split}/${k}`));
    expect(tags).toEqual(
      expect.arrayContaining(['train/d/loss', 'train/g/loss', 'train/d/lr', 'train/g/lr']),
    );
    expect(E.isRight(await runner.close())).toBe(true);
  }, 60_000);

  it('phases without names of their own: says so', async () => {
    const p = twoPlayers(root, 'names', { epochEnd: 1 });
    const started = await createRunner(p.config, { signals: false });
    if (E.isLeft(started)) throw new Error(started.left.message);
    const step: StepFn = () => ({ loss: tf.square<tf.Scalar>(p.a) });
    const r = await trainTfjs(started.right, {
      tf,
      phases: [
        { name: 'd', optimizer: p.d, variables: [p.a], step },
        { name: 'd', optimizer: p.g, variables: [p.b], step },
      ],
      splits: { train: { x: tf.zeros([2, 1]), y: tf.zeros([2, 1]) } },
    });
    expect(E.isLeft(r) && r.left.message).toBe(
      'trainTfjs: task.phases: give at least one phase, each with a name of its own (got ["d","d"])',
    );
    expect(E.isRight(await started.right.close())).toBe(true);
  });
});
