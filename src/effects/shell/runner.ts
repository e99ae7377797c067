/**
 * The runner shell: the spec's start-up and effectful members around the pure core. It holds the
 * current state, and `dispatch(action)` reduces it, appends the action to `history.jsonl` and
 * returns the new state. Users who want no shell call the reducers and effects directly.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
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
import { formatResult, formatScoreRule, formatStepResult } from '../../state/runner/format.js';
import {
  getResult,
  bestResult,
  checkpointDir,
  dir,
  isMainProcess,
  isFinished,
  latestResult,
  scoreMode,
  trainedInEpoch,
} from '../../state/runner/selectors.js';
import {
  cleanupTemp,
  fsError,
  isPidAlive,
  writeFileAtomic,
  type FsError,
} from '../storage/atomic.js';
import { checkParts, restoreParts, type CheckpointError } from '../checkpoint/checkpointFile.js';
import type { SavedCheckpoint } from '../checkpoint/checkpointStore.js';
import { openHistory, type HistoryOptions, type HistoryWriter } from '../run/history.js';
import { acquireRunLock, LOCK_NAME, type LockError, type RunLock } from '../storage/lock.js';
import {
  loadPretrained,
  readCheckpoint,
  repairAfterResume,
  resumeState,
  saveCheckpoint as saveCheckpointEffect,
  snapshotCheckpoint,
  writeCheckpoint,
  saveResult as saveResultEffect,
  yaml,
  type LoadCheckpointError,
  type LoadCheckpointOptions,
  type Parts,
  type PretrainedUnavailable,
  type ReadCheckpoint,
} from '../run/runFiles.js';
import { readText } from '../storage/configFile.js';
import { parseYaml } from '../../state/config/configText.js';
import type { LoadedCheckpoint } from '../checkpoint/checkpointFile.js';
import type { JsonlCorrupt, JsonlInvalidValue } from '../storage/jsonl.js';
import { initLogging, openRunLog, type RunLogFile } from '../logging/runLogger.js';
import { createProgressBar, type ProgressStream } from '../logging/progress.js';
import {
  openMetricsFiles,
  writeResult,
  type MetricsCorrupt,
  type MetricsFiles,
} from '../logging/metrics.js';
import { parallelContext, restartCount, type LauncherError } from './parallel.js';
import { setSeed } from './seed.js';
import { installStopHandlers, STOP_SIGNALS } from './stop.js';
import { createSaveQueue } from './saveQueue.js';
import { initTensorboard, type EventWriter } from '../logging/tensorboard.js';
import { warning, type Warning } from '../../state/warning.js';

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

/** The code a run ran with: the commit, whether the tree had uncommitted changes, and their diff. */
export interface GitInfo {
  readonly commit: string;
  readonly dirty: boolean;
  /** `git diff HEAD` (uncommitted changes to tracked files); empty when clean. */
  readonly diff: string;
}

