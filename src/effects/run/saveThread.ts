/**
 * Checkpoint writes in a thread of their own (issue 13). A queued save's files are written by a
 * chain of about 20 file-system calls; in the main thread each call's continuation waits for the
 * training loop to yield (once a batch), so one save spanned many batches, and on a small model
 * the saves fell behind the epochs. In this thread, whose event loop has nothing else to do, the
 * chain runs at the thread pool's pace, and the loop gets one message back per save.
 *
 * One thread per process, started at the first queued save and shared by every runner of the
 * process; it keeps the process alive only while a save is in flight. The snapshot crosses to it
 * by structured clone, with the buffers that the snapshot alone holds (see `ownedCopy`)
 * transferred, not copied. Where the thread cannot start (no `tsx` to load the TypeScript
 * sources, a bundler that left the worker file out), saves are written in the main thread as
 * before and {@link saveThreadUnavailable} says why. A thread that stops while a save is in
 * flight fails that save (a `Left` naming the file; the earlier checkpoints stay intact, as the
 * write is atomic) and the next save starts a new thread.
 */
import { open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import * as E from 'fp-ts/lib/Either.js';
import { emptyResults } from '../../state/runner/results.js';
import { checkpointDir } from '../../state/runner/selectors.js';
import { ownedBuffers } from '../checkpoint/checkpointParts.js';
import { checkpointPath, type SavedCheckpoint } from '../checkpoint/checkpointStore.js';
import type { CheckpointError } from '../checkpoint/checkpointTypes.js';
import { fsError, tryFs } from '../storage/atomic.js';
import {
  writeCheckpoint,
  type CheckpointSnapshot,
  type SaveCheckpointRunOptions,
} from './runFiles.js';
import type { SaveRequest } from './saveWorker.js';
import { markSent, resultsDelta, type SentResults } from './threadResults.js';

type Written = E.Either<CheckpointError, SavedCheckpoint>;

interface Thread {
  readonly worker: Worker;
  /** `true` once the worker has loaded its modules, `false` if it stopped before. */
  readonly ready: Promise<boolean>;
  /** Whether it has stopped (a save posted to it then would never be answered). */
  readonly ended: () => boolean;
  /** The saves in flight: the file each writes first, and its answer. */
  readonly pending: Map<number, { readonly file: string; readonly done: (r: Written) => void }>;
  /** Per run, the results history this thread holds (only what is new is posted). */
  readonly sent: SentResults;
}

/** How long a new thread may take to load its modules before saves go to the main thread. */
const START_MS = 60_000;

let thread: Thread | undefined;
let unavailable: string | undefined;
let nextId = 0;

/** Why saves are written in the main thread (the writer thread could not start), if they are. */
export const saveThreadUnavailable = (): string | undefined => unavailable;

const newWorker = (): Worker => {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./saveWorker.js', here));
  // Running from the TypeScript sources (tests, `node --import tsx`): the thread loads them
  // through tsx's loader, registered in the thread before the entry is imported. Without tsx,
  // the entry itself, for runtimes that run TypeScript (if this one does not, the thread
  // stops before it is ready and saves are written in the main thread).
  const entry = new URL('./saveWorker.ts', here);
  let tsx: string;
  try {
    tsx = import.meta.resolve('tsx/esm/api');
  } catch {
    return new Worker(entry);
  }
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true });
};

const stopped = (file: string, why: string): Written =>
  E.left({
    ...fsError('write', file, new Error(why)),
    message: `cannot write ${file}: the checkpoint writer thread stopped (${why}); the earlier checkpoints are intact and the next save starts a new thread`,
  });

const start = (): Thread | undefined => {
  let worker: Worker;
  try {
    worker = newWorker();
  } catch (cause) {
    unavailable = cause instanceof Error ? cause.message : String(cause);
    return undefined;
  }
  const pending: Thread['pending'] = new Map();
  let started = false;
  let stoppedAlready = false;
  const ready = new Promise<boolean>((resolve) => {
    const end = (why: string): void => {
      // 'error' (with the cause) and then 'exit' (with a code): the first one says why.
      if (stoppedAlready) return;
      stoppedAlready = true;
      if (thread?.worker === worker) thread = undefined;
      if (!started) {
        // It never took a save: this process writes in the main thread from now on.
        unavailable = why;
        resolve(false);
        return;
      }
      for (const { file, done } of pending.values()) done(stopped(file, why));
      pending.clear();
    };
    // A thread that neither starts nor stops (a loader that hangs) must not hold the saves.
    const late = setTimeout(() => {
      end(`not ready after ${String(START_MS / 1000)} s`);
      void worker.terminate();
    }, START_MS);
    late.unref();
    worker.on('message', (m: { ready?: true; id?: number; result?: Written }) => {
      if (m.ready === true) {
        clearTimeout(late);
        started = true;
        resolve(true);
        return;
      }
      const job = m.id === undefined ? undefined : pending.get(m.id);
      if (job === undefined || m.id === undefined || m.result === undefined) return;
      pending.delete(m.id);
      if (pending.size === 0) worker.unref();
      job.done(m.result);
    });
    worker.once('error', (cause: Error) => {
      end(cause.message);
    });
    worker.once('exit', (code) => {
      end(`exit code ${String(code)}`);
    });
  });
  worker.unref();
  return { worker, ready, pending, ended: () => stoppedAlready, sent: new Map() };
};

