/**
 * The runner shell: the spec's start-up and effectful members around the pure core. It holds the
 * current state, and `dispatch(action)` reduces it, appends the action to `history.jsonl` and
 * returns the new state. Users who want no shell call the reducers and effects directly.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as E from 'fp-ts/lib/Either.js';
import type { Logger } from 'pino';
import { actions as act, reduce, type Action } from '../../reducers/actions.js';
import type { ConfigError } from '../../state/config/decodeConfig.js';
import { decodeConfigWithWarnings } from '../../state/config/decodeConfig.js';
import { isPlainObject } from '../../state/Json.js';
import {
  initialState,
  type ParallelContext,
  type RunnerState,
} from '../../state/runner/RunnerState.js';
import { formatScoreRule, formatStepResult } from '../../state/runner/format.js';
import {
  getResult,
  bestResult,
  checkpointDir,
  dir,
  isMainProcess,
  latestResult,
  scoreMode,
} from '../../state/runner/selectors.js';
import { cleanupTemp, type FsError } from '../storage/atomic.js';
import { restoreParts, type CheckpointError } from '../checkpoint/checkpointFile.js';
import type { SavedCheckpoint } from '../checkpoint/checkpointStore.js';
import { openHistory, type HistoryOptions, type HistoryWriter } from '../run/history.js';
import { acquireRunLock, type LockHeld, type RunLock } from '../storage/lock.js';
import {
  loadCheckpoint as loadCheckpointEffect,
  saveCheckpoint as saveCheckpointEffect,
  saveResult as saveResultEffect,
  yaml,
  type LoadCheckpointError,
  type LoadCheckpointOptions,
  type Parts,
} from '../run/runFiles.js';
import type { LoadedCheckpoint } from '../checkpoint/checkpointFile.js';
import type { JsonlCorrupt, JsonlInvalidValue } from '../storage/jsonl.js';
import { initLogging } from '../logging/runLogger.js';
import { createProgressBar, type ProgressStream } from '../logging/progress.js';
import { openMetricsFiles, writeResult, type MetricsFiles } from '../logging/metrics.js';
import { parallelContext, type LauncherError } from './parallel.js';
import { setSeed } from './seed.js';
import { initTensorboard, type EventWriter } from '../logging/tensorboard.js';

const run = promisify(execFile);

/** The git commit hash of the repository around `cwd`, or `undefined` outside one. */
export const gitCommit = async (cwd: string): Promise<string | undefined> => {
  try {
    const { stdout } = await run('git', ['rev-parse', 'HEAD'], { cwd, timeout: 5000 });
    const hash = stdout.trim();
    return /^[0-9a-f]{40}$/.test(hash) ? hash : undefined;
  } catch {
    return undefined;
  }
};

/** The spec's time string: `YYYYMMDD-HHMMSS` in local time. */
export const timeString = (date: Date): string => {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
};

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
}

/** Why a runner could not start. */
export type RunnerStartError =
  | ConfigError
  | LauncherError
  | LockHeld
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
  /** Hands every dispatched action to the action log's file and reports a failed append. */
  flush(): Promise<E.Either<FsError | JsonlInvalidValue, void>>;
  /** The spec's save_checkpoint for the current state and parts (after the action log is on disk). */
  saveCheckpoint(): Promise<E.Either<CheckpointError | JsonlInvalidValue, SavedCheckpoint>>;
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
  writeResult(result: unknown, split: string, step?: number): Promise<E.Either<FsError, void>>;
  /** The spec's write_score: one scalar. */
  writeScore(
    name: string,
    score: number,
    split: string,
    step?: number,
  ): Promise<E.Either<FsError, void>>;
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
   * Flushes and closes the action log and the logger, and releases the run lock. A `Left` says
   * an append to the action log failed (the lock is released all the same).
   */
  close(): Promise<E.Either<FsError | JsonlInvalidValue, void>>;
}

