/**
 * The spec's IO members over the runner state: saveCheckpoint, loadCheckpoint, fromCheckpoint,
 * loadPretrained, saveResult, and the config files json / fromJson / yaml / fromYaml. Each
 * returns a Promise<Either> whose error names the file and the fix; nothing throws.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { restore, setTimestamp, tryMergeConfig } from '../../reducers/reducers.js';
import type { Json } from '../../state/Json.js';
import { planCheckpoint } from '../../state/runner/checkpointPlan.js';
import { bestEpochs } from '../../state/runner/retention.js';
import {
  persistState,
  initialState,
  type RunnerState,
  type StateContext,
} from '../../state/runner/RunnerState.js';
import { checkpointDir, isBest, trainedInEpoch } from '../../state/runner/selectors.js';
import {
  durableGroup,
  linkOrCopyAtomic,
  nodeFs,
  type FileSystem,
  type FsError,
} from '../storage/atomic.js';
import {
  checkParts,
  collectStateDicts,
  loadCheckpointFile,
  restoreParts,
  type CheckpointError,
  type LoadedCheckpoint,
  type StateDict,
  type Stateful,
} from '../checkpoint/checkpointFile.js';
import {
  checkpointPath,
  pruneCheckpoints,
  saveCheckpointFiles,
  type SavedCheckpoint,
} from '../checkpoint/checkpointStore.js';
import { appendResults, saveResult, writesHere } from './resultFiles.js';
import {
  type LoadCheckpointError,
  type LoadedRun,
  type LoadCheckpointOptions,
  stateOf,
  type ReadCheckpoint,
  readCheckpoint,
  type Parts,
} from './checkpointSearch.js';

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointRunOptions {
  /** How many `epoch-N` checkpoints to keep (latest and best are always kept); default `config.maxToKeep`, else all. */
  readonly maxToKeep?: number;
  /** fsync files and folders (default true). */
  readonly fsync?: boolean;
  /**
   * The result files to write after the checkpoint, in the same durable batch (one fsync per
   * folder for all the files of the epoch): `'full'` ({@link saveResult}) or `{ appendFrom: n }`
   * ({@link appendResults} of the results at positions n and after). None when left out.
   */
  readonly results?: 'full' | { readonly appendFrom: number };
  /** The file system ({@link nodeFs} when left out; the writer thread passes `syncFs`). */
  readonly fs?: FileSystem;
}

/**
 * The spec's save_checkpoint: writes `latest` atomically, then makes `epoch-N` (when
 * `saveInterval > 0` and `(epoch + 1) % saveInterval == 0`) and `best` (when `isBest`) from it by
 * hard link, in `checkpointDir(state)`. The checkpoint holds the runner state and every part's
 * state dict. On a non-main rank nothing is written and the paths it would have written are
 * returned (`written: false`).
 */
export const saveCheckpoint = async (
  state: RunnerState,
  parts: Parts = {},
  options: SaveCheckpointRunOptions = {},
): Promise<E.Either<CheckpointError, SavedCheckpoint>> => {
  const snapshot = await snapshotCheckpoint(state, parts);
  return E.isLeft(snapshot) ? snapshot : writeCheckpoint(snapshot.right, options);
};

/**
 * The checkpoint files a save of `state` makes: `latest`, and `best`, `epoch-N` and the
 * `keepBest` copy as the state and config say ({@link writeCheckpoint} writes these).
 */
export const plannedCheckpoints = (state: RunnerState): readonly string[] => {
  const { keepBest } = state.config;
  return planFor(state, keepBest === undefined ? undefined : bestEpochs(state, keepBest));
};

/** The files a save of `state` makes (`kept`: the epochs of the `keepBest` best scores). */
const planFor = (state: RunnerState, kept: readonly number[] | undefined) =>
  planCheckpoint({
    epoch: state.progress.epoch,
    saveInterval: state.config.saveInterval,
    isBest: isBest(state),
    midEpoch: trainedInEpoch(state) > 0,
    keptBest: kept?.includes(state.progress.epoch) === true,
  });

/**
 * A checkpoint taken but not written yet: the state, and every part's state dict copied out of
 * the parts (a tfjs tensor's values are copied), so training can go on while it is written.
 * `dicts` is `null` on a non-main rank, which writes nothing.
 */
export interface CheckpointSnapshot {
  readonly state: RunnerState;
  readonly dicts: Readonly<Record<string, StateDict>> | null;
}

