/**
 * The runner shell's types: what `createRunner` needs from the world (`RunnerEnv`), why it may
 * not start (`RunnerStartError`), and the `Runner` it gives (the spec's effectful members over
 * the current state).
 */
import type * as E from 'fp-ts/lib/Either.js';
import type { Logger } from 'pino';
import { type Action } from '../../reducers/actions.js';
import type { ConfigError } from '../../state/config/decodeConfig.js';
import { type ParallelContext, type RunnerState } from '../../state/runner/RunnerState.js';
import { type FsError } from '../storage/atomic.js';
import { type CheckpointError } from '../checkpoint/checkpointFile.js';
import type { SavedCheckpoint } from '../checkpoint/checkpointStore.js';
import { type HistoryOptions } from '../run/history.js';
import { type LockError } from '../storage/lock.js';
import {
  type LoadCheckpointError,
  type LoadCheckpointOptions,
  type Parts,
  type PretrainedUnavailable,
} from '../run/runFiles.js';
import type { LoadedCheckpoint } from '../checkpoint/checkpointFile.js';
import type { JsonlCorrupt, JsonlInvalidValue } from '../storage/jsonl.js';
import { type ProgressStream } from '../logging/progress.js';
import { type MetricsCorrupt } from '../logging/metrics.js';
import { type LauncherError } from './parallel.js';
import { type RunDirTaken, type RunnerConfigProblem } from './runDir.js';

/** What the shell needs from the world; every field has a real default. */
export interface RunnerEnv {
  /**
   * Named stateful parts saved in checkpoints (model, optimizer, ...), or a function building
   * them from the state once the seed is known (so weight initializers can use it); a resumed
   * run then loads their state dicts from the checkpoint.
   */
  readonly parts?: Parts | ((state: RunnerState) => Parts);
  /** The clock (default: `new Date()`). */
  readonly now?: () => Date;
  /** Where to look for the git repository (default: `process.cwd()`). */
  readonly cwd?: string;
  /** The process's place in a parallel run (default: read from `env` by `parallelContext`). */
  readonly parallel?: Partial<ParallelContext>;
  /** The environment the launcher variables are read from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Read only this launcher's variables (e.g. `'torchrun'` inside a Slurm job). */
  readonly launcher?: 'torchrun' | 'Slurm' | 'Open MPI';
  /** Draws a seed when none is configured (default: `crypto.randomInt(2 ** 31)`). */
  readonly drawSeed?: () => number;
  /** The clock for metric rows and TensorBoard, in seconds (default `Date.now() / 1000`). */
  readonly seconds?: () => number;
  /** The logger (default: pino to stdout and to `run.log`). */
  readonly logger?: Logger;
  /** Where the progress bar draws when it is a TTY (default `process.stderr`). */
  readonly progressStream?: ProgressStream;
  /** Options of the action log; `false` writes none. */
  readonly history?: HistoryOptions | false;
  /**
   * Refuse a config with neither `epochEnd` nor `stepEnd` before anything is written (default
   * `true`: a training run needs an end). Set `false` for a runner that only evaluates.
   */
  readonly requireEnd?: boolean;
  /**
   * The signals that ask for a graceful stop (default SIGINT, SIGTERM, SIGUSR1); `false` installs
   * no handler. Installed once the runner has started, removed by `close()`.
   */
  readonly signals?: readonly NodeJS.Signals[] | false;
  /**
   * Where queued checkpoints ({@link Runner.queueCheckpoint}) are written: `true` (default) in
   * the process's checkpoint writer thread, so their file calls do not wait for the training
   * loop to yield; `false` in the main thread. The files are the same either way.
   */
  readonly saveThread?: boolean;
}

/** Why a runner could not start. */
export type RunnerStartError =
  | MetricsCorrupt
  | RunnerConfigProblem
  | RunDirTaken
  | PretrainedUnavailable
  | ConfigError
  | LauncherError
  | LockError
  | FsError
  | LoadCheckpointError
  | JsonlCorrupt
  | JsonlInvalidValue;

