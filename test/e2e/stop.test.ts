/**
 * The graceful stop, end to end with the real demo in real child processes (issue 13): SIGTERM
 * or SIGINT sent as users send them (to the process, to its whole process group as a terminal's
 * Ctrl-C and Slurm do, through a wrapper that relays signals) saves `latest` at the current step,
 * releases the lock and exits with 128 + the signal; a resume continues at the next batch of the
 * same shuffled order and ends bitwise equal to a run never stopped. Also SIGKILL with `saveSteps`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peekCheckpointProgress } from '../../src/effects/checkpoint/checkpointFile.js';
import {
  expectSameEnd,
  finalOf,
  finish,
  killAtMidEpochLatest,
  repo,
  runDir,
  startDemo,
} from '../helpers/demoRun.js';

const ARGS = [
  '--epochEnd',
  '4',
  '--dataloader.batchSize',
  '2',
  '--saveInterval',
  '0',
  '--seed',
  '3',
  '--logInterval',
  '4',
];
const STEPS_PER_EPOCH = 60; // 120 training flowers, batches of 2

let root = '';
let reference: Awaited<ReturnType<typeof finalOf>>;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-stop-'));
  const done = await finish(startDemo(join(root, 'straight'), ARGS));
  expect(done.code, done.out).toBe(0);
  reference = await finalOf(join(root, 'straight'));
}, 120_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Resolves once the output shows a step line inside epoch 1 (after epoch 0's result) and, with
 * `written`, once that file exists too (checkpoints are written in the background).
 */
const insideEpoch1 = (child: ChildProcess, written?: () => string) => {
  let fire: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (fire = resolve));
  let seen = false;
  const exited = finish(child, (out) => {
    const after = out.indexOf('epoch [0/3]');
    seen ||= after >= 0 && out.indexOf('training on train [24/60]', after) >= 0;
    if (seen && (written === undefined || existsSync(written()))) fire();
  });
  return { reached, exited };
};

const resumeAndCompare = async (projectRoot: string) => {
  const resumed = await finish(startDemo(projectRoot, [...ARGS, '--autoResume', 'true']));
  expect(resumed.code, resumed.out).toBe(0);
  expect(resumed.out).toContain('run resumed from');
  expectSameEnd(await finalOf(projectRoot), reference);
};

describe('graceful stop', () => {
  it('SIGTERM to the process group mid-epoch: latest at that step, no lock, exit 143; the resume is bitwise equal', async () => {
    const projectRoot = join(root, 'term');
    const child = startDemo(projectRoot, ARGS, { detached: true });
    const { reached, exited } = insideEpoch1(child);
    await Promise.race([reached, exited]);
    process.kill(-(child.pid ?? 0), 'SIGTERM');
    const stopped = await exited;
    expect(stopped.code, stopped.out).toBe(143);
    const line =
      /interrupted by SIGTERM at epoch 1, step (\d+); resume with --autoResume true/.exec(
        stopped.out,
      );
    expect(line, stopped.out).not.toBeNull();
    const step = Number(line?.[1]);
    expect(step % STEPS_PER_EPOCH).not.toBe(0); // inside the epoch, not at its end
    expect(existsSync(join(runDir(projectRoot), '.lock'))).toBe(false);
    const saved = await finalOf(projectRoot);
    expect(saved.step).toBe(step);
    expect(saved.epoch).toBe(1);
    await resumeAndCompare(projectRoot);
  }, 120_000);

  it('SIGINT to the process: exit 130 with the interrupted line', async () => {
    const projectRoot = join(root, 'int');
    const child = startDemo(projectRoot, ARGS);
    const { reached, exited } = insideEpoch1(child);
    await Promise.race([reached, exited]);
    child.kill('SIGINT');
    const stopped = await exited;
    expect(stopped.code, stopped.out).toBe(130);
    expect(stopped.out).toMatch(/interrupted by SIGINT at epoch 1, step \d+/);
    await resumeAndCompare(projectRoot);
  }, 120_000);

  it('through the tsx command, which relays the group signal: still one graceful stop', async () => {
    const projectRoot = join(root, 'tsx');
    const child = spawn(
      process.execPath,
      [
        join(repo, 'node_modules/tsx/dist/cli.mjs'),
        'examples/iris.ts',
        '--projectRoot',
        projectRoot,
        ...ARGS,
      ],
      { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    const { reached, exited } = insideEpoch1(child);
    await Promise.race([reached, exited]);
    process.kill(-(child.pid ?? 0), 'SIGINT');
    const stopped = await exited;
    expect(stopped.out).toMatch(/interrupted by SIGINT at epoch 1, step \d+/);
    expect(stopped.out).not.toContain('exiting now, without a checkpoint');
    expect(existsSync(join(runDir(projectRoot), '.lock'))).toBe(false);
  }, 120_000);
});

describe('saveSteps', () => {
  it('SIGKILL inside an epoch: resume from the mid-epoch latest is bitwise equal', async () => {
    const projectRoot = join(root, 'kill');
    const child = startDemo(projectRoot, [...ARGS, '--saveSteps', '7']);
    const exited = finish(child);
    const step = await killAtMidEpochLatest(child, projectRoot, STEPS_PER_EPOCH);
    const killed = await exited;
    expect(killed.signal, `never saw a mid-epoch latest:\n${killed.out}`).toBe('SIGKILL');
    expect(step % 7).toBe(0);
    // What is on disk now is that checkpoint or a later one of the saves (never an older one).
    const onDisk = await peekCheckpointProgress(
      join(runDir(projectRoot), 'checkpoints', 'latest.safetensors'),
    );
    expect(onDisk?.step).toBeGreaterThanOrEqual(step);
    await resumeAndCompare(projectRoot);
  }, 120_000);
});
