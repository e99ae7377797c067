/**
 * The runner shell: the spec's start-up and effectful members around the pure core. It holds the
 * current state, and `dispatch(action)` reduces it, appends the action to `history.jsonl` and
 * returns the new state. Users who want no shell call the reducers and effects directly.
 */
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import type { Logger } from 'pino';
import { actions as act, reduce, type Action } from '../../reducers/actions.js';
import { decodeConfigWithWarnings } from '../../state/config/decodeConfig.js';
import { isPlainObject } from '../../state/Json.js';
import { initialState, type RunnerState } from '../../state/runner/RunnerState.js';
import { formatResult, formatScoreRule, formatStepResult } from '../../state/runner/format.js';
import {
  getResult,
  bestResult,
  checkpointDir,
  dir,
  isMainProcess,
  isFinished,
  latestResult,
  resultCount,
  scoreMode,
} from '../../state/runner/selectors.js';
import { cleanupTemp, fsError, writeFileAtomic, type FsError } from '../storage/atomic.js';
import { checkParts, restoreParts, type CheckpointError } from '../checkpoint/checkpointFile.js';
import { openHistory, type HistoryWriter } from '../run/history.js';
import { acquireRunLock, type RunLock } from '../storage/lock.js';
import {
  loadPretrained,
  readCheckpoint,
  repairAfterResume,
  resumeState,
  saveCheckpoint as saveCheckpointEffect,
  plannedCheckpoints,
  snapshotCheckpoint,
  writeCheckpoint,
  saveResult as saveResultEffect,
  yaml,
  type Parts,
  type ReadCheckpoint,
} from '../run/runFiles.js';
import type { LoadedCheckpoint } from '../checkpoint/checkpointFile.js';
import type { JsonlInvalidValue } from '../storage/jsonl.js';
import { initLogging, openRunLog, type RunLogFile } from '../logging/runLogger.js';
import { createProgressBar } from '../logging/progress.js';
import { openMetricsFiles, writeResult, type MetricsFiles } from '../logging/metrics.js';
import { parallelContext, restartCount } from './parallel.js';
import { setSeed } from './seed.js';
import { installStopHandlers, STOP_SIGNALS } from './stop.js';
import { createSaveQueue } from './saveQueue.js';
import {
  forgetSaveThreadRun,
  saveThreadUnavailable,
  savesInMainThread,
  writeCheckpointInThread,
} from '../run/saveThread.js';
import { initTensorboard, type EventWriter } from '../logging/tensorboard.js';
import { warning, type Warning } from '../../state/warning.js';
import { endedRunIn, gitInfo, otherRunIn, startError, timeString } from './runDir.js';
import type { RunnerEnv, RunnerStartError, Runner } from './runnerTypes.js';

export { gitCommit, gitInfo, timeString } from './runDir.js';
export type { GitInfo, RunDirTaken, RunnerConfigProblem } from './runDir.js';

