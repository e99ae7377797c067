import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { pino } from 'pino';
import { createRunner, timeString } from '../../../src/effects/shell/runner.js';
import { replayLog } from '../../../src/effects/run/history.js';
import { actions } from '../../../src/reducers/actions.js';
import { dir } from '../../../src/state/runner/selectors.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-runner-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const quiet = () => pino({ level: 'silent' });
const fixed = () => new Date(2026, 10, 24, 3, 42, 0);
const silentStream = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});

describe('createRunner', () => {
  it('starts: stamps the time, draws and records a seed, writes config.yaml and the action log', async () => {
    const r = await createRunner(
      { projectRoot: root, epochEnd: 2 },
      { logger: quiet(), now: fixed, drawSeed: () => 4242, env: {}, progressStream: silentStream },
    );
    if (E.isLeft(r)) throw new Error(r.left.message);
    const runner = r.right;
    expect(runner.state.timestamp).toBe('20261124-034200');
    expect(timeString(fixed())).toBe('20261124-034200');
    expect(runner.state.config.seed).toBe(4242);
    expect(readFileSync(join(dir(runner.state), 'config.yaml'), 'utf8')).toContain('seed: 4242');
    // dispatch is synchronous: it returns the new state, not a promise.
    const stepped = runner.dispatch(actions.stepProgress(3));
    expect(stepped.progress.step).toBe(3);
    expect(runner.dispatch(actions.appendResult({ val: { loss: 1 } }))).toBe(runner.state);
    expect(await runner.flush()).toEqual(E.right(undefined));
    expect(await runner.close()).toEqual(E.right(undefined));
    const replayed = await replayLog(join(dir(runner.state), 'history.jsonl'));
    expect(E.isRight(replayed) && replayed.right.state).toEqual(runner.state);
  });

  it('a second runner on the same run dir fails fast, naming the holder', async () => {
    const config = { projectRoot: root, epochEnd: 2, seed: 1 };
    const env = { logger: quiet(), now: fixed, env: {}, progressStream: silentStream };
    const first = await createRunner(config, env);
    if (E.isLeft(first)) throw new Error(first.left.message);
    const second = await createRunner(config, env);
    expect(E.isLeft(second) && second.left.message).toContain(String(process.pid));
    await first.right.close();
    const third = await createRunner(config, env);
    expect(E.isRight(third)).toBe(true);
    if (E.isRight(third)) await third.right.close();
  });

  it('refuses a bad config or launcher environment with every problem', async () => {
    const bad = await createRunner(
      { projectRoot: root, accumSteps: 0, epochEnd: 2 },
      { logger: quiet(), env: {} },
    );
    expect(E.isLeft(bad) && bad.left.message).toBe(
      'accumSteps: expected a positive integer, got 0',
    );
    const launcher = await createRunner(
      { projectRoot: root, epochEnd: 2 },
      { logger: quiet(), env: { RANK: '3', WORLD_SIZE: '2' } },
    );
    expect(E.isLeft(launcher) && launcher.left.message).toBe(
      'invalid launcher environment:\nRANK=3 is not below WORLD_SIZE=2: ranks run from 0 to worldSize - 1',
    );
  });

  it('a non-main rank writes no files and seeds seed + rank', async () => {
    const r = await createRunner(
      { projectRoot: root, seed: 10, epochEnd: 2 },
      { logger: quiet(), now: fixed, env: { RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '1' } },
    );
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(r.right.state.parallel).toEqual({ rank: 1, worldSize: 2, localRank: 1 });
    const { seedRng } = await import('../../../src/state/runner/rng.js');
    expect(r.right.state.rng).toEqual(seedRng(11));
    await r.right.close();
    const { existsSync } = await import('node:fs');
    expect(existsSync(dir(r.right.state))).toBe(false);
  });

  it('step lines are printed on the main process only (the spec print)', async () => {
    const { Writable } = await import('node:stream');
    const { pino } = await import('pino');
    const { actions } = await import('../../../src/reducers/actions.js');
    const linesOf = async (rank: string) => {
      const lines: string[] = [];
      const logger = pino(
        { level: 'info' },
        new Writable({
          write: (chunk: Buffer, _e, done) => {
            lines.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
            done();
          },
        }),
      );
      const r = await createRunner(
        { projectRoot: root, seed: 10, epochEnd: 2, log: false },
        { logger, now: fixed, env: { RANK: rank, WORLD_SIZE: '2', LOCAL_RANK: rank } },
      );
      if (E.isLeft(r)) throw new Error(r.left.message);
      r.right.dispatch(actions.updateMeters({ loss: 0.5 }, 1));
      await r.right.stepLog('train', 1, 4);
      await r.right.close();
      return lines.filter((l) => l.startsWith('training on train'));
    };
    expect(await linesOf('0')).toEqual(['training on train [1/4]\tloss: 0.5000']);
    expect(await linesOf('1')).toEqual([]);
  });

  it("a resume purges the result rows written after its checkpoint at the checkpoint's own step", async () => {
    // A stop during evaluation saves `latest` at the end of the epoch's training (step 6, no
    // result for the epoch yet). A later start resumed from it, evaluated and wrote the epoch's
    // result rows at step 6, and was killed before its epoch-end checkpoint: a resume from the
    // same `latest` must drop those rows (they are written again), and keep the step row.
    const config = { projectRoot: root, epochEnd: 3, seed: 1, saveInterval: 0 };
    const env = {
      logger: quiet(),
      now: fixed,
      env: {},
      progressStream: silentStream,
      signals: false as const,
      saveThread: false,
    };
    const first = await createRunner(config, env);
    if (E.isLeft(first)) throw new Error(first.left.message);
    const a = first.right;
    a.dispatch(actions.stepProgress(6));
    expect(await a.writeResult({ loss: 0.5 }, 'train')).toEqual(E.right(undefined));
    expect(E.isRight(await a.saveCheckpoint())).toBe(true);
    a.dispatch(actions.appendResult({ val: { loss: 0.4 } }));
    expect(await a.writeResult({ loss: 0.4 }, 'val')).toEqual(E.right(undefined));
    expect(await a.writeScore('lr', 0.01, 'train')).toEqual(E.right(undefined));
    expect(await a.close()).toEqual(E.right(undefined)); // no checkpoint after the rows
    const rowsOf = () =>
      readFileSync(join(dir(a.state), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => {
          const r = JSON.parse(l) as { step: number; split: string; metrics: object };
          return [r.step, r.split, r.metrics];
        });
    expect(rowsOf()).toHaveLength(3);
    const second = await createRunner({ ...config, autoResume: true }, env);
    if (E.isLeft(second)) throw new Error(second.left.message);
    expect(second.right.state.progress.step).toBe(6);
    expect(rowsOf()).toEqual([[6, 'train', { loss: 0.5 }]]);
    expect(await second.right.close()).toEqual(E.right(undefined));
  });
});
