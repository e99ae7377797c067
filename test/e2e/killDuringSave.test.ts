/**
 * Kills during a checkpoint write (issue 13), end to end with the real demo in real child
 * processes. `test/fixtures/pauseInSave.ts` holds the second save's write half way (the epoch-1
 * `latest`, written in the background while the loop goes on) and says so on stderr; the test
 * acts on that line, so the signal always lands inside the write, with no sleeps.
 *
 * - SIGKILL: the half-written temporary file is all that is lost; epoch 0's checkpoints and
 *   result files stay valid, and a resume with autoResume ends bitwise equal (weights, results,
 *   random stream, metric rows) to a run never killed.
 * - SIGTERM: the graceful stop waits for the write in flight, saves `latest` at the step it
 *   stopped at and exits 143; the resume is bitwise equal too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { loadCheckpointFile } from '../../src/effects/checkpoint/checkpointFile.js';
import { readResults } from '../../src/effects/run/resultFiles.js';
import { expectSameEnd, finalOf, finish, repo, runDir, startDemo } from '../helpers/demoRun.js';

// 12 epochs: the test acts on the pause line while the loop trains on (the held write is the
// epoch-1 save), so the run must still be training when the signal arrives; with 4 epochs a
// loaded machine saw the run finish first (exit 0 instead of 143).
const ARGS = [
  '--epochEnd',
  '12',
  '--dataloader.batchSize',
  '2',
  '--saveInterval',
  '0',
  '--seed',
  '3',
  '--logInterval',
  '4',
];
const PAUSED = /danling-test: paused in a save of (\S+)\n/;

let root = '';
let reference: Awaited<ReturnType<typeof finalOf>>;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-kill-save-'));
  const done = await finish(startDemo(join(root, 'straight'), ARGS));
  expect(done.code, done.out).toBe(0);
  reference = await finalOf(join(root, 'straight'));
}, 120_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The demo with the second `latest` save held inside its write; resolves with the temp file. */
const startPaused = (projectRoot: string) => {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './test/fixtures/pauseInSave.ts',
      'examples/iris.ts',
      '--projectRoot',
      projectRoot,
      ...ARGS,
    ],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DANLING_TEST_PAUSE_SAVE: '2' },
    },
  );
  let fire: (temp: string) => void = () => undefined;
  const paused = new Promise<string>((resolve) => (fire = resolve));
  const exited = finish(child, (out) => {
    const m = PAUSED.exec(out);
    if (m !== null) fire(m[1] ?? '');
  });
  return { child, paused: Promise.race([paused, exited.then(() => '')]), exited };
};

const resumeAndCompare = async (projectRoot: string) => {
  const resumed = await finish(startDemo(projectRoot, [...ARGS, '--autoResume', 'true']));
  expect(resumed.code, resumed.out).toBe(0);
  expect(resumed.out).toContain('run resumed from');
  expectSameEnd(await finalOf(projectRoot), reference);
  const read = await readResults(runDir(projectRoot));
  expect(E.isRight(read) && read.right.results).toEqual(reference.results);
  const leftovers = readdirSync(join(runDir(projectRoot), 'checkpoints')).filter((n) =>
    n.startsWith('.'),
  );
  expect(leftovers).toEqual([]);
};

describe('a kill during a checkpoint write', () => {
  it('SIGKILL mid-write: earlier checkpoints and results intact, the resume is bitwise equal', async () => {
    const projectRoot = join(root, 'kill');
    const { child, paused, exited } = startPaused(projectRoot);
    const temp = await paused;
    expect(temp).not.toBe('');
    child.kill('SIGKILL');
    const killed = await exited;
    expect(killed.signal, killed.out).toBe('SIGKILL');
    // The write was in flight: its temporary file is there, half written.
    expect(existsSync(temp)).toBe(true);
    const run = runDir(projectRoot);
    for (const name of ['latest', 'best']) {
      const loaded = await loadCheckpointFile(join(run, 'checkpoints', `${name}.safetensors`));
      expect(E.isRight(loaded), name).toBe(true);
      const state = E.isRight(loaded)
        ? (loaded.right.state as { progress: { step: number } })
        : null;
      expect(state?.progress.step).toBe(60); // epoch 0's end
    }
    const results = await readResults(run);
    expect(E.isRight(results) && Object.keys(results.right.results)).toEqual(['0']);
    await resumeAndCompare(projectRoot);
    expect(existsSync(temp)).toBe(false);
  }, 120_000);

  it('SIGTERM mid-write: the stop waits for the write, saves latest, exits 143; the resume is bitwise equal', async () => {
    const projectRoot = join(root, 'term');
    const { child, paused, exited } = startPaused(projectRoot);
    const temp = await paused;
    expect(temp).not.toBe('');
    child.kill('SIGTERM');
    const stopped = await exited;
    expect(stopped.code, stopped.out).toBe(143);
    const line = /interrupted by SIGTERM at epoch (\d+), step (\d+)/.exec(stopped.out);
    expect(line, stopped.out).not.toBeNull();
    // The write that was held finished (renamed into place), and latest is the stop's.
    expect(existsSync(temp)).toBe(false);
    const saved = await finalOf(projectRoot);
    expect(saved.step).toBe(Number(line?.[2]));
    expect(saved.step).toBeGreaterThan(60);
    const results = await readResults(runDir(projectRoot));
    expect(E.isRight(results) && Object.keys(results.right.results)).toContain('1');
    await resumeAndCompare(projectRoot);
  }, 120_000);
});