/** Whether `e` is a failed file-system call on `file` (the action log's fsync before a save). */
const isFsErrorOn = (e: { readonly _tag: string }, file: string | undefined): e is FsError =>
  file !== undefined && 'op' in e && 'path' in e && e.path === file;

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
      // Rows a killed run wrote after its last checkpoint would make curves double back: those
      // of later steps, and those of this step written once the state had more results.
      const from = state.progress.step + 1;
      const purged = await files.purgeFrom(from, resultCount(state));
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

  // The result files (issue 13): the first epoch save of this process writes results.json whole
  // (its journal offset passes over any line of an earlier process), later ones append their new
  // results to results.jsonl; close() writes results.json whole again.
  let resultsWritten: number | undefined; // results.entries.size at the last write
  let journaled: RunnerState | undefined; // the state of the last append not yet in results.json
  const resultsMode = (at: RunnerState): 'full' | { readonly appendFrom: number } =>
    resultsWritten !== undefined && resultsWritten <= at.results.entries.size
      ? { appendFrom: resultsWritten }
      : 'full';

  const inThread = env.saveThread ?? true;
  let threadNoted = false;
  const saves = createSaveQueue<CheckpointError | FsError | JsonlInvalidValue>((e) => {
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
    flush: () => {
      // Written, not fsynced: a crash of the process loses nothing written; what survives a
      // power loss is what the checkpoints and close() fsync (or the log's own fsync policy, on
      // the thread pool). An fsync here blocked the loop at every step line.
      const flushed = history?.flush();
      if (flushed !== undefined && E.isLeft(flushed)) logError ??= flushed.left;
      return Promise.resolve(logError === undefined ? E.right(undefined) : E.left(logError));
    },
    saveCheckpoint: async (saved) => {
      // Queued writes first, so that this one is the last to write `latest`.
      await saves.idle();
      // The action log reaches the disk before the checkpoint it leads to.
      const drained = await drain();
      if (E.isLeft(drained)) return drained;
      return saveCheckpointEffect(saved ?? state, parts);
    },
    queueCheckpoint: async (options = {}) => {
      // The buffered actions are written now. Their fsync comes before the checkpoint's
      // files, so the log reaches the disk first: in the writer thread, which fsyncs the log's
      // file before it writes; in the main thread, on the thread pool, awaited by the write.
      const flushed = history?.flush();
      if (flushed !== undefined && E.isLeft(flushed)) {
        logError ??= flushed.left;
        return flushed;
      }
      const logged = inThread ? undefined : history?.syncInBackground();
      const at = options.state ?? state;
      const snapshot = await snapshotCheckpoint(at, parts);
      if (E.isLeft(snapshot)) return snapshot;
      saves.push({
        files: plannedCheckpoints(at),
        results: options.results === true,
        run: async () => {
          const synced = await logged;
          if (synced !== undefined && E.isLeft(synced)) {
            logError ??= synced.left;
            return synced;
          }
          const results = options.results === true ? resultsMode(at) : undefined;
          const written = inThread
            ? await writeCheckpointInThread(snapshot.right, {
                ...(results === undefined ? {} : { results }),
                syncFirst: history === undefined ? [] : [history.path],
              })
            : await writeCheckpoint(snapshot.right, results === undefined ? {} : { results });
          if (E.isLeft(written) && isFsErrorOn(written.left, history?.path)) {
            logError ??= written.left;
          }
          const why = inThread ? saveThreadUnavailable() : undefined;
          if (why !== undefined && !threadNoted) {
            threadNoted = true;
            warn(
              logger,
              warning(
                'SaveThreadUnavailable',
                `checkpoints are written in the main thread (the writer thread could not start: ${why})`,
              ),
            );
          }
          if (E.isRight(written) && results !== undefined) {
            resultsWritten = at.results.entries.size;
            journaled = results === 'full' ? undefined : at;
          }
          return written;
        },
      });
      return E.right(undefined);
    },
    settle: () => saves.idle(),
    pendingSaves: () => saves.size(),
    savesNeedTurns: () => saves.size() > 0 && (!inThread || savesInMainThread()),
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
      // The results are the checkpoint's now: the next save writes results.json whole.
      resultsWritten = undefined;
      journaled = undefined;
      dispatch(act.mergeConfig({ checkpoint: checkpoint.path }));
      logger.info(
        { checkpoint: checkpoint.path },
        `loaded ${checkpoint.path} at epoch ${state.progress.epoch}, step ${state.progress.step}`,
      );
      return E.right(state);
    },
    saveResult: async () => {
      const at = state;
      const written = await saveResultEffect(at);
      if (E.isRight(written)) {
        resultsWritten = at.results.entries.size;
        journaled = undefined;
      }
      return written;
    },
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
        resultCount(state),
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
      const idle = await saves.idle();
      if (inThread) forgetSaveThreadRun(checkpointDir(state));
      // The journal's lines go into results.json whole, so a finished run has it complete.
      const compacted =
        E.isRight(idle) && journaled !== undefined ? await saveResultEffect(journaled) : idle;
      const saved = E.isLeft(compacted) ? compacted : idle;
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

export type { RunnerEnv, RunnerStartError, Runner } from './runnerTypes.js';