/** How many saves are being written by {@link inMain} now. */
let inMainNow = 0;

/**
 * Whether saves are written in the main thread: the thread could not start, or a save is being
 * written there now (its snapshot could not be sent). Their file calls wait on the event loop.
 */
export const savesInMainThread = (): boolean => unavailable !== undefined || inMainNow > 0;

/** The fallback: the same fsyncs and files, from the main thread (the thread pool). */
const inMain = async (
  snapshot: CheckpointSnapshot,
  options: SaveCheckpointRunOptions,
  syncFirst: readonly string[],
): Promise<Written> => {
  inMainNow += 1;
  try {
    return await writeInMain(snapshot, options, syncFirst);
  } finally {
    inMainNow -= 1;
  }
};

const writeInMain = async (
  snapshot: CheckpointSnapshot,
  options: SaveCheckpointRunOptions,
  syncFirst: readonly string[],
): Promise<Written> => {
  for (const file of syncFirst) {
    const synced = await tryFs('fsync', file, async () => {
      const handle = await open(file, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
    if (E.isLeft(synced)) return synced;
  }
  return writeCheckpoint(snapshot, options);
};

/** Options of {@link writeCheckpointInThread}. */
export interface ThreadWriteOptions extends SaveCheckpointRunOptions {
  /** Files the thread fsyncs before it writes (the action log that leads to the checkpoint). */
  readonly syncFirst?: readonly string[];
}

const write = async (
  snapshot: CheckpointSnapshot,
  options: ThreadWriteOptions,
  retried: boolean,
): Promise<Written> => {
  const { syncFirst = [], ...writeOptions } = options;
  if (snapshot.dicts === null) return writeCheckpoint(snapshot, writeOptions);
  if (thread === undefined && unavailable === undefined) thread = start();
  const t = thread;
  if (t === undefined) return inMain(snapshot, writeOptions, syncFirst);
  // Held while this save waits for the thread to start, so the process waits for it too.
  t.worker.ref();
  const ready = await t.ready;
  if (t.pending.size === 0) t.worker.unref();
  if (!ready) return inMain(snapshot, writeOptions, syncFirst);
  if (t.ended()) {
    // It stopped after it was ready, while this save waited: nothing was sent; a new thread
    // takes it (once: a second stop fails the save).
    if (retried) return stopped(checkpointPath(checkpointDir(snapshot.state), 'latest'), 'twice');
    return write(snapshot, options, true);
  }
  const id = nextId++;
  const transfer = ownedBuffers(snapshot.dicts);
  const run = checkpointDir(snapshot.state);
  const file = checkpointPath(run, 'latest');
  const { results: history, ...rest } = snapshot.state;
  const request: SaveRequest = {
    id,
    // The history travels as the entries the thread does not hold yet (threadResults.ts).
    snapshot: { state: { ...rest, results: emptyResults() }, dicts: snapshot.dicts },
    results: resultsDelta(t.sent, run, history),
    options: writeOptions,
    syncFirst,
  };
  const written = await new Promise<Written>((resolve) => {
    t.pending.set(id, { file, done: resolve });
    t.worker.ref();
    try {
      t.worker.postMessage(request, transfer);
      markSent(t.sent, run, history);
    } catch {
      // Not cloneable: nothing was sent or transferred; the main thread writes it.
      t.pending.delete(id);
      if (t.pending.size === 0) t.worker.unref();
      resolve(inMain(snapshot, writeOptions, syncFirst));
    }
  });
  // After a failed save the next one sends the whole history (whatever the thread holds).
  if (E.isLeft(written)) t.sent.delete(run);
  return written;
};

/**
 * {@link writeCheckpoint} in the writer thread: the same files, the same result. The tensors'
 * buffers marked by `ownedCopy` are transferred (the snapshot cannot be read afterwards); the rest
 * is copied. Falls back to the main thread when the thread is unavailable or the snapshot cannot
 * be sent (a value structured clone refuses).
 */
export const writeCheckpointInThread = (
  snapshot: CheckpointSnapshot,
  options: ThreadWriteOptions = {},
): Promise<Written> => write(snapshot, options, false);

/**
 * Forgets the results history of `run` (a checkpoint folder) on both sides of the thread: its
 * runner has closed, so no save of it follows (a later runner of the run sends it whole).
 */
export const forgetSaveThreadRun = (run: string): void => {
  const t = thread;
  if (t === undefined || !t.sent.delete(run) || t.ended()) return;
  try {
    t.worker.postMessage({ forget: run });
  } catch {
    // a thread that is stopping forgets everything anyway
  }
};

/**
 * Stops the writer thread, failing any save in flight, and forgets why one could not start:
 * the next save starts a new thread (tests; a process exits without it).
 */
export const stopSaveThread = async (): Promise<void> => {
  const t = thread;
  thread = undefined;
  unavailable = undefined;
  if (t !== undefined) await t.worker.terminate();
};
