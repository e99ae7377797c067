/**
 * End to end, with a real TensorFlow.js model in real child processes: training N epochs without
 * stopping equals training, being killed with SIGKILL part-way, resuming with autoResume and
 * finishing. Final weights bitwise equal, results equal, random stream equal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { loadCheckpointFile } from '../../src/effects/checkpoint/checkpointFile.js';

const repo = new URL('../..', import.meta.url).pathname;
let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-e2e-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const EPOCHS = 40;

const start = (projectRoot: string, extra: string[] = []): ChildProcess =>
  spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'examples/iris.ts',
      '--projectRoot',
      projectRoot,
      '--epochEnd',
      String(EPOCHS),
      '--saveInterval',
      '0',
      ...extra,
    ],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );

const finish = (
  child: ChildProcess,
): Promise<{ code: number | null; signal: string | null; out: string }> =>
  new Promise((resolve) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code, signal) => {
      resolve({ code, signal, out });
    });
  });

/** The only run dir under a project root. */
const runDir = (projectRoot: string): string => {
  const [run] = readdirSync(projectRoot);
  const [stamp] = readdirSync(join(projectRoot, run ?? ''));
  return join(projectRoot, run ?? '', stamp ?? '');
};

const latestIndex = (projectRoot: string): number => {
  try {
    const file = join(runDir(projectRoot), 'latest.json');
    return existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as { index: number }).index
      : -1;
  } catch {
    return -1;
  }
};

const final = async (projectRoot: string) => {
  const loaded = await loadCheckpointFile(
    join(runDir(projectRoot), 'checkpoints', 'latest.safetensors'),
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
  // Metric rows without their wall time: a resumed run must have purged what the killed one
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

describe('exact resume of a real tfjs run', () => {
  it('killed with SIGKILL part-way, resumed, equals never stopping', async () => {
    const straight = join(root, 'straight');
    const killed = join(root, 'killed');
    const done = await finish(start(straight));
    expect(done.code, done.out).toBe(0);

    // Kill at a random moment after a random epoch between 3 and 12.
    const killAt = 3 + Math.floor(Math.random() * 10);
    const child = start(killed);
    const exited = finish(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (latestIndex(killed) >= killAt) {
          clearInterval(timer);
          // Somewhere inside the next epoch (an Iris epoch takes tens of milliseconds).
          setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, Math.random() * 30);
        }
      }, 5);
      void exited.then((r) => {
        clearInterval(timer);
        if (r.signal !== 'SIGKILL')
          reject(new Error(`the run ended before it was killed:\n${r.out}`));
      });
    });
    const first = await exited;
    expect(first.signal).toBe('SIGKILL');
    const before = latestIndex(killed);
    expect(before).toBeLessThan(EPOCHS - 1);

    const resumed = await finish(start(killed, ['--autoResume', 'true']));
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain('run resumed');

    const [a, b] = [await final(straight), await final(killed)];
    expect(b.epoch).toBe(EPOCHS - 1);
    expect(b.bytes).toEqual(a.bytes);
    expect(b.results).toEqual(a.results);
    expect(b.rng).toEqual(a.rng);
    expect(b.step).toBe(a.step);
    expect(b.rows).toEqual(a.rows);
  });
});
