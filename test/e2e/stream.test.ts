/**
 * Exact resume with a split given as batches, end to end in real child processes
 * (test/fixtures/streamTrainer.ts: a tf.data pipeline shuffled from each pass's seed, an async
 * generator for validation, a cosine schedule with warm-up, an epoch metric as the score, a
 * checkpoint every 3 steps): SIGKILLed once `latest` is a checkpoint from inside an epoch, then
 * resumed with autoResume, the run ends bitwise equal to one never stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peekCheckpointProgress } from '../../src/effects/checkpoint/checkpointFile.js';
import { finalOf, finish, repo, runDir } from '../helpers/demoRun.js';

const STEPS_PER_EPOCH = 20; // 80 samples, batches of 4

const start = (projectRoot: string, args: readonly string[] = []) =>
  spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/streamTrainer.ts', projectRoot, ...args],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
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
    const child = start(projectRoot);
    const exited = finish(child);
    const run = { ended: false };
    void exited.then(() => (run.ended = true));
    // Kill once latest on disk is from inside an epoch after the first (checkpoints are written
    // behind the loop: poll the file itself).
    let step = -1;
    while (!run.ended) {
      try {
        const p = await peekCheckpointProgress(
          join(runDir(projectRoot), 'checkpoints', 'latest.safetensors'),
        );
        if (p !== undefined && p.step > STEPS_PER_EPOCH && p.step % STEPS_PER_EPOCH !== 0) {
          step = p.step;
          child.kill('SIGKILL');
          break;
        }
      } catch {
        // no run dir yet
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const killed = await exited;
    expect(killed.signal, `never saw a mid-epoch latest:\n${killed.out}`).toBe('SIGKILL');
    expect(step % 3).toBe(0);

    const resumed = await finish(start(projectRoot, ['--autoResume', 'true']));
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain('run resumed from');
    const after = await finalOf(projectRoot);
    expect(after.bytes).toEqual(reference.bytes);
    expect(after.results).toEqual(reference.results);
    expect(after.rng).toEqual(reference.rng);
    expect(after.step).toBe(reference.step);
    expect(after.rows).toEqual(reference.rows);
  }, 120_000);
});
