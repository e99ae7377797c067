/**
 * Checkpoint saves off the training loop's critical path: the loop takes a snapshot (a copy of
 * the state dicts) and queues its write here. At most one write runs at a time; a newer periodic
 * save (`saveSteps`, a checkpoint inside an epoch) replaces a periodic one still waiting (the
 * latest wins), while epoch-end saves (which make `best`, `epoch-N` and the result files) are
 * never dropped. Writes run in the order queued, so `latest` always ends as the newest state.
 * A failed write is reported once to `onError` and kept; training goes on, and `idle()` /
 * the runner's `close()` report it.
 */
import * as E from 'fp-ts/lib/Either.js';

/** One queued write. */
export interface SaveJob<Err> {
  /** `periodic` may be replaced by a newer periodic job; `epoch` never is. */
  readonly kind: 'periodic' | 'epoch';
  readonly run: () => Promise<E.Either<Err, unknown>>;
}

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
      if (job.kind === 'periodic') {
        for (let i = waiting.length - 1; i >= 0; i--)
          if (waiting[i]?.kind === 'periodic') waiting.splice(i, 1);
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
