/**
 * The files of one epoch (issue 13): what a runner's epoch-end save writes and fsyncs, counted
 * on the real file system. Folder fsyncs are counted by wrapping `FileHandle.prototype.sync`
 * (every fsync of the effects goes through a `FileHandle`) and naming the descriptor through
 * `/proc/self/fd` (Linux). The runner here writes in the main thread (`saveThread: false`),
 * where that wrap sees the calls; `saveThread.test.ts` counts the writer thread's (the same
 * plan, made with synchronous calls).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { pino } from 'pino';
import { createRunner, type Runner } from '../../../src/effects/shell/runner.js';
import { actions } from '../../../src/reducers/actions.js';
import { checkpointDir, dir } from '../../../src/state/runner/selectors.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-epoch-files-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

// Every fsync of a folder, by path, while `counting`.
const folderSyncs: string[] = [];
let counting = false;
let restore = (): void => undefined;
beforeAll(async () => {
  const probe = await open(import.meta.filename, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: (this: { fd: number }) => Promise<void> };
  await probe.close();
  const original = proto.sync;
  proto.sync = function (this: { fd: number }) {
    if (counting) {
      const target = readlinkSync(`/proc/self/fd/${String(this.fd)}`);
      if (statSync(target).isDirectory()) folderSyncs.push(target);
    }
    return original.call(this);
  };
  restore = () => {
    proto.sync = original;
  };
});
afterAll(() => {
  restore();
});

const silent = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});

const start = async (): Promise<Runner> => {
  const r = await createRunner(
    { projectRoot: root, epochEnd: 100, seed: 0, saveInterval: 0, scoreSplit: 'val' },
    {
      logger: pino({ level: 'silent' }),
      env: {},
      signals: false,
      progressStream: silent,
      saveThread: false,
    },
  );
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

/** One epoch whose result is the best so far (so `best` and `best.json` are written too). */
const epoch = async (runner: Runner, e: number): Promise<void> => {
  runner.dispatch(actions.startEpoch(e));
  runner.dispatch(actions.stepProgress(5));
  runner.dispatch(actions.appendResult({ val: { loss: 1 / (e + 1) } }));
  const queued = await runner.queueCheckpoint({ results: true });
  if (E.isLeft(queued)) throw new Error(queued.left.message);
  const settled = await runner.settle();
  if (E.isLeft(settled)) throw new Error(settled.left.message);
};

describe('the files of one epoch', () => {
  it('each folder of an epoch-end save is fsynced once, the checkpoints folder once more for latest first', async () => {
    const runner = await start();
    const run = dir(runner.state);
    const ckpt = checkpointDir(runner.state);
    const perEpoch: Record<string, number>[] = [];
    for (let e = 0; e < 4; e++) {
      folderSyncs.length = 0;
      counting = true;
      await epoch(runner, e);
      counting = false;
      const counts: Record<string, number> = {};
      for (const f of folderSyncs) {
        const key = f === run ? 'run' : f === ckpt ? 'checkpoints' : f;
        counts[key] = (counts[key] ?? 0) + 1;
      }
      perEpoch.push(counts);
    }
    expect(await runner.close()).toEqual(E.right(undefined));
    // Before: the run dir 3 times (results.json, latest.json, best.json), checkpoints twice.
    for (const counts of perEpoch) expect(counts).toEqual({ checkpoints: 2, run: 1 });
  });

  it('results.json is written at the first save and at close, not each epoch; results.jsonl grows by a line an epoch', async () => {
    const runner = await start();
    const run = dir(runner.state);
    const inodes: number[] = [];
    const journal: number[] = [];
    const size = (f: string): number => {
      try {
        return statSync(join(run, f)).size;
      } catch {
        return 0;
      }
    };
    for (let e = 0; e < 6; e++) {
      await epoch(runner, e);
      inodes.push(statSync(join(run, 'results.json')).ino);
      journal.push(size('results.jsonl'));
    }
    const before = statSync(join(run, 'results.json')).ino;
    expect(await runner.close()).toEqual(E.right(undefined));
    // One file the whole run (a rename would give it a new inode), then the whole at close.
    expect(new Set(inodes).size).toBe(1);
    expect(statSync(join(run, 'results.json')).ino).not.toBe(before);
    const growth = journal.slice(1).map((n, i) => n - (journal[i] ?? 0));
    // The same number of bytes each epoch (the line of one result), not the whole history.
    const line = `${JSON.stringify({ index: 1, result: { val: { loss: 0.5 } } })}\n`;
    expect(journal[0]).toBe(0);
    expect(growth[0]).toBe(Buffer.byteLength(line));
    for (const g of growth) expect(g).toBeLessThanOrEqual(Buffer.byteLength(line) + 20);
    const whole = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as {
      results: Record<string, unknown>;
      journal: { file: string; offset: number };
    };
    expect(Object.keys(whole.results)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(whole.journal).toEqual({ file: 'results.jsonl', offset: size('results.jsonl') });
  });
});
