/**
 * Epoch metrics with a real tfjs model: the wrappers against hand-computed values, and in the
 * loop: computed over the whole split (not averaged per batch), in results, metric files and
 * TensorBoard's scalars, and usable as the score.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { accuracy, auc, f1Macro, r2Score } from '../../../src/effects/tfjs/epochMetrics.js';
import { bestIndex, dir, latestResult, results } from '../../../src/state/runner/selectors.js';
import { runTask, splits, train } from './harness.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-epoch-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the tfjs wrappers', () => {
  it('read targets and predictions as the metric expects', () => {
    tf.tidy(() => {
      expect(r2Score(tf.tensor2d([[1], [2], [3]]), tf.tensor2d([[1], [2], [4]]))).toBe(0.5);
      expect(auc(tf.tensor1d([0, 0, 1, 1]), tf.tensor1d([0.1, 0.4, 0.35, 0.8]))).toBe(0.75);
      // one-hot [n, 2] targets and two-column scores: the positive class's column.
      expect(
        auc(
          tf.oneHot(tf.tensor1d([0, 0, 1, 1], 'int32'), 2),
          tf.tensor2d([
            [0.9, 0.1],
            [0.6, 0.4],
            [0.65, 0.35],
            [0.2, 0.8],
          ]),
        ),
      ).toBeCloseTo(0.75, 6);
      const yTrue = tf.oneHot(tf.tensor1d([0, 1, 1, 2], 'int32'), 3);
      const logits = tf.tensor2d([
        [5, 0, 0],
        [0, 3, 1],
        [0, 1, 2],
        [1, 0, 4],
      ]);
      expect(accuracy(yTrue, logits)).toBe(0.75);
      expect(f1Macro(yTrue, logits)).toBeCloseTo((1 + 2 / 3 + 2 / 3) / 3, 15);
      expect(accuracy(tf.tensor1d([0, 1, 1, 2], 'int32'), logits)).toBe(0.75);
    });
  });
});

describe('epoch metrics in the loop', () => {
  const epochMetrics = { acc: accuracy, f1: f1Macro };
  it('are computed over the whole split, join its result and the metric files, and can be the score', async () => {
    const r = await train(
      { projectRoot: root, name: 'em', scoreName: 'f1', log: true, tensorboard: true },
      {
        task: () => ({
          epochMetrics,
          // The batch accuracy averaged over batches of 4: the same as acc here (accuracy is an
          // average), so the two agree; f1 differs from a batch average in general.
          metrics: {
            batchAcc: (y, p) =>
              tf.mean<tf.Scalar>(tf.cast(tf.equal(tf.argMax(y, -1), tf.argMax(p, -1)), 'float32')),
          },
        }),
        after: (_runner, task) => {
          // The last result's val metrics are those of the final model over the whole split.
          const pred = task.model.predict(splits.val.x) as tf.Tensor;
          const val = latestResult(_runner.state)?.['val'] as Record<string, number>;
          expect(val['f1']).toBe(f1Macro(splits.val.y, pred));
          expect(val['acc']).toBe(accuracy(splits.val.y, pred));
          expect(val['acc']).toBeCloseTo(val['batchAcc'] ?? -1, 6);
          pred.dispose();
          return Promise.resolve();
        },
      },
    );
    const history = results(r.outcome.state);
    expect(history).toHaveLength(3);
    for (const h of history) {
      expect(Object.keys(h.result['val'] as object)).toEqual(['loss', 'batchAcc', 'acc', 'f1']);
      // Not for the training split.
      expect(Object.keys(h.result['train'] as object)).toEqual(['loss', 'batchAcc']);
    }
    // f1 is the score, maximised.
    const f1s = history.map((h) => (h.result['val'] as Record<string, number>)['f1'] ?? 0);
    expect(bestIndex(r.outcome.state)).toBe(f1s.indexOf(Math.max(...f1s)));
    const rows = readFileSync(join(dir(r.outcome.state), 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { split: string; metrics: Record<string, number> });
    expect(rows.filter((x) => x.split === 'val' && x.metrics['f1'] !== undefined)).toHaveLength(3);
    const runDir = dir(r.outcome.state);
    const file = readdirSync(runDir).find((f) => f.startsWith('events.out.tfevents.')) ?? '';
    const events = readFileSync(join(runDir, file));
    expect(events.includes(Buffer.from('val/f1'))).toBe(true);
  }, 60_000);

  it('refuses a name used by a batch metric too', async () => {
    const r = await runTask(
      { projectRoot: root, name: 'clash' },
      { task: () => ({ epochMetrics: { loss: accuracy } }) },
    );
    expect(r.outcome._tag === 'Left' && r.outcome.left.message).toContain(
      'loss: named in both metrics (or loss) and epochMetrics',
    );
  });
});
