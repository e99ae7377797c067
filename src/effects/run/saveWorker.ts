/**
 * The entry of the checkpoint writer thread ({@link ./saveThread.ts}): it receives snapshots and
 * writes each with {@link writeCheckpoint}, the same code a save in the main thread runs, and
 * answers with its result. Its event loop has nothing else to do, so the chain of file calls of
 * one save (open, write, fsync, rename, link, folder fsync, for 4-5 files) runs at the thread
 * pool's pace instead of one call per training batch.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort } from 'node:worker_threads';
import * as E from 'fp-ts/lib/Either.js';
import { checkpointDir } from '../../state/runner/selectors.js';
import { checkpointPath } from '../checkpoint/checkpointStore.js';
import { fsError, syncFs, type FsError } from '../storage/atomic.js';
import {
  writeCheckpoint,
  type CheckpointSnapshot,
  type SaveCheckpointRunOptions,
} from './runFiles.js';
import { receiveResults, type ReceivedResults, type ResultsDelta } from './threadResults.js';

/**
 * A save for the thread: the snapshot (its tensors' buffers transferred; its state's results
 * history empty, sent as `results`), the options.
 */
export interface SaveRequest {
  readonly id: number;
  readonly snapshot: CheckpointSnapshot;
  /** The state's results history: the entries this thread was not sent before. */
  readonly results: ResultsDelta;
  readonly options: SaveCheckpointRunOptions;
  /** Files to fsync before the checkpoint is written (the action log that leads to it). */
  readonly syncFirst: readonly string[];
}

/** fsyncs each file (an fsync flushes the file, whichever descriptor it is made through). */
const syncAll = (files: readonly string[]): E.Either<FsError, void> => {
  for (const file of files) {
    try {
      const fd = openSync(file, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (cause) {
      return E.left(fsError('fsync', file, cause));
    }
  }
  return E.right(undefined);
};

/**
 * Modules to import in this thread before it takes a save, comma-separated paths: the process's
 * `--import` preloads do not run in worker threads, so an instrumentation of `node:fs` (a test's
 * fault injection, a tracer) that should see the checkpoint writes names itself here.
 */
export const SAVE_THREAD_IMPORT = 'DANLING_SAVE_THREAD_IMPORT';

const port = parentPort;
if (port !== null) {
  for (const file of (process.env[SAVE_THREAD_IMPORT] ?? '').split(',')) {
    if (file.trim() !== '') await import(pathToFileURL(resolve(file.trim())).href);
  }
  const received: ReceivedResults = new Map();
  const save = async (request: SaveRequest, file: string): Promise<unknown> => {
    const results = receiveResults(received, request.results);
    if (results === undefined) {
      received.delete(request.results.run);
      return E.left(
        fsError('write', file, new Error('results history out of step with the main thread')),
      );
    }
    const snapshot = { ...request.snapshot, state: { ...request.snapshot.state, results } };
    const synced = syncAll(request.syncFirst);
    if (E.isLeft(synced)) return synced;
    try {
      // Synchronous calls: this thread has nothing else to do while a save is written.
      return await writeCheckpoint(snapshot, { ...request.options, fs: syncFs });
    } catch (cause) {
      return E.left(fsError('write', file, cause)); // a write effect never throws; if one does
    }
  };
  port.on('message', (request: SaveRequest | { readonly forget: string }) => {
    if ('forget' in request) {
      received.delete(request.forget); // that run's runner has closed
      return;
    }
    const file = checkpointPath(checkpointDir(request.snapshot.state), 'latest');
    void save(request, file).then((result) => {
      try {
        port.postMessage({ id: request.id, result });
      } catch (cause) {
        // A result that structured clone refuses: the save is still answered, as failed.
        port.postMessage({
          id: request.id,
          result: E.left(fsError('report the save of', file, cause)),
        });
      }
    });
  });
  // Modules loaded: the thread takes snapshots from now on.
  port.postMessage({ ready: true });
}
