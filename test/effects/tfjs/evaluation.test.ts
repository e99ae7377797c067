/**
 * When the loop evaluates, with a real tfjs model: `evalInterval` (every N epochs and the last)
 * and `evalSteps` (inside an epoch: values written and logged, the training meters put back, so
 * the training is bitwise that of a run without it; a stop during such an evaluation resumes
 * exactly).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { TfjsHooks } from '../../../src/effects/tfjs/trainTfjs.js';
import { dir, results } from '../../../src/state/runner/selectors.js';
import { splits, train } from './harness.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-evaluation-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const rowsOf = (state: Parameters<typeof dir>[0]) =>
  readFileSync(join(dir(state), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { split: string; step: number; metrics: Record<string, number> });

describe('evalInterval', () => {
  it('evaluates every N-th epoch and the last; the results in between have the training split only', async () => {
    const r = await train({ projectRoot: root, name: 'interval', epochEnd: 5, evalInterval: 2 });
    const splitsOf = results(r.outcome.state).map((h) => Object.keys(h.result).sort().join(','));
    expect(splitsOf).toEqual(['train', 'train,val', 'train', 'train,val', 'train,val']);
    const evaluated = rowsOf(r.outcome.state).filter((row) => row.split === 'val');
    expect(evaluated.map((row) => row.step)).toEqual([20, 40, 50]);
  }, 60_000);
});

describe('evalSteps', () => {
  const config = { projectRoot: root, epochEnd: 3 };
  const valLines = (records: { msg: string }[]) =>
    records.map((x) => x.msg).filter((m) => m.startsWith('evaluated val at step'));

  it('evaluates inside the epoch without changing the training', async () => {
    const plain = await train({ ...config, projectRoot: root, name: 'plain' });
    const inside = await train({ ...config, projectRoot: root, name: 'inside', evalSteps: 4 });
    expect(inside.weights).toEqual(plain.weights);
    // The epoch results (the training meters were put back after each evaluation) are equal.
    expect(inside.outcome.state.results).toEqual(plain.outcome.state.results);
    // 10 steps an epoch: inside at 4, 8, 12, 16, 24, 28 (not at an epoch's last step, where the
    // epoch's own evaluation runs).
    expect(valLines(inside.records).map((m) => Number(/step (\d+)/.exec(m)?.[1]))).toEqual([
      4, 8, 12, 16, 24, 28,
    ]);
    const steps = rowsOf(inside.outcome.state)
      .filter((row) => row.split === 'val')
      .map((row) => row.step);
    expect(steps).toEqual([4, 8, 10, 12, 16, 20, 24, 28, 30]);
  }, 60_000);

  it('a stop during an evaluation inside an epoch saves the state before it; the resume is bitwise equal', async () => {
    const twoVal = () => ({ splits: { ...splits, val2: splits.val } });
    const straight = await train(
      { ...config, projectRoot: root, name: 'straight', evalSteps: 4 },
      { task: twoVal },
    );
    const stopAt: TfjsHooks = {
      evaluationEnd: (s, c) => {
        if (c.split === 'val' && s.progress.step === 14) c.runner.requestStop('SIGTERM');
      },
    };
    // A stop during val2's evaluation at step 14 (evalSteps 7: inside epoch 1).
    const stopped = await train(
      { ...config, projectRoot: root, name: 'stopped', evalSteps: 7 },
      { task: () => ({ ...twoVal(), hooks: stopAt }) },
    );
    expect(stopped.outcome.reason).toBe('interrupted');
    expect(stopped.outcome.state.progress).toMatchObject({ epoch: 1, step: 14 });
    const resumed = await train(
      { ...config, projectRoot: root, name: 'stopped', evalSteps: 7, autoResume: true },
      { task: twoVal },
    );
    expect(resumed.runner.resumedFrom).toMatch(/latest\.safetensors$/);
    expect(resumed.weights).toEqual(straight.weights);
    expect(resumed.outcome.state.results).toEqual(straight.outcome.state.results);
    expect(resumed.outcome.state.rng).toEqual(straight.outcome.state.rng);
  }, 60_000);
});