/** The first half of {@link saveCheckpoint}: copies the parts' state (main process only). */
export const snapshotCheckpoint = async (
  state: RunnerState,
  parts: Parts = {},
): Promise<E.Either<CheckpointError, CheckpointSnapshot>> => {
  if (!writesHere(state)) return E.right({ state, dicts: null });
  const dicts = await collectStateDicts(parts);
  return E.isLeft(dicts) ? dicts : E.right({ state, dicts: dicts.right });
};

/**
 * The second half of {@link saveCheckpoint}: writes a snapshot as the state's plan says, and the
 * result files of `options.results`. The files of one save are one durable batch: `latest` is
 * written, fsynced, renamed and its folder fsynced first (so no alias ever names a `latest` that
 * a power loss could undo); then the aliases (`best`, `epoch-N`) and the result files are each
 * fsynced and renamed, and each of their folders is fsynced once; only then are old `epoch-N`
 * files pruned.
 */
export const writeCheckpoint = async (
  snapshot: CheckpointSnapshot,
  options: SaveCheckpointRunOptions = {},
): Promise<E.Either<CheckpointError, SavedCheckpoint>> => {
  const { state } = snapshot;
  const { keepBest, keepEvery } = state.config;
  const kept = keepBest === undefined ? undefined : bestEpochs(state, keepBest);
  const plan = planFor(state, kept);
  if (snapshot.dicts === null) {
    const paths = [...new Set(['latest', ...plan])].map((n) =>
      checkpointPath(checkpointDir(state), n),
    );
    return E.right({ written: false, paths, removed: [] });
  }
  const maxToKeep = options.maxToKeep ?? state.config.maxToKeep;
  const fs = options.fs ?? nodeFs;
  const rules = {
    fs,
    ...(maxToKeep === undefined ? {} : { maxToKeep }),
    ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
    keep: {
      ...(keepEvery === undefined ? {} : { every: keepEvery }),
      ...(kept === undefined ? {} : { bestEpochs: kept }),
    },
  };
  const group = durableGroup(fs);
  const folder = checkpointDir(state);
  const saved = await saveCheckpointFiles(
    folder,
    { state: persistState(state) as unknown as Json, parts: snapshot.dicts },
    plan,
    { ...rules, group },
  );
  if (E.isLeft(saved)) return saved;
  const results = options.results;
  if (results !== undefined) {
    const written =
      results === 'full'
        ? await saveResult(state, { group, fs })
        : await appendResults(state, results.appendFrom, { group, fs });
    if (E.isLeft(written)) return written;
  }
  const committed = await group.commit();
  if (E.isLeft(committed)) return committed;
  const pruned = await pruneCheckpoints(folder, rules);
  return E.isLeft(pruned) ? pruned : E.right({ ...saved.right, removed: pruned.right });
};

/**
 * The pure half of a resume: `state` with the saved state restored (the `restore` reducer:
 * every `*Begin` set to the restored counter), `config.checkpoint` set to the file read, and the
 * adopted run dir's timestamp. The state unchanged when nothing was read.
 */
export const resumeState = (
  state: RunnerState,
  read: ReadCheckpoint,
  overrideConfig = false,
): RunnerState => {
  if (read.saved === null || read.checkpoint === null) return state;
  let next = restore(state, read.saved, { overrideConfig });
  if (read.identity !== undefined) {
    const adopted = tryMergeConfig(next, read.identity);
    if (E.isRight(adopted)) next = adopted.right;
  }
  const withPath = tryMergeConfig(next, { checkpoint: read.checkpoint.path });
  if (E.isRight(withPath)) next = withPath.right;
  return setTimestamp(next, read.timestamp);
};

/**
 * The spec's load_checkpoint, as one call: {@link readCheckpoint} (parts checked once, as the
 * check that lets autoResume fall back past a checkpoint that does not fit), then
 * {@link resumeState} and each part's `loadStateDict`.
 *
 * Errors: a missing path names it; neither a source nor autoResume says what to set.
 */
export const loadCheckpoint = async (
  state: RunnerState,
  source?: string | LoadedCheckpoint,
  options: LoadCheckpointOptions = {},
): Promise<E.Either<LoadCheckpointError, LoadedRun>> => {
  const parts = options.parts ?? {};
  const read = await readCheckpoint(state, source, {
    ...(options.autoResume === undefined ? {} : { autoResume: options.autoResume }),
    check: (c) => checkParts(parts, c),
  });
  if (E.isLeft(read)) return read;
  const { checkpoint, warnings } = read.right;
  if (checkpoint === null) return E.right({ state, path: null, checkpoint: null, warnings });
  const next = resumeState(state, read.right, options.overrideConfig ?? false);
  const restored = await restoreParts(parts, checkpoint, { strict: false });
  if (E.isLeft(restored)) return restored;
  return E.right({ state: next, path: checkpoint.path, checkpoint, warnings });
};

