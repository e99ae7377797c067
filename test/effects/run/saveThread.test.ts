/**
 * The checkpoint writer thread (issue 13): queued saves are written by a worker thread with
 * synchronous file calls, so they progress while the training loop runs without yielding. Real
 * runners, real files, the real thread (loaded from the sources through tsx); faults through
 * modules the thread imports (`DANLING_SAVE_THREAD_IMPORT`: a held write, counted fsyncs).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { pino } from 'pino';
import { loadCheckpointFile } from '../../../src/effects/checkpoint/checkpointFile.js';
import { ownedCopy } from '../../../src/effects/checkpoint/checkpointParts.js';
import type { Stateful } from '../../../src/effects/checkpoint/checkpointTypes.js';
import { saveThreadUnavailable, stopSaveThread } from '../../../src/effects/run/saveThread.js';
import { createRunner, type Runner } from '../../../src/effects/shell/runner.js';
import { actions } from '../../../src/reducers/actions.js';
import { checkpointDir, dir } from '../../../src/state/runner/selectors.js';

const fixture = (name: string): string =>
  new URL(`../../fixtures/${name}`, import.meta.url).pathname;

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-save-thread-'));
});
afterEach(async () => {
  for (const k of [
    'DANLING_SAVE_THREAD_IMPORT',
    'DANLING_TEST_PAUSE_SAVE',
    'DANLING_TEST_FSYNC_LOG',
  ])
    Reflect.deleteProperty(process.env, k);
  await stopSaveThread(); // the next test's thread reads the environment afresh
  await rm(root, { recursive: true, force: true });
});

const silent = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});

/** A part with two tensors: `owned` marked by `ownedCopy` (may be handed over), `kept` not. */
const twoTensors = (
  seen: { owned?: Float32Array; kept?: Float32Array },
  step: () => number,
): Stateful => ({
  stateDict: () => {
    const owned = ownedCopy(Float32Array.from([1, 2, 3, step()]));
    const kept = Float32Array.from([4, 5, step()]);
    seen.owned = owned;
    seen.kept = kept;
    return {
      tensors: {
        owned: { dtype: 'F32', shape: [4], data: owned },
        kept: { dtype: 'F32', shape: [3], data: kept },
      },
      json: { note: 'part' },
    };
  },
  loadStateDict: () => undefined,
});

