/**
 * Learning-rate schedules and gradient clipping in the loop, with a real tfjs model: the rate
 * the loop sets is the pure schedule's, the optimizer uses it (Adam's field, SGD's scalar), and
 * clipping bounds the update as a hand computation says.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { clipGradients, setOptimizerLr } from '../../../src/effects/tfjs/trainTfjs.js';
import { scheduledLr } from '../../../src/state/runner/schedule.js';
import { dir } from '../../../src/state/runner/selectors.js';
import { train } from './harness.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-schedule-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const lrRows = (state: Parameters<typeof dir>[0]) =>
  readFileSync(join(dir(state), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { split: string; step: number; metrics: { lr?: number } })
    .filter((r) => r.metrics.lr !== undefined)
    .map((r) => [r.step, r.metrics.lr] as const);

describe('a schedule in the loop', () => {
  it('sets the schedule rate before every step and logs it as train/lr', async () => {
    const schedule = { kind: 'cosine', warmupSteps: 5, minLr: 0.001 } as const;
    const r = await train({ projectRoot: root, name: 'cos', log: true, logInterval: 1, schedule });
    const rows = lrRows(r.outcome.state);
    expect(rows.length).toBe(30);
    for (const [step, lr] of rows) {
      // The row of step n holds the rate of the step that made it (n - 1 steps before it).
      expect(lr).toBe(
        scheduledLr(schedule, { baseLr: 0.05, step: step - 1, totalSteps: 30, reductions: 0 }),
      );
    }
    expect(rows[0]?.[1]).toBeCloseTo(0.001 + 0.049 / 6, 12);
    expect(rows[5]?.[1]).toBe(0.05);
    expect(rows.at(-1)?.[1]).toBeLessThan(0.002);
  }, 60_000);

  it('Adam and SGD train with the rate set: as if built with it', async () => {
    for (const [make, base] of [
      [(lr: number) => tf.train.adam(lr), 0.05],
      [(lr: number) => tf.train.sgd(lr), 0.5],
      [(lr: number) => tf.train.momentum(lr, 0.9), 0.5],
    ] as const) {
      const scheduled = await train(
        { projectRoot: root, name: 'set', epochEnd: 1, schedule: { kind: 'constant', lr: 0.01 } },
        { optimizer: () => make(base) },
      );
      const built = await train(
        { projectRoot: root, name: 'built', epochEnd: 1 },
        { optimizer: () => make(0.01) },
      );
      expect(scheduled.weights).toEqual(built.weights);
      const other = await train(
        { projectRoot: root, name: 'base', epochEnd: 1 },
        { optimizer: () => make(base) },
      );
      expect(other.weights).not.toEqual(built.weights);
    }
  }, 60_000);

  it('setOptimizerLr leaves an unchanged rate alone', () => {
    const sgd = tf.train.sgd(0.1);
    const c = (sgd as unknown as { c: tf.Scalar }).c;
    setOptimizerLr(sgd, 0.1);
    expect((sgd as unknown as { c: tf.Scalar }).c).toBe(c);
    setOptimizerLr(sgd, 0.2);
    expect((sgd as unknown as { c: tf.Scalar }).c.dataSync()[0]).toBeCloseTo(-0.2, 7);
  });
});

describe('gradient clipping', () => {
  it('clipGradients: global norm, then value, as computed by hand', () => {
    tf.tidy(() => {
      const grads = { a: tf.tensor1d([3, 4]), b: tf.tensor1d([12]) }; // global norm 13
      const byNorm = clipGradients(tf, grads, { clipNorm: 6.5 });
      expect(Array.from(byNorm['a']?.dataSync() ?? [])).toEqual([1.5, 2]);
      expect(Array.from(byNorm['b']?.dataSync() ?? [])).toEqual([6]);
      const both = clipGradients(tf, grads, { clipNorm: 6.5, clipValue: 1.8 });
      expect(Array.from(both['a']?.dataSync() ?? [])).toEqual([1.5, Math.fround(1.8)]);
      expect(Array.from(both['b']?.dataSync() ?? [])).toEqual([Math.fround(1.8)]);
      // Under the norm: unchanged.
      const under = clipGradients(tf, grads, { clipNorm: 20 });
      expect(Array.from(under['a']?.dataSync() ?? [])).toEqual([3, 4]);
    });
  });

  it('the loop clips the averaged gradients before the step (SGD, lr 1: the update is the gradient)', async () => {
    const initial = (
      await train(
        { projectRoot: root, name: 'init', epochEnd: 1, stepEnd: 1 },
        {
          optimizer: () => tf.train.sgd(0),
        },
      )
    ).weights;
    const step = async (extra: object) =>
      (
        await train(
          {
            projectRoot: root,
            name: `s${JSON.stringify(extra).replace(/\W/g, '')}`,
            epochEnd: 1,
            stepEnd: 1,
            ...extra,
          },
          { optimizer: () => tf.train.sgd(1) },
        )
      ).weights;
    const diff = (w: number[][]) =>
      w.flatMap((t, i) => t.map((x, j) => x - (initial[i]?.[j] ?? 0)));
    const raw = diff(await step({}));
    const rawNorm = Math.hypot(...raw);
    expect(rawNorm).toBeGreaterThan(0.05);
    const normed = diff(await step({ clipNorm: 0.05 }));
    expect(Math.hypot(...normed)).toBeCloseTo(0.05, 5);
    normed.forEach((d, i) => {
      expect(d).toBeCloseTo(((raw[i] ?? 0) * 0.05) / rawNorm, 5);
    });
    const valued = diff(await step({ clipValue: 0.01 }));
    valued.forEach((d, i) => {
      expect(d).toBeCloseTo(Math.max(-0.01, Math.min(0.01, raw[i] ?? 0)), 6);
    });
  }, 60_000);
});
