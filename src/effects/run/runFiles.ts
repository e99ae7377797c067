/**
 * The spec's IO members over the runner state: saveCheckpoint, loadCheckpoint, fromCheckpoint,
 * loadPretrained, saveResult, and the config files json / fromJson / yaml / fromYaml. Each
 * returns a Promise<Either> whose error names the file and the fix; nothing throws.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { restore, setTimestamp, tryMergeConfig } from '../../reducers/reducers.js';
import type { Config } from '../../state/config/Config.js';
import { parseYaml } from '../../state/config/configText.js';
import type { Json } from '../../state/Json.js';
import { planCheckpoint } from '../../state/runner/checkpointPlan.js';
import { bestEpochs } from '../../state/runner/retention.js';
import type { ConfigDecodeError } from '../../state/runner/RunnerState.js';
import {
  decodeState,
  persistState,
  initialState,
  type RunnerState,
  type StateContext,
  type StateError,
} from '../../state/runner/RunnerState.js';
import { checkpointDir, id, isBest, name, trainedInEpoch } from '../../state/runner/selectors.js';
import { readText } from '../storage/configFile.js';
import { decodeConfig } from '../../state/config/decodeConfig.js';
import { configDiff, formatConfigDiff, type ConfigChange } from '../../state/config/configDiff.js';
import type { JsonObject } from '../../state/Json.js';
import { linkOrCopyAtomic, type FsError } from '../storage/atomic.js';
import {
  checkParts,
  collectStateDicts,
  loadCheckpointFile,
  peekCheckpointProgress,
  restoreParts,
  type CheckpointProgress,
  type CheckpointError,
  type LoadedCheckpoint,
  type StateDict,
  type Stateful,
} from '../checkpoint/checkpointFile.js';
import {
  findLatestValid,
  checkpointPath,
  saveCheckpointFiles,
  type CheckpointSkipped,
  type SavedCheckpoint,
} from '../checkpoint/checkpointStore.js';
import { saveResult, writesHere } from './resultFiles.js';
import { warning, type Warning } from '../../state/warning.js';

/** Named stateful parts saved next to the runner state (model, optimizer, scheduler, ...). */
export type Parts = Readonly<Record<string, Stateful>>;

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointRunOptions {
  /** How many `epoch-N` checkpoints to keep (latest and best are always kept); default `config.maxToKeep`, else all. */
  readonly maxToKeep?: number;
  /** fsync files and folders (default true). */
  readonly fsync?: boolean;
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

/** The second half of {@link saveCheckpoint}: writes a snapshot as the state's plan says. */
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
  return saveCheckpointFiles(
    checkpointDir(state),
    { state: persistState(state) as unknown as Json, parts: snapshot.dicts },
    plan,
    {
      ...((options.maxToKeep ?? state.config.maxToKeep) === undefined
        ? {}
        : { maxToKeep: options.maxToKeep ?? state.config.maxToKeep }),
      ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
      keep: {
        ...(keepEvery === undefined ? {} : { every: keepEvery }),
        ...(kept === undefined ? {} : { bestEpochs: kept }),
      },
    },
  );
};

/** Neither a checkpoint nor autoResume was given. */
export interface CheckpointNotSpecified {
  readonly _tag: 'CheckpointNotSpecified';
  readonly message: string;
}

/** The runner state inside a checkpoint is not usable. */
export interface CheckpointStateInvalid {
  readonly _tag: 'CheckpointStateInvalid';
  readonly path: string;
  readonly error: StateError | ConfigDecodeError['error'];
  readonly message: string;
}

/** Why a checkpoint could not be loaded. */
export type LoadCheckpointError =
  CheckpointError | FsError | CheckpointNotSpecified | CheckpointStateInvalid;

/** What a resume tells the user (logged by the shell at start-up). */
export type ResumeWarning =
  | CheckpointSkipped
  | Warning<
      | 'AutoResumeIgnored'
      | 'CheckpointPassedOver'
      | 'ResumedOtherCommit'
      | 'ClosestRunDiffers'
      | 'NoCheckpointFound'
      | 'ConfigChangedOnResume'
    >;

/** What {@link loadCheckpoint} did: the new state, the file used (or null), warnings to log. */
export interface LoadedRun {
  readonly state: RunnerState;
  readonly path: string | null;
  /** The checkpoint read (its parts can be restored later, see `restoreParts`), or `null`. */
  readonly checkpoint: LoadedCheckpoint | null;
  readonly warnings: readonly ResumeWarning[];
}

/** Options of {@link loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /** Resume from the newest valid checkpoint when no source is given (default `config.autoResume`). */
  readonly autoResume?: boolean;
  /** `true`: the checkpoint's config wins on conflicts (default `false`: the current one wins). */
  readonly overrideConfig?: boolean;
  /** Parts whose state dicts are loaded from the checkpoint (those it has). */
  readonly parts?: Parts;
}

const stateOf = (loaded: LoadedCheckpoint): E.Either<CheckpointStateInvalid, RunnerState> =>
  E.mapLeft((error: StateError) => ({
    _tag: 'CheckpointStateInvalid' as const,
    path: loaded.path,
    error,
    message: `${loaded.path}: the runner state in it is not usable:\n${error.message}`,
  }))(decodeState(loaded.state));

