/**
 * evaluate, predict and restoreBest with a real tfjs model.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { evaluate, predict, trainTfjs } from '../../../src/effects/tfjs/trainTfjs.js';
import { createRunner } from '../../../src/effects/shell/runner.js';
import { accuracy } from '../../../src/effects/tfjs/epochMetrics.js';
import { bestIndex, latestResult } from '../../../src/state/runner/selectors.js';
import type { Runner } from '../../../src/effects/shell/runner.js';
import { buildModel, features, labels, runTask, splits, train } from './harness.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-evaluate-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('evaluate and predict', () => {
  it('evaluate gives the loop evaluation of a split again, and a new split; predict batches', async () => {
    const test = { x: features(10, 300), y: labels(10, 300) };
    let checked = false;
    await train(
      { projectRoot: root, name: 'eval', epochEnd: 2 },
      {
        task: () => ({ epochMetrics: { acc: accuracy } }),
        after: async (runner, task) => {
          const val = await evaluate(runner, task, 'val');
          if (E.isLeft(val)) throw new Error(val.left.message);
          expect(val.right).toEqual(latestResult(runner.state)?.['val']);
          expect(runner.state.mode).toBe('eval');
          const withTest = { ...task, splits: { ...task.splits, test } };
          const t = await evaluate(runner, withTest, 'test', { write: false });
          if (E.isLeft(t)) throw new Error(t.left.message);
          expect(Object.keys(t.right)).toEqual(['loss', 'acc']);
          expect(runner.state.splits['test']).toEqual({ size: 10, batchSize: 4 });
          const missing = await evaluate(runner, task, 'test');
          expect(E.isLeft(missing) && missing.left.message).toContain('no "test" split');

          const p = predict(runner, task, splits.val.x);
          if (E.isLeft(p)) throw new Error(p.left.message);
          const whole = task.model.predict(splits.val.x) as tf.Tensor;
          expect(p.right.shape).toEqual([12, 3]);
          Array.from(p.right.dataSync()).forEach((v, i) => {
            expect(v).toBeCloseTo(whole.dataSync()[i] ?? Number.NaN, 6);
          });
          expect(accuracy(splits.val.y, p.right)).toBe(accuracy(splits.val.y, whole));
          p.right.dispose();
          whole.dispose();
          const bad = predict(runner, task, tf.zeros([3, 7]));
          expect(E.isLeft(bad)).toBe(true);
          checked = true;
        },
      },
    );
    expect(checked).toBe(true);
  }, 60_000);
});

describe('restoreBest', () => {
  // A score that makes epoch 0 the best of three.
  const probe = (runner: Runner) => () => [0.9, 0.1, 0.5][runner.state.progress.epoch] ?? 0;

  it('loads the best checkpoint weights at the end: those of a run stopped after that epoch', async () => {
    const best = await train(
      { projectRoot: root, name: 'best', scoreName: 'probe', scoreMode: 'max' },
      { task: (runner) => ({ epochMetrics: { probe: probe(runner) }, restoreBest: true }) },
    );
    expect(bestIndex(best.outcome.state)).toBe(0);
    expect(best.outcome.restoredFrom).toMatch(/best\.safetensors$/);
    expect(best.records.map((r) => r.msg)).toContainEqual(
      expect.stringMatching(/^restored the best weights \(epoch 0\) from .*best\.safetensors$/),
    );
    const oneEpoch = await train({ projectRoot: root, name: 'one', epochEnd: 1 });
    expect(best.weights).toEqual(oneEpoch.weights);
    const last = await train(
      { projectRoot: root, name: 'last', scoreName: 'probe', scoreMode: 'max' },
      { task: (runner) => ({ epochMetrics: { probe: probe(runner) } }) },
    );
    expect(last.weights).not.toEqual(best.weights);
  }, 60_000);

  it('without a best checkpoint the model keeps its weights, with a warning', async () => {
    const r = await runTask(
      { projectRoot: root, name: 'nosave', epochEnd: 1 },
      { task: () => ({ restoreBest: true, save: false }) },
    );
    expect(E.isRight(r.outcome) && r.outcome.right.restoredFrom).toBe(undefined);
    expect(r.records).toContainEqual(
      expect.objectContaining({ warning: 'BestWeightsUnavailable' }),
    );
  }, 60_000);
});

describe('the model and optimizer from the parts', () => {
  it('without task.model and no model part, each of trainTfjs, evaluate and predict says how to give one', async () => {
    const started = await createRunner(
      { projectRoot: root, name: 'noparts', epochEnd: 1, seed: 1, log: false },
      { signals: false },
    );
    if (E.isLeft(started)) throw new Error(started.left.message);
    const runner = started.right;
    const task = { tf, loss: tf.losses.softmaxCrossEntropy, splits };
    const trained = await trainTfjs(runner, task);
    expect(E.isLeft(trained) && trained.left.message).toBe(
      'trainTfjs: no model: pass task.model, or build the runner with parts: { model: modelPart(tf, model) }',
    );
    const evaluated = await evaluate(runner, task, 'val');
    expect(E.isLeft(evaluated) && evaluated.left.message).toContain('evaluate: no model');
    const predicted = predict(runner, task, splits.val.x);
    expect(E.isLeft(predicted) && predicted.left.message).toContain('predict: no model');
    // A model part without an optimizer part: the optimizer is named.
    const model = buildModel();
    const withModel = await trainTfjs(runner, { ...task, model });
    expect(E.isLeft(withModel) && withModel.left.message).toContain(
      'no optimizer: pass task.optimizer, or build the runner with parts: { optimizer: optimizerPart(tf, optimizer) }',
    );
    expect(E.isRight(await runner.close())).toBe(true);
  });
});
