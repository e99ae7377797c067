/**
 * Checkpoint saves off the training loop's critical path: the loop takes a snapshot (a copy of
 * the state dicts) and queues its write here. At most one write runs at a time, in the order
 * queued, so `latest` always ends as the newest state. A save still waiting is dropped when a
 * newer one is queued that writes every file it would (latest wins): a periodic save
 * (`saveSteps`, only `latest`) by any newer save, an epoch-end save of `latest` and the result
 * files by a newer epoch-end save, one that also makes `best` by a newer one that makes `best`
 * too. A save with a file of its own (`epoch-N`, a `keepBest` copy) is never dropped, nor is the
 * last one. So when the disk cannot keep up with the epochs the saves coalesce instead of
 * piling up, and no file a dropped save would have written is missing at the end. A failed
 * write is reported once to `onError` and kept; training goes on, and `idle()` / the runner's
 * `close()` report it.
 */
import * as E from 'fp-ts/lib/Either.js';

/** One queued write. */
export interface SaveJob<Err> {
  /** The checkpoint files it writes (`latest`, `best`, `epoch-4`, `best-4`: a save's plan). */
  readonly files: readonly string[];
  /** Whether it writes the result files too (their lines are appended from the last written). */
  readonly results: boolean;
  readonly run: () => Promise<E.Either<Err, unknown>>;
}

/** Whether `newer` writes every file `older` would, so `older` need not run. */
export const covers = <Err>(newer: SaveJob<Err>, older: SaveJob<Err>): boolean =>
  (!older.results || newer.results) && older.files.every((f) => newer.files.includes(f));

/** The queue of background checkpoint writes of one runner. */
export interface SaveQueue<Err> {
  /** Queues a write; it starts when the one before it has finished. */
  readonly push: (job: SaveJob<Err>) => void;
  /** Resolves when every queued write has finished: the first failure, if any. */
  readonly idle: () => Promise<E.Either<Err, void>>;
  /** How many writes are running or waiting. */
  readonly size: () => number;
}

export const createSaveQueue = <Err>(onError: (error: Err) => void): SaveQueue<Err> => {
  const waiting: SaveJob<Err>[] = [];
  let running: Promise<void> | undefined;
  let failure: Err | undefined;
  const next = (): void => {
    const job = waiting.shift();
    if (job === undefined) {
      running = undefined;
      return;
    }
    running = job
      .run()
      .then(
        (r) => {
          if (E.isLeft(r)) {
            failure ??= r.left;
            onError(r.left);
          }
        },
        (cause: unknown) => {
          // A write effect never rejects; if one does, it is a failed save all the same.
          const error = { message: String(cause) } as Err;
          failure ??= error;
          onError(error);
        },
      )
      .then(next);
  };
  return {
    push: (job) => {
      for (let i = waiting.length - 1; i >= 0; i--) {
        const older = waiting[i];
        if (older !== undefined && covers(job, older)) waiting.splice(i, 1);
      }
      waiting.push(job);
      if (running === undefined) next();
    },
    idle: async () => {
      while (running !== undefined) await running;
      return failure === undefined ? E.right(undefined) : E.left(failure);
    },
    size: () => waiting.length + (running === undefined ? 0 : 1),
  };
};
