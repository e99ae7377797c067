/**
 * Exact resume with a split given as batches, end to end in real child processes
 * (test/fixtures/streamTrainer.ts: a tf.data pipeline shuffled from each pass's seed, an async
 * generator for validation, a cosine schedule with warm-up, an epoch metric as the score, a
 * checkpoint every 3 steps): SIGKILLed once `latest` is a checkpoint from inside an epoch, then
 * resumed with autoResume, the run ends bitwise equal to one never stopped. The killed run holds
 * after step 28 once its writes are done (`STREAM_HOLD_AT_STEP`): its steps are shorter than a
 * write, so otherwise it could end before a mid-epoch `latest` is on disk. A kill at a random
 * moment, during a write too, is test/e2e/killDuringSave.test.ts and scripts/kill-campaign.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectSameEnd, finalOf, finish, killAtMidEpochLatest, repo } from '../helpers/demoRun.js';

const STEPS_PER_EPOCH = 20; // 80 samples, batches of 4

const start = (projectRoot: string, args: readonly string[] = [], holdAt?: number) =>
  spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/streamTrainer.ts', projectRoot, ...args],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env:
        holdAt === undefined
          ? process.env
          : { ...process.env, STREAM_HOLD_AT_STEP: String(holdAt) },
    },
  );

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-stream-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('a tf.data split killed inside an epoch', () => {
  it('SIGKILL at a mid-epoch checkpoint, autoResume: weights, results, rng and metric rows bitwise equal', async () => {
    const straight = await finish(start(join(root, 'straight')));
    expect(straight.code, straight.out).toBe(0);
    const reference = await finalOf(join(root, 'straight'));
    expect(reference.step).toBe(4 * STEPS_PER_EPOCH);

    const projectRoot = join(root, 'killed');
    const child = start(projectRoot, [], STEPS_PER_EPOCH + 8);
    const exited = finish(child);
    // Once latest on disk is from inside an epoch after the first.
    const step = await killAtMidEpochLatest(child, projectRoot, STEPS_PER_EPOCH, STEPS_PER_EPOCH);
    const killed = await exited;
    expect(killed.signal, `never saw a mid-epoch latest:\n${killed.out}`).toBe('SIGKILL');
    expect(step % 3).toBe(0);

    const resumed = await finish(start(projectRoot, ['--autoResume', 'true']));
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain('run resumed from');
    expectSameEnd(await finalOf(projectRoot), reference);
  }, 120_000);
});