/**
 * Run dirs of the same run (`projectRoot/name-id/<timestamp>`), newest first, so that a resumed
 * run started at another time still finds its checkpoints. Just `[dir(state)]` when `dir` or
 * `checkpointDir` is set explicitly.
 */
const resumeCandidates = async (state: RunnerState): Promise<readonly [string, string][]> => {
  const own: [string, string] = [checkpointDir(state), state.timestamp];
  if (state.config.dir !== undefined || state.config.checkpointDir !== undefined) return [own];
  const root = join(state.config.projectRoot, `${name(state)}-${id(state)}`);
  let stamps: string[];
  try {
    stamps = (await readdir(root, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [own];
  }
  const others = stamps
    .filter((s) => s !== state.timestamp)
    .sort()
    .reverse()
    .map((s): [string, string] => [join(root, s, state.config.checkpointDirName), s]);
  return [own, ...others];
};

/** What {@link readCheckpoint} found: the checkpoint read and verified, and the state in it. */
export interface ReadCheckpoint {
  /** The checkpoint (its parts are restored later, see `restoreParts`), or `null` when none. */
  readonly checkpoint: LoadedCheckpoint | null;
  /** The runner state saved in it (decoded), or `null`. */
  readonly saved: RunnerState | null;
  /**
   * The timestamp of the run dir the checkpoint belongs to: the caller's own, or that of an
   * earlier start of the same run found by autoResume (its run dir is adopted).
   */
  readonly timestamp: string;
  /**
   * Set when autoResume found this run under another commit (the same config apart from
   * `experimentId`): the identity of that run, adopted with its run dir.
   */
  readonly identity?: { readonly experimentId: string; readonly runId: string };
  readonly warnings: readonly ResumeWarning[];
}

/** A run of the same name whose config differs, found when autoResume has nothing to resume. */
interface RelatedRun {
  readonly dir: string;
  readonly stamp: string;
  readonly config: Config;
  readonly changes: readonly ConfigChange[];
  readonly latest: string;
  readonly progress: CheckpointProgress | undefined;
}

/**
 * Earlier runs of the same name under `projectRoot` (other ids: another commit or another
 * config), each with its config difference from `state`'s and the progress of its latest
 * checkpoint. Unreadable folders are passed by.
 */
const relatedRuns = async (state: RunnerState): Promise<RelatedRun[]> => {
  const root = state.config.projectRoot;
  const own = `${name(state)}-${id(state)}`;
  const prefix = `${name(state)}-`;
  const out: RelatedRun[] = [];
  const list = async (folder: string): Promise<string[]> =>
    readdir(folder).catch(() => [] as string[]);
  for (const run of await list(root)) {
    if (!run.startsWith(prefix) || run === own) continue;
    for (const stamp of (await list(join(root, run))).sort().reverse()) {
      const folder = join(root, run, stamp);
      const text = await readText(join(folder, 'config.yaml'));
      if (E.isLeft(text)) continue;
      const parsed = E.chain(decodeConfigSafe)(parseYaml(text.right));
      if (E.isLeft(parsed)) continue;
      const config = parsed.right;
      const latest = join(
        config.checkpointDir ?? join(folder, config.checkpointDirName),
        'latest.safetensors',
      );
      out.push({
        dir: folder,
        stamp,
        config,
        // A seed drawn at start-up is in the earlier run's config only: not a difference.
        changes: configDiff(config as JsonObject, state.config as JsonObject, {
          identity: true,
        }).filter((c) => !(c.path === 'seed' && state.config.seed === undefined)),
        latest,
        progress: await peekCheckpointProgress(latest),
      });
    }
  }
  return out;
};

const decodeConfigSafe = (u: unknown): E.Either<unknown, Config> => decodeConfig(u);

/** Options of {@link readCheckpoint}. */
export interface ReadCheckpointOptions {
  /** Resume from the newest valid checkpoint when no source is given (default `config.autoResume`). */
  readonly autoResume?: boolean;
  /**
   * A check of a verified checkpoint, e.g. `(c) => checkParts(parts, c)`: with autoResume a
   * checkpoint that fails it is skipped (named in a warning); a given source that fails it is
   * the error.
   */
  readonly check?: (loaded: LoadedCheckpoint) => Promise<E.Either<CheckpointError, unknown>>;
}

/**
 * Reads and verifies the checkpoint to resume from, and decodes the state in it; restores
 * nothing (that is {@link resumeState} and `restoreParts`). The source is a path, an already
 * loaded checkpoint, or `config.checkpoint`; with `autoResume` and no source, the checkpoint
 * with the most progress that verifies, across every start of this run (corrupt or unfitting
 * files are skipped, each named in a warning). With nothing found under autoResume, `checkpoint`
 * is `null`.
 */
export const readCheckpoint = async (
  state: RunnerState,
  source?: string | LoadedCheckpoint,
  options: ReadCheckpointOptions = {},
): Promise<E.Either<LoadCheckpointError, ReadCheckpoint>> => {
  const autoResume = options.autoResume ?? state.config.autoResume;
  const given = source ?? state.config.checkpoint;
  const warnings: ResumeWarning[] = [];
  let loaded: LoadedCheckpoint;
  let timestamp = state.timestamp;
  if (given !== undefined) {
    if (autoResume) {
      warnings.push(
        warning(
          'AutoResumeIgnored',
          'autoResume is ignored: a checkpoint is given (config.checkpoint or an argument)',
        ),
      );
    }
    if (typeof given === 'string') {
      const r = await loadCheckpointFile(given);
      if (E.isLeft(r)) {
        if (r.left._tag === 'CheckpointNotFound') {
          return E.left({
            ...r.left,
            message: `checkpoint is set to ${JSON.stringify(given)} but it does not exist; fix config.checkpoint or set autoResume instead`,
          });
        }
        return r;
      }
      loaded = r.right;
    } else loaded = given;
    if (options.check !== undefined) {
      const ok = await options.check(loaded);
      if (E.isLeft(ok)) return ok;
    }
  } else if (autoResume) {
    let found: LoadedCheckpoint | null = null;
    for (const [folder, stamp] of await resumeCandidates(state)) {
      const r = await findLatestValid(
        folder,
        options.check === undefined ? {} : { check: options.check },
      );
      if (E.isLeft(r)) {
        if (r.left._tag === 'FileNotFound') continue;
        return r;
      }
      warnings.push(
        ...r.right.skipped.map((s: CheckpointSkipped) => ({
          ...s,
          message: `skipped ${s.message}`,
        })),
      );
      const chosen = r.right.checkpoint;
      for (const p of r.right.passedOver) {
        warnings.push(
          warning(
            'CheckpointPassedOver',
            `autoResume: passed over ${p.path} (epoch ${String(p.epoch)}, step ${String(p.step)}): it was modified later than ${chosen?.path ?? ''} but holds less progress`,
          ),
        );
      }
      if (chosen !== null) {
        found = chosen;
        timestamp = stamp;
        break;
      }
    }
    let identity: ReadCheckpoint['identity'];
    if (
      found === null &&
      state.config.dir === undefined &&
      state.config.checkpointDir === undefined
    ) {
      const related = await relatedRuns(state);
      // The same config started at another commit is this run: resume it.
      for (const other of related.filter((r) => r.changes.length === 0 && r.progress)) {
        const r = await findLatestValid(
          dirname(other.latest),
          options.check === undefined ? {} : { check: options.check },
        );
        if (E.isLeft(r) || r.right.checkpoint === null) continue;
        found = r.right.checkpoint;
        timestamp = other.stamp;
        identity = { experimentId: other.config.experimentId, runId: other.config.runId };
        warnings.push(
          warning(
            'ResumedOtherCommit',
            `autoResume: resuming ${other.dir}, the same config started at commit ${other.config.experimentId}; this is commit ${state.config.experimentId}`,
          ),
        );
        break;
      }
      if (found === null) {
        const closest = related
          .filter((r) => r.progress !== undefined)
          .sort((a, b) => a.changes.length - b.changes.length)[0];
        if (closest !== undefined) {
          warnings.push(
            warning(
              'ClosestRunDiffers',
              `autoResume: no checkpoint of this run (runId ${state.config.runId}); the closest earlier run of ${name(state)} is ${closest.dir} (epoch ${String(closest.progress?.epoch)}, step ${String(closest.progress?.step)}), whose config differs:\n${formatConfigDiff(closest.changes)}\nto continue it instead, pass --checkpoint ${closest.latest}`,
            ),
          );
        }
      }
    }
    if (found === null) {
      warnings.push(
        warning(
          'NoCheckpointFound',
          `autoResume: no valid checkpoint in ${checkpointDir(state)}; starting fresh`,
        ),
      );
      return E.right({ checkpoint: null, saved: null, timestamp, warnings });
    }
    loaded = found;
    if (identity !== undefined) {
      const saved = stateOf(loaded);
      if (E.isLeft(saved)) return saved;
      return E.right({ checkpoint: loaded, saved: saved.right, timestamp, identity, warnings });
    }
  } else {
    return E.left({
      _tag: 'CheckpointNotSpecified',
      message: `no checkpoint to load: set config.checkpoint to a checkpoint file, or config.autoResume to true to resume from the newest valid checkpoint in ${checkpointDir(state)}`,
    });
  }
  const saved = stateOf(loaded);
  if (E.isLeft(saved)) return saved;
  if (given !== undefined) {
    // An explicit resume with a changed config is allowed, but never silently.
    const changes = configDiff(saved.right.config as JsonObject, state.config as JsonObject, {
      identity: true,
    });
    if (changes.length > 0) {
      warnings.push(
        warning(
          'ConfigChangedOnResume',
          `checkpoint ${loaded.path} was saved with another config; continuing with this one, which differs:\n${formatConfigDiff(changes)}`,
        ),
      );
    }
  }
  return E.right({ checkpoint: loaded, saved: saved.right, timestamp, warnings });
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

export { saveResult, type RunWriteOptions } from './resultFiles.js';
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