/** The runner shell. Every method that touches the outside returns an `Either`. */
export interface Runner {
  /** The current state. */
  readonly state: RunnerState;
  readonly parts: Parts;
  readonly logger: Logger;
  /** The checkpoint the run resumed from, or `null`. */
  readonly resumedFrom: string | null;
  /**
   * Applies an action, appends it to the action log, returns the new state. Synchronous: a
   * failed append is reported by the next {@link Runner.flush}, `saveCheckpoint` or `close`.
   */
  dispatch(action: Action): RunnerState;
  /**
   * Hands every dispatched action to the action log's file (a write, no fsync: the log reaches
   * the disk before each checkpoint and at `close()`) and reports a failed append.
   */
  flush(): Promise<E.Either<FsError | JsonlInvalidValue, void>>;
  /**
   * The spec's save_checkpoint for the current state (or `saved`, an earlier state of this run:
   * the loop passes the end of an epoch's training when a stop comes during evaluation) and the
   * parts, after the action log is on disk. A state inside an epoch is saved as `latest` only.
   */
  saveCheckpoint(
    saved?: RunnerState,
  ): Promise<E.Either<CheckpointError | JsonlInvalidValue, SavedCheckpoint>>;
  /**
   * {@link Runner.saveCheckpoint} off the loop's critical path: copies the parts' state now and
   * writes it in the background, in the checkpoint writer thread (see `RunnerEnv.saveThread`;
   * then the result files too, with `results`), one write at a time;
   * a waiting save is dropped when a newer one writes every file it would (latest wins; a save
   * with a file of its own, `epoch-N` or a `keepBest` copy, is never dropped). Resolves once
   * the copy is taken. A failed write is logged (file and fix) and training goes on;
   * {@link Runner.settle} and `close()` report it.
   */
  queueCheckpoint(options?: {
    readonly state?: RunnerState;
    readonly results?: boolean;
  }): Promise<E.Either<CheckpointError | JsonlInvalidValue, void>>;
  /** Waits for every queued checkpoint write; the first that failed, if any. */
  settle(): Promise<E.Either<CheckpointError | FsError | JsonlInvalidValue, void>>;
  /** How many checkpoint writes are running or waiting. */
  pendingSaves(): number;
  /**
   * Whether a pending checkpoint write waits on this thread's event loop to go on: writes in
   * the main thread (`saveThread: false`, a writer thread that could not start, a snapshot
   * structured clone refuses, which the main thread writes). A loop gives
   * the event loop a turn at every batch boundary while this is true (a write in the writer
   * thread needs one only to be handed the next waiting save: the loop's 20 ms turns do).
   */
  savesNeedTurns(): boolean;
  /**
   * The signal that asked for a graceful stop (SIGINT, SIGTERM, SIGUSR1), or `null`. A loop
   * looks at it at every step boundary: save `latest`, close, exit with 128 + the signal number.
   */
  stopSignal(): NodeJS.Signals | null;
  /** Asks for a graceful stop as if `signal` (default SIGTERM) had arrived. */
  requestStop(signal?: NodeJS.Signals): void;
  /** The spec's load_checkpoint into the current state and parts (logged as a `restore` action). */
  loadCheckpoint(
    source?: string | LoadedCheckpoint,
    options?: Omit<LoadCheckpointOptions, 'parts'>,
  ): Promise<E.Either<LoadCheckpointError, RunnerState>>;
  /** The spec's save_result. */
  saveResult(): Promise<E.Either<FsError, readonly string[]>>;
  /** The spec's print_result: the latest and best results, on the main process. */
  printResult(): void;
  /** The spec's write_result: scalars `split/name` at `step` (default: the current step). */
  writeResult(
    result: unknown,
    split: string,
    step?: number,
  ): Promise<E.Either<FsError | MetricsCorrupt, void>>;
  /** The spec's write_score: one scalar. */
  writeScore(
    name: string,
    score: number,
    split: string,
    step?: number,
  ): Promise<E.Either<FsError | MetricsCorrupt, void>>;
  /**
   * The spec's step_log: logs the step line (`training on train [3/99]\tloss: 0.1000`) of the
   * meters' last values and, in train mode, writes them as a result. Returns the result.
   */
  stepLog(
    split: string,
    iteration: number,
    length: number,
  ): Promise<Readonly<Record<string, number>>>;
  /** Redraws the progress bar (on a TTY, main process only; throttled): split, step/total, rate, ETA, meters. */
  progress(split: string, iteration: number, length: number): void;
  /**
   * Waits for queued checkpoint writes, flushes and closes the action log and the logger, removes
   * the stop handlers and releases the run lock. A `Left` says an append to the action log or a
   * checkpoint write failed (the lock is released all the same).
   */
  close(): Promise<E.Either<CheckpointError | FsError | JsonlInvalidValue, void>>;
}
