/**
 * Hooks with a real tfjs model: where each runs and with what; returned actions are dispatched
 * (in the action log, so a replay reaches the same state); and the end-to-end property: a run
 * with a cosine schedule with warm-up and an epoch metric as the score, stopped inside an epoch
 * from a hook and resumed, ends bitwise equal to an uninterrupted one.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { actions } from '../../../src/reducers/actions.js';
import { replayLog } from '../../../src/effects/run/historyReader.js';
import { f1Macro } from '../../../src/effects/tfjs/epochMetrics.js';
import type { TfjsHooks } from '../../../src/effects/tfjs/trainTfjs.js';
import { bestIndex, dir, results } from '../../../src/state/runner/selectors.js';
import { train } from './harness.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-hooks-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('hooks', () => {
  it('run at train start/end, epoch start/end, step end and evaluation end, in order', async () => {
    const calls: string[] = [];
    const hooks: TfjsHooks = {
      trainStart: (s, c) => void calls.push(`trainStart ${c.epoch} ${s.progress.step}`),
      epochStart: (s, c) => void calls.push(`epochStart ${c.epoch} ${s.mode}`),
      stepEnd: (s, c) => {
        if (c.batch === c.batches) calls.push(`stepEnd ${s.progress.step} ${c.batch}/${c.batches}`);
        expect(typeof c.values['loss']).toBe('number');
      },
      evaluationEnd: (s, c) =>
        void calls.push(`evaluationEnd ${c.split} ${s.mode} ${Object.keys(c.result).join(',')}`),
      epochEnd: (s, c) =>
        void calls.push(
          `epochEnd ${c.epoch} ${results(s).length} ${Object.keys(c.result).join(',')}`,
        ),
      trainEnd: (_s, c) => void calls.push(`trainEnd ${c.reason}`),
    };
    await train({ projectRoot: root, name: 'order', epochEnd: 2 }, { task: () => ({ hooks }) });
    expect(calls).toEqual([
      'trainStart 0 0',
      'epochStart 0 train',
      'stepEnd 10 10/10',
      'evaluationEnd val eval loss',
      'epochEnd 0 1 train,val',
      'epochStart 1 train',
      'stepEnd 20 10/10',
      'evaluationEnd val eval loss',
      'epochEnd 1 2 train,val',
      'trainEnd epochEnd',
    ]);
  }, 60_000);

  it('returned actions (sync or async) are dispatched, logged, and replay to the same state', async () => {
    let steps = 0;
    const hooks: TfjsHooks = {
      stepEnd: () => {
        steps += 1;
        return undefined;
      },
      epochEnd: (s, c) => [
        actions.mergeConfig({ hook: { epochs: c.epoch + 1, step: s.progress.step } }),
      ],
      evaluationEnd: async (_s, c) => {
        await Promise.resolve();
        return [actions.mergeConfig({ evaluated: c.split })];
      },
    };
    const r = await train({ projectRoot: root, name: 'actions' }, { task: () => ({ hooks }) });
    expect(steps).toBe(30);
    expect(r.outcome.state.config['hook']).toEqual({ epochs: 3, step: 30 });
    expect(r.outcome.state.config['evaluated']).toBe('val');
    const path = join(dir(r.outcome.state), 'history.jsonl');
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(
      lines.filter((l) => l.includes('"type":"mergeConfig"') && l.includes('"hook"')),
    ).toHaveLength(3);
    const replayed = await replayLog(path);
    if (E.isLeft(replayed)) throw new Error(replayed.left.message);
    expect(replayed.right.state).toEqual(r.outcome.state);
  }, 60_000);
});

describe('stopped inside an epoch by a hook, resumed', () => {
  it('a cosine schedule with warm-up and an epoch metric as the score end bitwise equal', async () => {
    const config = {
      projectRoot: root,
      epochEnd: 4,
      scoreName: 'f1',
      schedule: { kind: 'cosine', warmupSteps: 6, minLr: 0.001 },
      clipNorm: 2,
    };
    const task =
      (hooks: TfjsHooks = {}) =>
      () => ({ epochMetrics: { f1: f1Macro }, hooks });
    const straight = await train({ ...config, name: 'straight' }, { task: task() });
    expect(straight.outcome.reason).toBe('epochEnd');

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
    expect(resumed.runner.resumedFrom).toMatch(/latest\.safetensors$/);
    expect(resumed.weights).toEqual(straight.weights);
    expect(resumed.outcome.state.results).toEqual(straight.outcome.state.results);
    expect(resumed.outcome.state.rng).toEqual(straight.outcome.state.rng);
    expect(resumed.optimizer).toBeDefined();
    expect((resumed.optimizer as unknown as { learningRate: number }).learningRate).toBe(
      (straight.optimizer as unknown as { learningRate: number }).learningRate,
    );
    // f1 is in every val result and is the score.
    const f1s = results(resumed.outcome.state).map(
      (h) => (h.result['val'] as Record<string, number>)['f1'] ?? Number.NaN,
    );
    expect(f1s.every((x) => x >= 0 && x <= 1)).toBe(true);
    expect(bestIndex(resumed.outcome.state)).toBe(f1s.indexOf(Math.max(...f1s)));
  }, 60_000);
});

describe('the built-in behaviours are hooks', () => {
  const latest = (state: Parameters<typeof dir>[0]) =>
    existsSync(join(dir(state), 'checkpoints', 'latest.safetensors'));

  it('a function of the built-ins chooses them: without checkpoint and earlyStopping, no checkpoint and no early stop', async () => {
    const config = { projectRoot: root, epochEnd: 4, patience: 1, scoreMode: 'max' };
    // With the built-ins: the val loss as a score to maximise falls, so the first epoch stays
    // best and patience 1 stops the run after the second.
    const kept = await train({ ...config, name: 'kept' }, {});
    expect(kept.outcome.reason).toBe('patience');
    expect(results(kept.outcome.state)).toHaveLength(2);
    expect(latest(kept.outcome.state)).toBe(true);
    const dropped = await train(
      { ...config, name: 'dropped' },
      { task: () => ({ hooks: (b) => [b.progress, b.resultFiles] }) },
    );
    expect(dropped.outcome.reason).toBe('epochEnd');
    expect(results(dropped.outcome.state)).toHaveLength(4);
    expect(latest(dropped.outcome.state)).toBe(false);
    // The result files' hook still wrote the epoch lines and rows.
    expect(dropped.records.filter((r) => r.msg.startsWith('epoch ['))).toHaveLength(4);
  }, 60_000);

  it("a hook's endTraining ends after the epoch, saved; a list of hook sets runs in order; a replaced progress hook", async () => {
    const calls: string[] = [];
    const own: TfjsHooks[] = [
      { epochEnd: (_s, c) => void calls.push(`first ${c.epoch}`) },
      {
        epochEnd: (s, c) => {
          calls.push(`second ${c.epoch}`);
          if (results(s).length === 2) c.endTraining();
        },
      },
    ];
    const r = await train(
      { projectRoot: root, name: 'own', epochEnd: 5 },
      { task: () => ({ hooks: own }) },
    );
    expect(r.outcome.reason).toBe('stopped');
    expect(calls).toEqual(['first 0', 'second 0', 'first 1', 'second 1']);
    expect(results(r.outcome.state)).toHaveLength(2);
    expect(latest(r.outcome.state)).toBe(true);

    // progress replaced by a hook of one's own, at the same cadence (logDue).
    const lines: string[] = [];
    const quiet = await train(
      { projectRoot: root, name: 'quiet', epochEnd: 1, logInterval: 5 },
      {
        task: () => ({
          hooks: (b) => [
            {
              stepEnd: (_s, c) => {
                if (c.logDue) lines.push(`${c.batch}/${c.batches}${c.last ? ' last' : ''}`);
              },
            },
            b.resultFiles,
            b.checkpoint,
          ],
        }),
      },
    );
    expect(lines).toEqual(['5/10', '10/10 last']);
    expect(quiet.records.filter((x) => x.msg.startsWith('training on'))).toHaveLength(0);
  }, 60_000);
});
