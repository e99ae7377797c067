/**
 * One rule for "best" (issue 10, items 1-4), on real files: the score direction, ties, the
 * minimum improvement for early stopping, and what best.json / latest.json say.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { appendResult, startEpoch } from '../../../src/reducers/reducers.js';
import {
  createState,
  decodeState,
  type RunnerState,
} from '../../../src/state/runner/RunnerState.js';
import * as S from '../../../src/state/runner/selectors.js';
import { formatEarlyStop, formatScoreRule } from '../../../src/state/runner/format.js';
import { inferScoreMode } from '../../../src/state/runner/results.js';
import { loadCheckpointFile } from '../../../src/effects/checkpoint/checkpointFile.js';
import { saveCheckpoint, saveResult } from '../../../src/effects/run/runFiles.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-best-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const stateIn = (extra: object): RunnerState =>
  createState(
    { projectRoot: root, experimentName: 'e', runName: 'r', epochEnd: 20, seed: 0, ...extra },
    { timestamp: 't' },
  );

/** Runs epochs with the given val scores, saving the checkpoint and result files each epoch. */
const run = async (
  s0: RunnerState,
  metric: string,
  values: readonly number[],
): Promise<RunnerState> => {
  let s = s0;
  for (const [epoch, v] of values.entries()) {
    s = appendResult(startEpoch(s, epoch), { train: { loss: 1 }, val: { [metric]: v } });
    const saved = await saveCheckpoint(s, {}, { fsync: false });
    if (E.isLeft(saved)) throw new Error(saved.left.message);
    const written = await saveResult(s);
    if (E.isLeft(written)) throw new Error(written.left.message);
    if (S.patienceExhausted(s)) break;
  }
  return s;
};

const epochOfCheckpoint = async (s: RunnerState, alias: string): Promise<number> => {
  const loaded = await loadCheckpointFile(join(S.checkpointDir(s), `${alias}.safetensors`));
  if (E.isLeft(loaded)) throw new Error(loaded.left.message);
  const state = decodeState(loaded.right.state);
  if (E.isLeft(state)) throw new Error(state.left.message);
  return state.right.progress.epoch;
};

const readJson = async (s: RunnerState, file: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(join(S.dir(s), file), 'utf8')) as Record<string, unknown>;

