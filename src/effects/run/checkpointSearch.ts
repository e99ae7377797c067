/**
 * Which checkpoint a run resumes from, and reading it: `config.checkpoint`, or under autoResume
 * the newest valid checkpoint of this run's starts ranked by the progress inside them (never by
 * file times), the same config at another commit, or a warning naming the closest earlier run.
 * Returns what was read (`readCheckpoint`); restoring the state and the parts is the caller's.
 */
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import type { Config } from '../../state/config/Config.js';
import { parseYaml } from '../../state/config/configText.js';
import type { ConfigDecodeError } from '../../state/runner/RunnerState.js';
import { decodeState, type RunnerState, type StateError } from '../../state/runner/RunnerState.js';
import { checkpointDir, id, name } from '../../state/runner/selectors.js';
import { readText } from '../storage/configFile.js';
import { decodeConfig } from '../../state/config/decodeConfig.js';
import { configDiff, formatConfigDiff, type ConfigChange } from '../../state/config/configDiff.js';
import type { JsonObject } from '../../state/Json.js';
import { type FsError } from '../storage/atomic.js';
import {
  loadCheckpointFile,
  peekCheckpointProgress,
  type CheckpointProgress,
  type CheckpointError,
  type LoadedCheckpoint,
  type Stateful,
} from '../checkpoint/checkpointFile.js';
import { findLatestValid, type CheckpointSkipped } from '../checkpoint/checkpointStore.js';
import { warning, type Warning } from '../../state/warning.js';

/** Named stateful parts saved next to the runner state (model, optimizer, scheduler, ...). */
export type Parts = Readonly<Record<string, Stateful>>;

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

export const stateOf = (loaded: LoadedCheckpoint): E.Either<CheckpointStateInvalid, RunnerState> =>
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