/**
 * The spec's start-up, at the edge: decodes the config (typo warnings logged), fills
 * `experimentId` with the git commit hash inside a repository, takes the parallel context,
 * stamps the time, locks the run dir (a second process fails fast naming the holder), cleans
 * leftovers of a crashed save, resumes (`config.checkpoint`, or `autoResume`: the newest valid
 * checkpoint of this run), seeds (drawing a seed once when none is configured, written into the
 * config so the run is reproducible; rank bias applied), writes `config.yaml` and opens
 * `history.jsonl`.
 *
 * @example
 * const runner = await createRunner({ epochEnd: 10, seed: 0 }, { parts: { model: modelPart(tf, model) } });
 */
export const createRunner = async (
  input: unknown,
  env: RunnerEnv = {},
): Promise<E.Either<RunnerStartError, Runner>> => {
  const now = env.now ?? (() => new Date());
  const raw: Record<string, unknown> = isPlainObject(input) ? { ...input } : {};
  if (raw['experimentId'] === undefined && isPlainObject(input)) {
    const commit = await gitCommit(env.cwd ?? process.cwd());
    if (commit !== undefined) raw['experimentId'] = commit;
  }
  const decoded = decodeConfigWithWarnings(isPlainObject(input) ? raw : input);
  if (E.isLeft(decoded)) return decoded;
  const launched = parallelContext(
    env.env ?? process.env,
    env.launcher === undefined ? {} : { launcher: env.launcher },
  );
  if (E.isLeft(launched)) return launched;
  const parallel = {
    rank: env.parallel?.rank ?? launched.right.rank,
    localRank: env.parallel?.localRank ?? launched.right.localRank,
    worldSize: env.parallel?.worldSize ?? launched.right.worldSize,
  };
  let state = initialState(decoded.right.config, { timestamp: timeString(now()), ...parallel });
  const factory = typeof env.parts === 'function' ? env.parts : undefined;
  const early: Parts = typeof env.parts === 'function' ? {} : (env.parts ?? {});

  // Resume first: a resumed run adopts its run dir and its seed.
  const wantsResume = state.config.checkpoint !== undefined || state.config.autoResume;
  let resumedFrom: string | null = null;
  let checkpoint: LoadedCheckpoint | null = null;
  const notes: string[] = decoded.right.warnings.map((w) => w.message);
  if (wantsResume) {
    const loaded = await loadCheckpointEffect(state, undefined, { parts: early })();
    if (E.isLeft(loaded)) return loaded;
    state = loaded.right.state;
    resumedFrom = loaded.right.path;
    checkpoint = loaded.right.checkpoint;
    notes.push(...loaded.right.warnings);
  }
  if (resumedFrom === null || state.config.seed === undefined) {
    // A fresh run seeds its stream (seed + rank); a resumed one keeps the restored stream.
    const seeded = setSeed(state, env.drawSeed === undefined ? {} : { draw: env.drawSeed });
    const keep = resumedFrom !== null;
    for (const a of seeded.actions) if (!(keep && a.type === 'setRng')) state = reduce(state, a);
  }
  const parts = factory === undefined ? early : factory(state);
  if (factory !== undefined && checkpoint !== null) {
    const restored = await restoreParts(parts, checkpoint)();
    if (E.isLeft(restored)) return restored;
  }

  const logger = env.logger ?? initLogging(state);
  for (const note of notes) logger.warn(note);

  let lock: RunLock | undefined;
  let history: HistoryWriter | undefined;
  let files: MetricsFiles | undefined;
  let events: EventWriter | undefined;
  const seconds = env.seconds ?? (() => Date.now() / 1000);
  const bar = createProgressBar(env.progressStream ?? process.stderr);
  if (isMainProcess(state)) {
    const locked = await acquireRunLock(dir(state))();
    if (E.isLeft(locked)) return locked;
    lock = locked.right;
    for (const w of lock.warnings) logger.warn(w.message);
    const cleaned = await cleanupTemp(checkpointDir(state))();
    if (E.isRight(cleaned) && cleaned.right.length > 0) {
      logger.warn({ files: cleaned.right }, 'removed files left by an interrupted save');
    }
    const written = await yaml(state, join(dir(state), 'config.yaml'))();
    if (E.isLeft(written)) return written;
    files = openMetricsFiles(dir(state));
    if (state.config.tensorboard) events = initTensorboard(dir(state), true, { now: seconds });
    if (resumedFrom !== null) {
      // Rows a killed run wrote after its last checkpoint would make curves double back.
      const from = state.progress.step + 1;
      const purged = await files.purgeFrom(from);
      if (E.isLeft(purged)) return purged;
      events?.purgeFrom(from);
    }
    if (env.history !== false) {
      const opened = await openHistory(
        join(dir(state), 'history.jsonl'),
        state,
        env.history ?? {},
      )();
      if (E.isLeft(opened)) return opened;
      history = opened.right.writer;
      for (const w of opened.right.warnings) logger.warn(w.message);
    }
  }
  logger.info(
    { dir: dir(state), resumedFrom, seed: state.config.seed },
    resumedFrom === null ? 'run started' : 'run resumed',
  );
  logger.info({ scoreMode: scoreMode(state) }, formatScoreRule(state));

  // Appends to the action log are buffered and written synchronously in batches (one
  // `writeSync` per batch of at most 256 actions, or sooner when the oldest buffered one is
  // 100 ms old), so a CPU-bound loop that never yields still hands them to the kernel; a crash
  // loses at most the last batch. A failed append is kept and reported by `flush`,
  // saveCheckpoint and close, which write what is buffered first.
  let logError: FsError | JsonlInvalidValue | undefined;
  const dispatch = (action: Action): RunnerState => {
    state = reduce(state, action);
    if (history !== undefined) history.append(action, state);
    return state;
  };
  const drain = async (): Promise<E.Either<FsError | JsonlInvalidValue, void>> => {
    if (history === undefined) return E.right(undefined);
    const synced = await history.sync()();
    if (E.isLeft(synced)) logError ??= synced.left;
    return logError === undefined ? E.right(undefined) : E.left(logError);
  };

  const runner: Runner = {
    get state() {
      return state;
    },
    parts,
    logger,
    resumedFrom,
    dispatch,
    flush: drain,
    saveCheckpoint: async () => {
      // The action log reaches the disk before the checkpoint it leads to.
      const drained = await drain();
      if (E.isLeft(drained)) return drained;
      return saveCheckpointEffect(state, parts)();
    },
    loadCheckpoint: async (source, options = {}) => {
      const loaded = await loadCheckpointEffect(state, source, { ...options, parts })();
      if (E.isLeft(loaded)) return loaded;
      for (const w of loaded.right.warnings) logger.warn(w);
      if (loaded.right.path === null) return E.right(state);
      return E.right(dispatch(act.restore(loaded.right.state, options.overrideConfig ?? false)));
    },
    saveResult: () => saveResultEffect(state)(),
    writeResult: (result, split, step) =>
      writeResult(
        {
          ...(files === undefined ? {} : { files }),
          ...(events === undefined ? {} : { events }),
          now: seconds,
        },
        result,
        split,
        step ?? state.progress.step,
      ),
    writeScore: (scoreName, score, split, step) =>
      runner.writeResult({ [scoreName]: score }, split, step),
    progress: (split, iteration, length) => {
      if (isMainProcess(state)) bar.update(split, iteration, length, getResult(state, 'step'));
    },
    stepLog: async (split, iteration, length) => {
      bar.clear();
      const result = getResult(state, 'step');
      logger.info(formatStepResult(state, result, split, iteration, length));
      if (state.mode === 'train') await runner.writeResult(result, split);
      return result;
    },
    printResult: () => {
      if (!isMainProcess(state)) return;
      logger.info({ latest: latestResult(state) }, 'latest result');
      logger.info({ best: bestResult(state) }, 'best result');
    },
    close: async () => {
      bar.clear();
      const closed = history === undefined ? E.right(undefined) : await history.close()();
      if (E.isLeft(closed)) logError ??= closed.left;
      events?.close();
      await new Promise<void>((resolve) => {
        logger.flush(() => {
          resolve();
        });
      });
      if (lock !== undefined) await lock.release();
      if (logError !== undefined) return E.left(logError);
      return closed;
    },
  };
  return E.right(runner);
};
