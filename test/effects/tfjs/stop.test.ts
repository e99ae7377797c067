/**
 * A graceful stop asked for during evaluation (issue 13), with a real tfjs model in process: the
 * loop saves the state at the end of that epoch's training (the weights do not change while
 * evaluating), and a resume evaluates again and ends bitwise equal to a run never stopped. Also
 * the launcher's restart count in the state and the start-up line.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { linkSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { modelPart, optimizerPart } from '../../../src/effects/tfjs/tfjs.js';
import { trainTfjs, type TfjsHooks } from '../../../src/effects/tfjs/trainTfjs.js';
import { createRunner, type Runner } from '../../../src/effects/shell/runner.js';
import { loadCheckpointFile } from '../../../src/effects/checkpoint/checkpointFile.js';
import { decodeState } from '../../../src/state/runner/RunnerState.js';
import { checkpointDir, dir, trainedInEpoch } from '../../../src/state/runner/selectors.js';
import { buildModel, splits } from './harness.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-stop-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const config = () => ({
  projectRoot: root,
  name: 'stop',
  epochEnd: 3,
  seed: 5,
  dataloader: { batchSize: 4 },
  log: false,
});

/** Builds the model and optimizer from fixed seeds, starts a runner, trains. */
const train = async (...args: Parameters<typeof run>) => {
  const r = await run(...args);
  expect(E.isRight(r.closed)).toBe(true);
  if (E.isLeft(r.outcome)) throw new Error(r.outcome.left.message);
  return { ...r, outcome: r.outcome.right };
};

const run = async (
  extra: object,
  onEval: (runner: Runner) => void = () => undefined,
  env: Readonly<Record<string, string>> = {},
  hooks?: TfjsHooks,
) => {
  let model: tf.LayersModel | undefined;
  let optimizer: tf.Optimizer | undefined;
  const records: { msg: string }[] = [];
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
    { ...config(), ...extra },
    {
      logger,
      env,
      signals: false,
      parts: () => {
        model = buildModel();
        optimizer = tf.train.adam(0.05);
        return { model: modelPart(tf, model), optimizer: optimizerPart(tf, optimizer) };
      },
    },
  );
  if (E.isLeft(started)) throw new Error(started.left.message);
  const runner = started.right;
  if (model === undefined || optimizer === undefined) throw new Error('no parts');
  const outcome = await trainTfjs(runner, {
    tf,
    model,
    optimizer,
    loss: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
    metrics: {
      // A constant metric whose only job is to see the loop evaluating.
      probe: () => {
        if (runner.state.mode === 'eval') onEval(runner);
        return tf.scalar(0);
      },
    },
    splits,
    ...(hooks === undefined ? {} : { hooks }),
  });
  const closed = await runner.close();
  const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
  return { outcome, closed, weights, records, runner };
};

describe('a stop during evaluation', () => {
  it('saves the end of the epoch training; the resume evaluates again and ends bitwise equal', async () => {
    const straight = await train({ name: 'straight' });
    expect(straight.outcome.reason).toBe('epochEnd');

    const stopped = await train({}, (runner) => {
      if (runner.state.progress.epoch === 1) runner.requestStop('SIGUSR1');
    });
    expect(stopped.outcome).toMatchObject({
      reason: 'interrupted',
      signal: 'SIGUSR1',
      exitCode: 138,
    });
    expect(stopped.records.map((r) => r.msg)).toContain(
      'interrupted by SIGUSR1 at epoch 1, step 20; resume with --autoResume true',
    );
    const latest = await loadCheckpointFile(
      join(checkpointDir(stopped.outcome.state), 'latest.safetensors'),
    );
    if (E.isLeft(latest)) throw new Error(latest.left.message);
    const saved = decodeState(latest.right.state);
    if (E.isLeft(saved)) throw new Error(saved.left.message);
    // The training of epoch 1 is done (all 40 samples), its result is not appended yet.
    expect(trainedInEpoch(saved.right)).toBe(40);
    expect(saved.right.progress).toMatchObject({ epoch: 1, step: 20 });

    const resumed = await train({ autoResume: true });
    expect(resumed.outcome.reason).toBe('epochEnd');
    expect(resumed.records.map((r) => r.msg).join('\n')).toMatch(
      /run resumed from .*latest\.safetensors at epoch 1, step 20/,
    );
    expect(resumed.weights).toEqual(straight.weights);
    expect(resumed.outcome.state.results).toEqual(straight.outcome.state.results);
    expect(resumed.outcome.state.rng).toEqual(straight.outcome.state.rng);
  }, 60_000);
});

describe('restart count', () => {
  it('SLURM_RESTART_COUNT goes into the config and the resume line', async () => {
    await train({ epochEnd: 2 });
    const again = await train({ epochEnd: 2, autoResume: true }, undefined, {
      SLURM_RESTART_COUNT: '2',
    });
    expect(again.outcome.state.config.restartCount).toBe(2);
    expect(again.records.map((r) => r.msg).join('\n')).toMatch(
      /run resumed from .* at epoch 1, step 20 \(restart 2, SLURM_RESTART_COUNT\)/,
    );
  }, 60_000);
});

describe('background saves', () => {
  it('a failed write is logged, training goes on, the end reports it; the earlier checkpoint stays', async () => {
    let broken = -1;
    // When epoch 2 starts, once the saves queued so far are written (settle): keep a link to
    // latest, then put a folder where latest goes, so every later save fails at its rename.
    const breakLatest: TfjsHooks = {
      epochStart: async (_s, { runner, epoch }) => {
        if (epoch !== 2) return undefined;
        await runner.settle();
        const latest = join(checkpointDir(runner.state), 'latest.safetensors');
        broken = epoch;
        linkSync(latest, join(root, 'kept.safetensors'));
        rmSync(latest);
        mkdirSync(join(latest, 'blocker'), { recursive: true });
        return undefined;
      },
    };
    const r = await run({ name: 'broken', epochEnd: 4 }, undefined, {}, breakLatest);
    expect(broken).toBeGreaterThan(0);
    // Training went on to the end; the failure is reported by the loop's end and by close().
    expect(E.isLeft(r.outcome) && r.outcome.left.message).toContain('latest.safetensors');
    expect(E.isLeft(r.closed)).toBe(true);
    expect(r.runner.state.results.entries.size).toBe(4);
    const warned = r.records
      .map((x) => x.msg)
      .filter((m) => m.startsWith('a checkpoint save failed'));
    expect(warned.length).toBeGreaterThan(0);
    // The checkpoint on disk before the failure is intact.
    const kept = await loadCheckpointFile(join(root, 'kept.safetensors'));
    const epoch = E.isRight(kept)
      ? (kept.right.state as { progress: { epoch: number } }).progress.epoch
      : -1;
    expect(epoch).toBeGreaterThanOrEqual(0);
    expect(epoch).toBeLessThan(broken);
  }, 60_000);
});

describe('metric rows', () => {
  it('with accumSteps 2 no two rows of a tag share a step (a line between two steps waits)', async () => {
    const r = await train({ name: 'accum', accumSteps: 2, logInterval: 1, log: true });
    const rows = readFileSync(join(dir(r.outcome.state), 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { split: string; step: number; metrics: object });
    const keys = rows.flatMap((x) =>
      Object.keys(x.metrics).map((m) => `${x.split}/${m}@${x.step}`),
    );
    expect(rows.length).toBeGreaterThan(20);
    expect(new Set(keys).size).toBe(keys.length);
  }, 60_000);
});
