/**
 * The Iris demo (`examples/iris.ts`) as a real child process, and what its run dir holds at the
 * end: final weights as bytes, results, random stream, metric rows. For the crash, resume and
 * graceful-stop tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { expect } from 'vitest';
import {
  loadCheckpointFile,
  peekCheckpointProgress,
} from '../../src/effects/checkpoint/checkpointFile.js';

export const repo = new URL('../..', import.meta.url).pathname;

/** Starts the demo in one process (`node --import tsx`, no wrapper relaying signals). */
export const startDemo = (
  projectRoot: string,
  args: readonly string[],
  options: { readonly detached?: boolean } = {},
): ChildProcess =>
  spawn(
    process.execPath,
    ['--import', 'tsx', 'examples/iris.ts', '--projectRoot', projectRoot, ...args],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false },
  );

/** Collects a child's output and resolves when it exits. */
export const finish = (
  child: ChildProcess,
  onOutput?: (text: string) => void,
): Promise<{ code: number | null; signal: string | null; out: string }> =>
  new Promise((resolve) => {
    let out = '';
    const take = (d: Buffer): void => {
      out += d.toString();
      onOutput?.(out);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.on('exit', (code, signal) => {
      resolve({ code, signal, out });
    });
  });

/**
 * The run dir under a project root: of its starts (timestamp folders), the newest one holding a
 * `latest` checkpoint, else the newest (a start killed before its first checkpoint leaves a
 * folder behind that a later start does not adopt).
 */
export const runDir = (projectRoot: string): string => {
  const [run] = readdirSync(projectRoot);
  const stamps = readdirSync(join(projectRoot, run ?? ''))
    .sort()
    .reverse();
  const at = (s: string) => join(projectRoot, run ?? '', s);
  const withLatest = stamps.find((s) =>
    existsSync(join(at(s), 'checkpoints', 'latest.safetensors')),
  );
  return at(withLatest ?? stamps[0] ?? '');
};

/** The epoch of `latest.json` (the last finished epoch), or -1. */
export const latestIndex = (projectRoot: string): number => {
  try {
    const file = join(runDir(projectRoot), 'latest.json');
    return existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as { index: number }).index
      : -1;
  } catch {
    return -1;
  }
};

/** What a run ends with: `latest`'s weights (hex), state counters and rng, results, metric rows. */
export const finalOf = async (projectRoot: string, name = 'latest') => {
  const loaded = await loadCheckpointFile(
    join(runDir(projectRoot), 'checkpoints', `${name}.safetensors`),
  );
  if (E.isLeft(loaded)) throw new Error(loaded.left.message);
  const state = loaded.right.state as { rng: number[]; progress: { epoch: number; step: number } };
  const results = (
    JSON.parse(readFileSync(join(runDir(projectRoot), 'results.json'), 'utf8')) as {
      results: unknown;
    }
  ).results;
  const model = loaded.right.parts['model']?.tensors ?? {};
  const bytes = Object.fromEntries(
    Object.entries(model).map(([k, t]) => [
      k,
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex'),
    ]),
  );
  // Metric rows without their wall time: a resumed run must have purged what the stopped one
  // wrote after its last checkpoint, so the rows equal an uninterrupted run's.
  const rows = readFileSync(join(runDir(projectRoot), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { time: _time, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
  return {
    rng: state.rng,
    epoch: state.progress.epoch,
    step: state.progress.step,
    results,
    bytes,
    rows,
  };
};

/** What two runs end with ({@link finalOf}) is the same: weights bytes, results, rng, step, rows. */
export const expectSameEnd = (
  after: Awaited<ReturnType<typeof finalOf>>,
  reference: Awaited<ReturnType<typeof finalOf>>,
): void => {
  expect(after.bytes).toEqual(reference.bytes);
  expect(after.results).toEqual(reference.results);
  expect(after.rng).toEqual(reference.rng);
  expect(after.step).toBe(reference.step);
  expect(after.rows).toEqual(reference.rows);
};

/**
 * SIGKILLs `child` as soon as `latest` on disk is a checkpoint from inside an epoch after step
 * `after` (checkpoints are written behind the loop: the file itself is polled from the start);
 * resolves to that checkpoint's step, or -1 when the run ended first.
 */
export const killAtMidEpochLatest = async (
  child: ChildProcess,
  projectRoot: string,
  stepsPerEpoch: number,
  after = 0,
): Promise<number> => {
  const run = { ended: false };
  child.once('exit', () => (run.ended = true));
  while (!run.ended) {
    try {
      const p = await peekCheckpointProgress(
        join(runDir(projectRoot), 'checkpoints', 'latest.safetensors'),
      );
      if (p !== undefined && p.step > after && p.step % stepsPerEpoch !== 0) {
        child.kill('SIGKILL');
        return p.step;
      }
    } catch {
      // no run dir yet
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return -1;
};