describe('score direction (scoreMode)', () => {
  it('minimises mae: best is the lowest epoch, and patience does not stop an improving run', async () => {
    const s = await run(
      stateIn({ scoreName: 'mae', patience: 5 }),
      'mae',
      [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
    );
    expect(S.scoreMode(s)).toBe('min');
    expect(S.bestIndex(s)).toBe(7);
    expect(s.progress.epoch).toBe(7);
    expect(await epochOfCheckpoint(s, 'best')).toBe(7);
  });

  it.each([
    ['loss', 'min'],
    ['val_loss', 'min'],
    ['crossEntropyLoss', 'min'],
    ['mae', 'min'],
    ['RMSE', 'min'],
    ['perplexity', 'min'],
    ['wer', 'min'],
    ['top1_error', 'min'],
    ['accuracy', 'max'],
    ['f1', 'max'],
    ['auc', 'max'],
  ])('auto infers %s -> %s', (metric, mode) => {
    expect(inferScoreMode(metric)).toBe(mode);
  });

  it('scoreMode min / max override the inference', async () => {
    const s = await run(
      stateIn({ scoreName: 'accuracy', scoreMode: 'min' }),
      'accuracy',
      [0.5, 0.2, 0.9],
    );
    expect(S.bestIndex(s)).toBe(1);
    const t = await run(
      stateIn({ scoreName: 'mae', scoreMode: 'max', dir: join(root, 'b') }),
      'mae',
      [0.5, 0.2, 0.9],
    );
    expect(S.bestIndex(t)).toBe(2);
  });

  it('states the rule in one line', () => {
    const s = appendResult(stateIn({ scoreName: 'mae' }), { train: { mae: 1 }, val: { mae: 1 } });
    expect(formatScoreRule(s)).toBe('score: val/mae, lower is better');
    expect(formatScoreRule(stateIn({ scoreName: 'accuracy', scoreSplit: 'val' }))).toBe(
      'score: val/accuracy, higher is better',
    );
  });
});

describe('ties are never best', () => {
  it('a tie leaves isBest false and the best files at the earlier epoch', async () => {
    const s = await run(stateIn({ scoreName: 'accuracy' }), 'accuracy', [0.5, 0.8, 0.8]);
    expect(S.isBest(s)).toBe(false);
    expect(S.bestIndex(s)).toBe(1);
    expect(await epochOfCheckpoint(s, 'best')).toBe(1);
    expect((await readJson(s, 'best.json'))['epoch']).toBe(1);
    expect((await readJson(s, 'latest.json'))['epoch']).toBe(2);
  });

  it('a difference below the spec 1e-7 tolerance that is worse is not best either', async () => {
    const s = await run(stateIn({ scoreName: 'loss' }), 'loss', [0.5, 0.3, 0.30000001]);
    expect(S.isBest(s)).toBe(false);
    expect(await epochOfCheckpoint(s, 'best')).toBe(1);
  });
});

describe('minimum improvement (minDelta)', () => {
  it('improvements within minDelta do not reset patience', () => {
    let s = stateIn({ scoreName: 'loss', patience: 2, minDelta: 0.01 });
    let plain = stateIn({ scoreName: 'loss', patience: 2 });
    for (const [epoch, v] of [1.0, 0.95, 0.949, 0.948].entries()) {
      s = appendResult(startEpoch(s, epoch), { train: {}, val: { loss: v } });
      plain = appendResult(startEpoch(plain, epoch), { train: {}, val: { loss: v } });
    }
    expect(S.lastImprovementIndex(s)).toBe(1);
    expect(S.patienceExhausted(s)).toBe(true);
    expect(S.bestIndex(s)).toBe(3);
    expect(S.patienceExhausted(plain)).toBe(false);
    expect(formatEarlyStop(s)).toBe(
      'early stopping: val/loss (lower is better) did not improve by more than 0.01 for 2 epochs; best 0.9480 at epoch 3',
    );
  });
});

describe('best.json and latest.json say what made them', () => {
  it('score, epoch and the checkpoint file they match', async () => {
    const s = await run(stateIn({ scoreName: 'accuracy' }), 'accuracy', [0.5, 0.8, 0.7]);
    const best = await readJson(s, 'best.json');
    expect(best['score']).toEqual({ split: 'val', name: 'accuracy', mode: 'max', value: 0.8 });
    expect(best['epoch']).toBe(1);
    expect(best['checkpoint']).toBe('checkpoints/best.safetensors');
    const latest = await readJson(s, 'latest.json');
    expect(latest['score']).toEqual({ split: 'val', name: 'accuracy', mode: 'max', value: 0.7 });
    expect(latest['epoch']).toBe(2);
    expect(latest['checkpoint']).toBe('checkpoints/latest.safetensors');
  });
});

describe('keep rules (keepBest, keepEvery, maxToKeep)', () => {
  it('keeps best-N of the K best epochs, every M-th epoch-N and the last ones; latest and best stay', async () => {
    const s0 = stateIn({
      keepBest: 2,
      keepEvery: 3,
      maxToKeep: 1,
      saveInterval: 1,
      scoreName: 'loss',
    });
    // val/loss per epoch: the two best are epoch 1 (0.2) and epoch 4 (0.1).
    const s = await run(s0, 'loss', [0.9, 0.2, 0.5, 0.7, 0.1, 0.6, 0.8]);
    const files = (await readdir(S.checkpointDir(s))).filter((n) => !n.startsWith('.')).sort();
    expect(files).toEqual(
      [
        'best',
        'best-1',
        'best-4',
        'epoch-2', // (2 + 1) % 3 === 0
        'epoch-5', // (5 + 1) % 3 === 0
        'epoch-6', // the last one (maxToKeep 1)
        'latest',
      ]
        .map((n) => `${n}.safetensors`)
        .sort(),
    );
    expect(await epochOfCheckpoint(s, 'best')).toBe(4);
    expect(await epochOfCheckpoint(s, 'best-1')).toBe(1);
    expect(await epochOfCheckpoint(s, 'best-4')).toBe(4);
    expect(await epochOfCheckpoint(s, 'latest')).toBe(6);
  });
});