const start = async (saveThread: boolean, parts = {}): Promise<Runner> => {
  const r = await createRunner(
    { projectRoot: root, epochEnd: 100, seed: 0, saveInterval: 0, scoreSplit: 'val' },
    {
      logger: pino({ level: 'silent' }),
      env: {},
      signals: false,
      progressStream: silent,
      now: () => new Date('2026-12-02T12:00:00Z'),
      saveThread,
      parts,
    },
  );
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

/** One epoch whose result is the best so far, its save queued (not waited for). */
const epoch = async (runner: Runner, e: number): Promise<void> => {
  runner.dispatch(actions.startEpoch(e));
  runner.dispatch(actions.stepProgress(5));
  runner.dispatch(actions.appendResult({ val: { loss: 1 / (e + 1) } }));
  const queued = await runner.queueCheckpoint({ results: true });
  if (E.isLeft(queued)) throw new Error(queued.left.message);
};

const stepOf = async (file: string): Promise<number | undefined> => {
  const loaded = await loadCheckpointFile(file);
  return E.isRight(loaded)
    ? (loaded.right.state as { progress: { step: number } }).progress.step
    : undefined;
};

describe('the checkpoint writer thread', () => {
  it('writes the same bytes as the main thread: checkpoints and result files', async () => {
    const names = [
      'checkpoints/latest.safetensors',
      'checkpoints/best.safetensors',
      'results.json',
      'results.jsonl',
      'latest.json',
      'best.json',
    ];
    const files: Record<string, Record<string, Buffer>> = {};
    for (const saveThread of [true, false]) {
      const step = { n: 0 };
      const runner = await start(saveThread, { model: twoTensors({}, () => step.n) });
      const run = dir(runner.state);
      for (let e = 0; e < 3; e++) {
        step.n = e;
        await epoch(runner, e);
        if (e === 1) expect(E.isRight(await runner.settle())).toBe(true);
      }
      expect(await runner.close()).toEqual(E.right(undefined));
      files[String(saveThread)] = Object.fromEntries(
        names.map((n) => [n, readFileSync(join(run, n))]),
      );
      await rm(run, { recursive: true, force: true }); // the same run dir again for the other
    }
    for (const n of names) expect(files['true']?.[n], n).toEqual(files['false']?.[n]);
    expect(files['true']?.['results.jsonl']?.length).toBeGreaterThan(0);
  });

  it("says whether its pending saves wait on the event loop: main-thread writes do, the thread's do not", async () => {
    for (const saveThread of [false, true]) {
      const runner = await start(saveThread);
      expect(runner.savesNeedTurns()).toBe(false);
      await epoch(runner, 0);
      expect(runner.pendingSaves()).toBe(1);
      expect(runner.savesNeedTurns(), `saveThread: ${String(saveThread)}`).toBe(!saveThread);
      expect(E.isRight(await runner.settle())).toBe(true);
      expect(runner.pendingSaves()).toBe(0);
      expect(runner.savesNeedTurns()).toBe(false);
      const run = dir(runner.state);
      expect(await runner.close()).toEqual(E.right(undefined));
      await rm(run, { recursive: true, force: true });
    }
  });

  it('posts only the new results: the same checkpoint bytes as the main thread at each of 40 epochs, a restore between', async () => {
    const seen: Record<string, Buffer[]> = {};
    for (const saveThread of [true, false]) {
      const runner = await start(saveThread, { model: twoTensors({}, () => 1) });
      const run = dir(runner.state);
      const latest = join(checkpointDir(runner.state), 'latest.safetensors');
      const kept = join(root, 'epoch-10.safetensors'); // the state names it: one name for both
      const bytes: Buffer[] = [];
      for (let e = 0; e < 40; e++) {
        // A restore replaces the history with other objects: the thread is sent all of it.
        if (e === 25) expect(E.isRight(await runner.loadCheckpoint(kept))).toBe(true);
        await epoch(runner, e);
        expect(E.isRight(await runner.settle())).toBe(true);
        bytes.push(readFileSync(latest));
        if (e === 10) copyFileSync(latest, kept);
      }
      expect(await runner.close()).toEqual(E.right(undefined));
      // The restored history (epochs 0-10) and the 15 epochs after it.
      const loaded = await loadCheckpointFile(latest);
      expect(
        E.isRight(loaded) && (loaded.right.state as { results: unknown[] }).results,
      ).toHaveLength(26);
      seen[String(saveThread)] = bytes;
      await rm(run, { recursive: true, force: true });
      await rm(kept);
    }
    expect(seen['true']).toHaveLength(40);
    for (let e = 0; e < 40; e++) {
      expect(seen['true']?.[e], `epoch ${String(e)}`).toEqual(seen['false']?.[e]);
    }
  });

  it('a snapshot the thread cannot be sent is written in the main thread, which then needs the event loop', async () => {
    // JSON data behind a Proxy: written as JSON, refused by structured clone (the post throws,
    // nothing is sent).
    const odd = { on: false };
    const part: Stateful = {
      stateDict: () => ({
        tensors: { w: { dtype: 'F32', shape: [1], data: Float32Array.from([odd.on ? 2 : 1]) } },
        json: odd.on ? new Proxy({ note: 'odd' }, {}) : { note: 'plain' },
      }),
      loadStateDict: () => undefined,
    };
    const runner = await start(true, { model: part });
    await epoch(runner, 0);
    expect(E.isRight(await runner.settle())).toBe(true); // the thread is up
    odd.on = true;
    await epoch(runner, 1);
    let needed = false;
    while (runner.pendingSaves() > 0) {
      needed ||= runner.savesNeedTurns();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(needed).toBe(true);
    expect(await runner.settle()).toEqual(E.right(undefined));
    expect(saveThreadUnavailable()).toBeUndefined();
    const loaded = await loadCheckpointFile(
      join(checkpointDir(runner.state), 'latest.safetensors'),
    );
    expect(E.isRight(loaded) && loaded.right.parts['model']?.tensors?.['w']?.data).toEqual(
      Float32Array.from([2]),
    );
    expect(await runner.close()).toEqual(E.right(undefined));
  });

  it('hands over the buffers marked as owned copies and copies the others', async () => {
    const seen: { owned?: Float32Array; kept?: Float32Array } = {};
    const runner = await start(true, { model: twoTensors(seen, () => 7) });
    await epoch(runner, 0);
    expect(E.isRight(await runner.settle())).toBe(true);
    // Transferred: this side's view is detached. Copied: still readable, unchanged.
    expect(seen.owned?.byteLength).toBe(0);
    expect(Array.from(seen.kept ?? [])).toEqual([4, 5, 7]);
    const loaded = await loadCheckpointFile(
      join(checkpointDir(runner.state), 'latest.safetensors'),
    );
    expect(E.isRight(loaded)).toBe(true);
    if (E.isRight(loaded)) {
      const tensors = loaded.right.parts['model']?.tensors ?? {};
      expect(tensors['owned']?.data).toEqual(Float32Array.from([1, 2, 3, 7]));
      expect(tensors['kept']?.data).toEqual(Float32Array.from([4, 5, 7]));
    }
    expect(await runner.close()).toEqual(E.right(undefined));
  });

  it('a queued save reaches the disk while the main thread never yields', async () => {
    // A CPU-bound loop that never gives the event loop a turn. In the main thread a queued
    // save's file calls wait for turns, so nothing is written until the loop yields.
    const runner = await start(true);
    await epoch(runner, 0);
    expect(E.isRight(await runner.settle())).toBe(true); // the thread is up
    await epoch(runner, 1);
    const latest = join(checkpointDir(runner.state), 'latest.safetensors');
    const before = statSync(latest).ino;
    const deadline = Date.now() + 30_000;
    let renamed = false;
    while (!renamed && Date.now() < deadline) {
      renamed = statSync(latest).ino !== before; // the new latest renamed into place
    }
    expect(renamed).toBe(true);
    expect(E.isRight(await runner.settle())).toBe(true);
    expect(await stepOf(latest)).toBe(10);
    expect(await runner.close()).toEqual(E.right(undefined));
  });

  it('fsyncs each folder of an epoch-end save once, the checkpoints folder once more for latest first', async () => {
    const log = join(root, 'fsyncs.log');
    process.env['DANLING_SAVE_THREAD_IMPORT'] = fixture('countFsyncs.ts');
    process.env['DANLING_TEST_FSYNC_LOG'] = log;
    await stopSaveThread();
    const runner = await start(true);
    const run = dir(runner.state);
    const ckpt = checkpointDir(runner.state);
    let done = 0;
    for (let e = 0; e < 4; e++) {
      await epoch(runner, e);
      expect(E.isRight(await runner.settle())).toBe(true);
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const counts: Record<string, number> = {};
      for (const f of lines.slice(done)) {
        const key = f === run ? 'run' : f === ckpt ? 'checkpoints' : f;
        counts[key] = (counts[key] ?? 0) + 1;
      }
      done = lines.length;
      expect(counts, `epoch ${String(e)}`).toEqual({ checkpoints: 2, run: 1 });
    }
    expect(await runner.close()).toEqual(E.right(undefined));
  });

  it('a thread that cannot start: the save is written in the main thread, with one warning', async () => {
    process.env['DANLING_SAVE_THREAD_IMPORT'] = fixture('throwOnImport.ts');
    await stopSaveThread();
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write: (chunk: Buffer, _e, done) => {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const r = await createRunner(
      { projectRoot: root, epochEnd: 100, seed: 0, saveInterval: 0, scoreSplit: 'val' },
      { logger, env: {}, signals: false, progressStream: silent },
    );
    if (E.isLeft(r)) throw new Error(r.left.message);
    const runner = r.right;
    for (let e = 0; e < 2; e++) {
      await epoch(runner, e);
      // Known once the first start failed: the second save waits on this event loop.
      if (e === 1) expect(runner.savesNeedTurns()).toBe(true);
      expect(E.isRight(await runner.settle())).toBe(true);
    }
    expect(saveThreadUnavailable()).toContain('this module refuses to load');
    expect(await stepOf(join(checkpointDir(runner.state), 'latest.safetensors'))).toBe(10);
    const warned = lines.filter((l) => l.includes('SaveThreadUnavailable'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('checkpoints are written in the main thread');
    expect(await runner.close()).toEqual(E.right(undefined));
  });

  it('a thread that stops mid-save fails that save naming the file; earlier checkpoints stay, the next save starts a new thread', async () => {
    // The thread holds the second write of the second `latest` (the pause fixture), then is
    // stopped while that save is in flight.
    process.env['DANLING_SAVE_THREAD_IMPORT'] = fixture('pauseInSave.ts');
    process.env['DANLING_TEST_PAUSE_SAVE'] = '2';
    await stopSaveThread();
    // A part with tensors: the data is one write, the header the second.
    const runner = await start(true, { model: twoTensors({}, () => 0) });
    const ckpt = checkpointDir(runner.state);
    const latest = join(ckpt, 'latest.safetensors');
    await epoch(runner, 0);
    expect(E.isRight(await runner.settle())).toBe(true);
    await epoch(runner, 1);
    const temp = (): string | undefined =>
      readdirSync(ckpt).find((n) => n.startsWith('.latest.safetensors.tmp-'));
    while (temp() === undefined) await new Promise((r) => setTimeout(r, 5));
    await stopSaveThread();
    const failed = await runner.settle();
    expect(E.isLeft(failed)).toBe(true);
    if (E.isLeft(failed)) {
      expect(failed.left.message).toContain(latest);
      expect(failed.left.message).toContain('the checkpoint writer thread stopped');
    }
    // The first save is intact; nothing partial is visible under the real name.
    expect(await stepOf(latest)).toBe(5);
    // A new thread (no pause: its first save) writes the next one.
    delete process.env['DANLING_TEST_PAUSE_SAVE'];
    await epoch(runner, 2);
    await runner.settle();
    expect(await stepOf(latest)).toBe(15);
    expect(existsSync(join(ckpt, 'best.safetensors'))).toBe(true);
    // The run had a failed save: close reports it (never exit 0 after one).
    const closed = await runner.close();
    expect(E.isLeft(closed) && closed.left.message).toContain('writer thread stopped');
  });
});