/**
 * The spec's from_checkpoint: a state built from a checkpoint alone (its config, counters,
 * results, meters and generator; every `*Begin` set to the saved counters). Parts present in
 * the checkpoint get `loadStateDict`.
 */
export const fromCheckpoint = async (
  source: string | LoadedCheckpoint,
  parts: Parts = {},
  context: StateContext = {},
): Promise<E.Either<LoadCheckpointError, RunnerState>> => {
  const loaded = typeof source === 'string' ? await loadCheckpointFile(source) : E.right(source);
  if (E.isLeft(loaded)) return loaded;
  const saved = stateOf(loaded.right);
  if (E.isLeft(saved)) return saved;
  const base = initialState(saved.right.config, {
    timestamp: context.timestamp ?? saved.right.timestamp,
    ...context,
  });
  const r = await loadCheckpoint(base, loaded.right, { parts });
  return E.map((run: LoadedRun) => run.state)(r);
};

/** The checkpoint has no model weights, or no pretrained path was given. */
export interface PretrainedUnavailable {
  readonly _tag: 'PretrainedUnavailable';
  readonly path: string | null;
  readonly message: string;
}

/**
 * The spec's load_pretrained: loads only the `model` part's weights from a checkpoint (default
 * `config.pretrained`) into `model`. The runner state is not touched.
 */
export const loadPretrained = async (
  state: RunnerState,
  model: Stateful,
  source?: string,
): Promise<E.Either<CheckpointError | PretrainedUnavailable, string>> => {
  const path = source ?? state.config.pretrained;
  if (path === undefined) {
    return E.left({
      _tag: 'PretrainedUnavailable',
      path: null,
      message: 'pretrained is not specified: set config.pretrained to a checkpoint file',
    });
  }
  const loaded = await loadCheckpointFile(path);
  if (E.isLeft(loaded)) return loaded;
  const weights = loaded.right.parts['model'];
  if (weights === undefined) {
    return E.left({
      _tag: 'PretrainedUnavailable',
      path,
      message: `${path}: no model weights in this checkpoint (its parts: ${Object.keys(loaded.right.parts).join(', ') || 'none'})`,
    });
  }
  const r = await restoreParts({ model }, { path, parts: { model: weights } });
  return E.map(() => path)(r);
};

/**
 * After a resume from `resumed`, makes the run's files agree with the restored state: redoes the
 * checkpoint plan of that state (`latest`, `best`, `epoch-N` as hard links of the file resumed
 * from, where missing or another file) and rewrites the result files, `best.json` included.
 * A kill between a checkpoint and its aliases or result files left them behind; without this the
 * run would continue with a `best` that is an epoch old for good. Returns the links remade.
 */
export const repairAfterResume = async (
  state: RunnerState,
  resumed: string,
): Promise<E.Either<FsError, readonly string[]>> => {
  const folder = checkpointDir(state);
  // Only a checkpoint of this run's own folder has aliases here to repair (an explicit
  // --checkpoint from elsewhere starts this run's files afresh).
  if (resolve(dirname(resumed)) !== resolve(folder)) return E.right([]);
  const plan = planFor(
    state,
    state.config.keepBest === undefined ? undefined : bestEpochs(state, state.config.keepBest),
  );
  const source = await stat(resumed).catch(() => undefined);
  if (source === undefined) return E.right([]);
  const remade: string[] = [];
  for (const n of plan) {
    const target = checkpointPath(folder, n);
    if (target === resumed) continue;
    const existing = await stat(target).catch(() => undefined);
    if (existing?.ino === source.ino && existing.dev === source.dev) continue;
    const linked = await linkOrCopyAtomic(resumed, target);
    if (E.isLeft(linked)) return linked;
    remade.push(target);
  }
  const written = await saveResult(state, { bestAlways: true });
  if (E.isLeft(written)) return written;
  return E.right(remade);
};

export {
  saveResult,
  appendResults,
  readResults,
  RESULTS_JOURNAL,
  type RunWriteOptions,
  type ReadResults,
  type ResultsCorrupt,
  type ResultsJournal,
} from './resultFiles.js';
export {
  json,
  yaml,
  fromJson,
  fromYaml,
  save,
  load,
  unwrap,
  type ConfigFileInvalid,
  type LoadFileError,
} from './configFiles.js';

export {
  type CheckpointNotSpecified,
  type CheckpointStateInvalid,
  type LoadCheckpointError,
  type ResumeWarning,
  type LoadedRun,
  type LoadCheckpointOptions,
  type ReadCheckpoint,
  type ReadCheckpointOptions,
  readCheckpoint,
  type Parts,
} from './checkpointSearch.js';