/** The commit, dirty flag and uncommitted diff of the repository around `cwd`, or `undefined`. */
export const gitInfo = async (cwd: string): Promise<GitInfo | undefined> => {
  const commit = await gitCommit(cwd);
  if (commit === undefined) return undefined;
  try {
    const { stdout } = await run('git', ['diff', 'HEAD', '--no-color', '--no-ext-diff'], {
      cwd,
      timeout: 10_000,
      maxBuffer: 64 << 20,
    });
    return { commit, dirty: stdout.length > 0, diff: stdout };
  } catch {
    return { commit, dirty: false, diff: '' };
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
}

/** A config the shell cannot start: no end, no model part for `pretrained`. */
export interface RunnerConfigProblem {
  readonly _tag: 'NoEnd' | 'NoModelPart';
  readonly message: string;
}

/** The run dir holds the files of another run (another runId). */
export interface RunDirTaken {
  readonly _tag: 'RunDirTaken';
  readonly path: string;
  readonly runId: string;
  readonly otherRunId: string;
  readonly message: string;
}

const startError = (tag: RunnerConfigProblem['_tag'], message: string): RunnerConfigProblem => ({
  _tag: tag,
  message,
});

/**
 * The spec's check_dir at start-up: a run dir whose `config.yaml` belongs to another run (a
 * shared `--dir`) would have its results, checkpoints and history overwritten or mixed.
 */
const otherRunIn = async (state: RunnerState): Promise<RunDirTaken | undefined> => {
  const file = join(dir(state), 'config.yaml');
  const text = await readText(file);
  if (E.isLeft(text)) return undefined; // no config.yaml yet: a new run dir
  const parsed = parseYaml(text.right);
  const other =
    E.isRight(parsed) && isPlainObject(parsed.right) ? parsed.right['runId'] : undefined;
  if (typeof other !== 'string' || other === state.config.runId) return undefined;
  const otherName =
    E.isRight(parsed) && isPlainObject(parsed.right)
      ? (parsed.right['name'] ?? parsed.right['experimentName'])
      : undefined;
  return {
    _tag: 'RunDirTaken',
    path: dir(state),
    runId: state.config.runId,
    otherRunId: other,
    message: `${dir(state)} holds another run (runId ${other}${typeof otherName === 'string' ? `, ${otherName}` : ''}, see its config.yaml); this run is runId ${state.config.runId}. Choose another dir (--dir), resume that run with its own config, or remove ${dir(state)}`,
  };
};

/** Whether `folder` holds the files of a start that has ended (no live holder of its lock). */
const endedRunIn = (folder: string): boolean => {
  if (!existsSync(join(folder, 'config.yaml'))) return false;
  try {
    const holder = JSON.parse(readFileSync(join(folder, LOCK_NAME), 'utf8')) as {
      pid?: unknown;
      hostname?: unknown;
    };
    const live =
      holder.hostname === hostname() && typeof holder.pid === 'number' && isPidAlive(holder.pid);
    return !live;
  } catch {
    return true; // no lock (released), or not readable: not a live run's
  }
};

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
  /** Hands every dispatched action to the action log's file and reports a failed append. */
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
   * writes it in the background (then the result files too, with `results`), one write at a time;
   * a newer periodic save replaces a waiting one, epoch-end saves are never dropped. Resolves once
   * the copy is taken. A failed write is logged (file and fix) and training goes on;
   * {@link Runner.settle} and `close()` report it.
   */
  queueCheckpoint(options?: {
    readonly state?: RunnerState;
    readonly results?: boolean;
  }): Promise<E.Either<CheckpointError | JsonlInvalidValue, void>>;
  /** Waits for every queued checkpoint write; the first that failed, if any. */
  settle(): Promise<E.Either<CheckpointError | FsError, void>>;
  /** How many checkpoint writes are running or waiting (a loop yields more often while > 0). */
  pendingSaves(): number;
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

/** Logs a warning value: its message, with its tag in run.log (`warning` field). */
const warn = (logger: Logger, w: Warning, fields: object = {}): void => {
  logger.warn({ ...fields, warning: w._tag }, w.message);
};

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
  const git = isPlainObject(input) ? await gitInfo(env.cwd ?? process.cwd()) : undefined;
  if (raw['experimentId'] === undefined && git !== undefined) raw['experimentId'] = git.commit;
  const decoded = decodeConfigWithWarnings(isPlainObject(input) ? raw : input);
  if (E.isLeft(decoded)) return decoded;
  const { epochEnd, stepEnd } = decoded.right.config;
  if ((env.requireEnd ?? true) && epochEnd === undefined && stepEnd === undefined) {
    return E.left(
      startError(
        'NoEnd',
        'epochEnd / stepEnd: the config has no end; set epochEnd (e.g. --epochEnd 20) or stepEnd, or pass requireEnd: false for a runner that does not train',
      ),
    );
  }
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
  let parts: Parts = typeof env.parts === 'function' ? {} : (env.parts ?? {});

  // Resume first: a resumed run adopts its run dir and its seed. The checkpoint is read once,
  // its parts checked once, the state restored once and the parts loaded once.
  const wantsResume = state.config.checkpoint !== undefined || state.config.autoResume;
  const notes: Warning[] = [...decoded.right.warnings];
  let read: ReadCheckpoint | null = null;
  if (wantsResume) {
    const check = (ps: Parts) => (c: LoadedCheckpoint) => checkParts(ps, c);
    const first = await readCheckpoint(state, undefined, factory ? {} : { check: check(parts) });
    if (E.isLeft(first)) return first;
    read = first.right;
    if (factory !== undefined && read.checkpoint !== null) {
      // Parts built from the state they will resume (its seed); a checkpoint that does not fit
      // them is skipped the same way as with parts given as an object.
      parts = factory(resumeState(state, read));
      const fits = await checkParts(parts, read.checkpoint);
      if (E.isLeft(fits)) {
        if (state.config.checkpoint !== undefined) return fits;
        const again = await readCheckpoint(state, undefined, { check: check(parts) });
        if (E.isLeft(again)) return again;
        read = again.right;
      }
    }
    notes.push(...read.warnings);
    state = resumeState(state, read);
  }
  const resumedFrom = read?.checkpoint?.path ?? null;
  if (resumedFrom === null && state.config.dir === undefined && isMainProcess(state)) {
    // A fresh start in the same second as an earlier, ended start of this run (a crash and a
    // quick restart without autoResume) gets its own run dir instead of appending to that one's
    // files. A dir whose lock a live process holds is left as it is: the lock refuses this start.
    const stamp = state.timestamp;
    for (let n = 1; endedRunIn(dir(state)); n++) {
      state = reduce(state, act.setTimestamp(`${stamp}-${n}`));
    }
  }
  if (resumedFrom === null || state.config.seed === undefined) {
    // A fresh run seeds its stream (seed + rank); a resumed one keeps the restored stream.
    const seeded = setSeed(state, env.drawSeed === undefined ? {} : { draw: env.drawSeed });
    const keep = resumedFrom !== null;
    for (const a of seeded.actions) if (!(keep && a.type === 'setRng')) state = reduce(state, a);
  }
  // The launcher's restart count (a Slurm requeue, a torchrun restart) goes into the config.
  const restarts = restartCount(env.env ?? process.env);
  if (restarts !== undefined)
    state = reduce(state, act.mergeConfig({ restartCount: restarts.count }));
  if (factory !== undefined && (read?.checkpoint ?? null) === null) parts = factory(state);
  if (read?.checkpoint) {
    const restored = await restoreParts(parts, read.checkpoint, { strict: false });
    if (E.isLeft(restored)) return restored;
  }
  // Pretrained weights: only for a fresh run (a resume of the run itself wins).
  const pretrained = state.config.pretrained;
  if (pretrained !== undefined && resumedFrom !== null) {
    notes.push(
      warning(
        'PretrainedIgnored',
        `pretrained ${pretrained} is not loaded: the run resumes from ${resumedFrom}`,
      ),
    );
  } else if (pretrained !== undefined) {
    const model = parts['model'];
    if (model === undefined) {
      return E.left(
        startError(
          'NoModelPart',
          `pretrained: ${pretrained} is set but the runner has no "model" part to load it into; pass parts: { model }`,
        ),
      );
    }
    const loaded = await loadPretrained(state, model);
    if (E.isLeft(loaded)) {
      return E.left({ ...loaded.left, message: `pretrained: ${loaded.left.message}` });
    }
  }

  // The run log opens first: a path problem is a start-up error (before the lock is taken), and
  // a full disk later stops the file without ever throwing out of a log call.
  let logFile: RunLogFile | undefined;
  let logFileError: FsError | undefined;
  if (env.logger === undefined) {
    const opened = openRunLog(state, {
      onError: (e) => {
        logFileError ??= e;
      },
    });
    if (E.isLeft(opened)) return opened;
    logFile = opened.right;
  }
  const logger = env.logger ?? initLogging(state, logFile === undefined ? {} : { file: logFile });
  for (const note of notes) warn(logger, note);

  let lock: RunLock | undefined;
  let history: HistoryWriter | undefined;
  let files: MetricsFiles | undefined;
  let events: EventWriter | undefined;
  const seconds = env.seconds ?? (() => Date.now() / 1000);
  const bar = createProgressBar(env.progressStream ?? process.stderr);
  if (isMainProcess(state)) {
    const locked = await acquireRunLock(dir(state));
    if (E.isLeft(locked)) {
      logFile?.close();
      return locked;
    }
    lock = locked.right;
    // From here on, every failed start releases the lock it took.
    const held = lock;
    const fail = async <L>(error: L): Promise<E.Either<L, never>> => {
      events?.close();
      logFile?.close();
      await held.release();
      return E.left(error);
    };
    for (const w of lock.warnings) warn(logger, w);
    const other = await otherRunIn(state);
    if (other !== undefined) return fail(other);
    for (const folder of [checkpointDir(state), dir(state)]) {
      const cleaned = await cleanupTemp(folder);
      if (E.isRight(cleaned) && cleaned.right.length > 0) {
        warn(
          logger,
          warning(
            'TempFilesRemoved',
            `removed files left by an interrupted save: ${cleaned.right.join(', ')}`,
          ),
          {
            files: cleaned.right,
          },
        );
      }
    }
    const written = await yaml(state, join(dir(state), 'config.yaml'));
    if (E.isLeft(written)) return fail(written.left);
    if (git !== undefined) {
      logger.info(
        { commit: git.commit, dirty: git.dirty },
        `code: commit ${git.commit}${git.dirty ? ' with uncommitted changes (git.diff)' : ''}`,
      );
      if (git.dirty) {
        const diffWritten = await writeFileAtomic(join(dir(state), 'git.diff'), git.diff);
        if (E.isLeft(diffWritten)) return fail(diffWritten.left);
      }
    }
    if (read?.checkpoint) {
      // A kill between `latest` and its aliases or the result files left them behind: redo the
      // restored checkpoint's plan (links and result files) so the run's files agree with it.
      const repaired = await repairAfterResume(state, read.checkpoint.path);
      if (E.isLeft(repaired)) return fail(repaired.left);
      if (repaired.right.length > 0) {
        warn(
          logger,
          warning(
            'RunFilesRepaired',
            'repaired checkpoint links and result files left behind by an interrupted save',
          ),
          { files: repaired.right },
        );
      }
    }
    files = openMetricsFiles(dir(state));
    if (state.config.tensorboard) {
      try {
        events = initTensorboard(dir(state), true, { now: seconds });
      } catch (cause) {
        return fail(fsError('open the TensorBoard event file in', dir(state), cause));
      }
    }
    if (resumedFrom !== null) {
      // Rows a killed run wrote after its last checkpoint would make curves double back.
      const from = state.progress.step + 1;
      const purged = await files.purgeFrom(from);
      if (E.isLeft(purged)) return fail(purged.left);
      for (const w of files.warnings()) warn(logger, w);
      events?.purgeFrom(from);
    }
    if (env.history !== false) {
      const opened = await openHistory(join(dir(state), 'history.jsonl'), state, env.history ?? {});
      if (E.isLeft(opened)) return fail(opened.left);
      history = opened.right.writer;
      for (const w of opened.right.warnings) warn(logger, w);
    }
  }
  logger.info(
    {
      dir: dir(state),
      resumedFrom,
      seed: state.config.seed,
      ...(restarts === undefined
        ? {}
        : { restartCount: restarts.count, restartVariable: restarts.variable }),
    },
    resumedFrom === null
      ? `run started in ${dir(state)}`
      : `run resumed from ${resumedFrom} at epoch ${state.progress.epoch}, step ${state.progress.step}${
          restarts === undefined ? '' : ` (restart ${restarts.count}, ${restarts.variable})`
        }`,
  );
  if (resumedFrom !== null && isFinished(state)) {
    warn(
      logger,
      warning(
        'RunComplete',
        `the run is complete (${[
          state.config.epochEnd === undefined ? '' : `epochEnd ${String(state.config.epochEnd)}`,
          state.config.stepEnd === undefined ? '' : `stepEnd ${String(state.config.stepEnd)}`,
        ]
          .filter((x) => x !== '')
          .join(
            ', ',
          )}); to train further, start with --checkpoint ${resumedFrom} and a larger --epochEnd`,
      ),
    );
  }
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
    const synced = await history.sync();
    if (E.isLeft(synced)) logError ??= synced.left;
    return logError === undefined ? E.right(undefined) : E.left(logError);
  };

  const saves = createSaveQueue<CheckpointError | FsError>((e) => {
    warn(
      logger,
      warning('CheckpointSaveFailed', `a checkpoint save failed; training goes on: ${e.message}`),
    );
  });
  const stop = installStopHandlers({
    signals: env.signals === false ? [] : (env.signals ?? STOP_SIGNALS),
    onRequest: (signal) => {
      warn(
        logger,
        warning(
          'StopRequested',
          `${signal} received: stopping at the next step boundary (send it again to exit at once)`,
        ),
        { signal },
      );
    },
    onForce: (signal) => {
      // Exit at once, but hand the buffered actions to the kernel first (a synchronous write).
      history?.flush();
      warn(logger, warning('StopForced', `second ${signal}: exiting now, without a checkpoint`), {
        signal,
      });
    },
  });
  const runner: Runner = {
    get state() {
      return state;
    },
    parts,
    logger,
    resumedFrom,
    dispatch,
    flush: drain,
    saveCheckpoint: async (saved) => {
      // Queued writes first, so that this one is the last to write `latest`.
      await saves.idle();
      // The action log reaches the disk before the checkpoint it leads to.
      const drained = await drain();
      if (E.isLeft(drained)) return drained;
      return saveCheckpointEffect(saved ?? state, parts);
    },
    queueCheckpoint: async (options = {}) => {
      const drained = await drain();
      if (E.isLeft(drained)) return drained;
      const at = options.state ?? state;
      const snapshot = await snapshotCheckpoint(at, parts);
      if (E.isLeft(snapshot)) return snapshot;
      saves.push({
        kind: trainedInEpoch(at) > 0 ? 'periodic' : 'epoch',
        run: async () => {
          const written = await writeCheckpoint(snapshot.right);
          if (E.isLeft(written) || options.results !== true) return written;
          return saveResultEffect(at);
        },
      });
      return E.right(undefined);
    },
    settle: () => saves.idle(),
    pendingSaves: () => saves.size(),
    stopSignal: () => stop.signal(),
    requestStop: (signal) => {
      stop.request(signal);
    },
    loadCheckpoint: async (source, options = {}) => {
      const read = await readCheckpoint(state, source, {
        ...(options.autoResume === undefined ? {} : { autoResume: options.autoResume }),
        check: (c) => checkParts(parts, c),
      });
      if (E.isLeft(read)) return read;
      for (const w of read.right.warnings) warn(logger, w);
      const { checkpoint, saved } = read.right;
      if (checkpoint === null || saved === null) return E.right(state);
      if (read.right.timestamp !== state.timestamp) {
        // This runner's files (lock, action log, metrics) are open in its own run dir: it cannot
        // adopt another one mid-run. createRunner with autoResume does.
        return E.left({
          _tag: 'CheckpointNotSpecified',
          message: `autoResume found ${checkpoint.path}, in another start of this run (${read.right.timestamp}); this runner writes to ${dir(state)}. Start a new runner with autoResume to adopt that run dir, or pass the file as the checkpoint to load it into this one`,
        });
      }
      const restored = await restoreParts(parts, checkpoint, { strict: false });
      if (E.isLeft(restored)) return restored;
      // One restore, logged as actions, so a replay of the log reaches the same state.
      dispatch(act.restore(saved, options.overrideConfig ?? false));
      dispatch(act.mergeConfig({ checkpoint: checkpoint.path }));
      logger.info(
        { checkpoint: checkpoint.path },
        `loaded ${checkpoint.path} at epoch ${state.progress.epoch}, step ${state.progress.step}`,
      );
      return E.right(state);
    },
    saveResult: () => saveResultEffect(state),
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
        state.progress.epoch,
      ),
    writeScore: (scoreName, score, split, step) =>
      runner.writeResult({ [scoreName]: score }, split, step),
    progress: (split, iteration, length) => {
      if (!isMainProcess(state)) return;
      const end = state.config.epochEnd;
      const at = end === undefined ? undefined : `epoch ${state.progress.epoch}/${end - 1}`;
      bar.update(split, iteration, length, getResult(state, 'step'), at);
    },
    stepLog: async (split, iteration, length) => {
      bar.clear();
      const result = getResult(state, 'step');
      // The spec's print: step lines on the main process only.
      if (isMainProcess(state))
        logger.info(formatStepResult(state, result, split, iteration, length));
      if (state.mode === 'train') await runner.writeResult(result, split);
      return result;
    },
    printResult: () => {
      if (!isMainProcess(state)) return;
      const latest = latestResult(state);
      const best = bestResult(state);
      const line = (r: typeof latest): string => {
        if (r === null) return 'none';
        const { index, ...rest } = r as Record<string, unknown>;
        return `epoch ${String(index)}${formatResult(rest)}`;
      };
      logger.info({ latest }, `latest result: ${line(latest)}`);
      logger.info({ best }, `best result: ${line(best)}`);
    },
    close: async () => {
      stop.remove();
      const saved = await saves.idle();
      bar.clear();
      if (E.isLeft(saved)) {
        // The run ends with an error in run.log, so `danling runs` shows it as failed.
        logger.error(
          { error: saved.left._tag },
          `the run ends with a failed checkpoint save: ${saved.left.message}`,
        );
      }
      const closed = history === undefined ? E.right(undefined) : await history.close();
      if (E.isLeft(closed)) logError ??= closed.left;
      events?.close();
      await new Promise<void>((resolve) => {
        logger.flush(() => {
          resolve();
        });
      });
      logFile?.close();
      if (lock !== undefined) await lock.release();
      if (logError !== undefined) return E.left(logError);
      // A checkpoint that failed to save (logged when it did): never exit 0 after it.
      if (E.isLeft(saved)) return saved;
      if (E.isLeft(closed)) return closed;
      // A full disk under TensorBoard or run.log stopped that file: never exit 0 in silence.
      const fileProblem = events?.error() ?? logFileError;
      return fileProblem === undefined ? closed : E.left(fileProblem);
    },
  };
  return E.right(runner);
};
