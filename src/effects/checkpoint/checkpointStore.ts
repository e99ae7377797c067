/**
 * The checkpoint folder: saving `latest` (and `best` / `epoch-N` made from it by hard link),
 * retention of `epoch-N` copies, listing, finding the newest valid checkpoint after a crash, and
 * the spec's `check_dir`.
 */
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import type { CheckpointPlan } from '../../state/runner/checkpointPlan.js';
import { prunable, type KeepRules } from '../../state/runner/retention.js';
import {
  durableGroup,
  fsError,
  fsyncDir,
  linkOrCopyAtomic,
  listDir,
  nodeFs,
  tryFs,
  type DurableGroup,
  type FsError,
} from '../storage/atomic.js';
import {
  loadCheckpointFile,
  peekCheckpointProgress,
  saveCheckpointFile,
  type CheckpointError,
  type CheckpointFileOptions,
  type CheckpointPayload,
  type LoadedCheckpoint,
} from './checkpointFile.js';

/** The file extension of checkpoints: they are safetensors files. */
export const CHECKPOINT_EXT = '.safetensors';

const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const EPOCH_RE = /^epoch-(\d+)\.safetensors$/;

/**
 * The path of the checkpoint called `name` (`latest`, `best`, `epoch-3`) in `dir`. Throws on a
 * name that is not a plain file name (a programmer error).
 */
export const checkpointPath = (dir: string, name: string): string => {
  if (!NAME_RE.test(name)) throw new Error(`invalid checkpoint name ${JSON.stringify(name)}`);
  return path.join(dir, `${name}${CHECKPOINT_EXT}`);
};

/** Options of {@link saveCheckpointFiles}. */
export interface SaveCheckpointOptions extends CheckpointFileOptions {
  /** How many `epoch-N` files to keep, the highest N first; absent or `<= 0` keeps all. */
  readonly maxToKeep?: number;
  /** More keep rules (`every`, `bestEpochs`); `last` defaults to `maxToKeep`. */
  readonly keep?: KeepRules;
  /**
   * The renames of the aliases (`best`, `epoch-N`) join this batch and the caller commits it
   * with the other files of the epoch, then calls {@link pruneCheckpoints}. `latest` is made
   * durable (its folder fsynced) before any alias is published, with or without a group.
   */
  readonly group?: DurableGroup;
}

/** What a save did. */
export interface SavedCheckpoint {
  /** `false` on a non-main rank: nothing was written. */
  readonly written: boolean;
  /** The path of every planned name, `latest` first (also on a non-main rank). */
  readonly paths: readonly string[];
  /** `epoch-N` files removed by `maxToKeep` (none when a `group` was given: see pruneCheckpoints). */
  readonly removed: readonly string[];
}

/**
 * Saves a checkpoint to `dir`: writes `latest` atomically and durably, then makes every other
 * planned name (`best`, `epoch-N`) from the committed `latest` by hard link (copy + fsync + rename
 * where links are not supported), never by serialising again, then applies `maxToKeep` to the
 * `epoch-N` files. The aliases' renames are made durable by one fsync of `dir` (or, given
 * `options.group`, by the caller's commit of it). `latest` and `best` are always kept. If a step
 * fails, the files already committed stay valid and the previous ones are intact.
 *
 * @example
 * ```ts
 * const plan = planCheckpoint({ epoch: 9, saveInterval: 5, isBest: true });
 * const saved = await saveCheckpointFiles(dir, { state, parts: { model: sd } }, plan, { maxToKeep: 3 });
 * ```
 */
export const saveCheckpointFiles = async (
  dir: string,
  payload: CheckpointPayload,
  plan: CheckpointPlan,
  options: SaveCheckpointOptions = {},
): Promise<E.Either<CheckpointError, SavedCheckpoint>> => {
  const { group, maxToKeep: _max, keep: _keep, ...fileOptions } = options;
  const latest = checkpointPath(dir, 'latest');
  const others = [...new Set(plan)]
    .filter((n) => n !== 'latest')
    .map((n) => checkpointPath(dir, n));
  const paths = [latest, ...others];
  // `latest` commits on its own (its folder fsynced) before any alias names it.
  const saved = await saveCheckpointFile(latest, payload, fileOptions);
  if (E.isLeft(saved)) return saved;
  const batch = group ?? durableGroup(options.fs ?? nodeFs);
  for (const target of others) {
    const linked = await linkOrCopyAtomic(latest, target, { ...fileOptions, group: batch });
    if (E.isLeft(linked)) return linked;
  }
  if (group !== undefined) return E.right({ written: true, paths, removed: [] });
  const committed = await batch.commit();
  if (E.isLeft(committed)) return committed;
  const pruned = await pruneCheckpoints(dir, options);
  return E.isLeft(pruned) ? pruned : E.right({ written: true, paths, removed: pruned.right });
};

/**
 * Applies the keep rules of `options` (`maxToKeep`, `keep`) to the `epoch-N` files of `dir`: call
 * it after the new checkpoint and its aliases are durable. Removals are fsynced (one fsync of
 * `dir`). Resolves to the paths removed.
 */
export const pruneCheckpoints = async (
  dir: string,
  options: Pick<SaveCheckpointOptions, 'fs' | 'fsync' | 'maxToKeep' | 'keep'> = {},
): Promise<E.Either<FsError, readonly string[]>> => {
  const rules: KeepRules = { last: options.maxToKeep, ...options.keep };
  if (!((rules.last ?? 0) > 0) && rules.bestEpochs === undefined) return E.right([]);
  const fs = options.fs ?? nodeFs;
  const names = await tryFs('list', dir, () => fs.readdir(dir));
  if (E.isLeft(names)) return names;
  const removed: string[] = [];
  for (const n of prunable(names.right, rules)) {
    const file = path.join(dir, n);
    const gone = await tryFs('remove', file, () => fs.unlink(file));
    if (E.isLeft(gone) && gone.left._tag !== 'FileNotFound') return gone;
    removed.push(file);
  }
  if (removed.length > 0 && (options.fsync ?? true)) {
    const synced = await tryFs('fsync', dir, () => fsyncDir(fs, dir));
    if (E.isLeft(synced)) return synced;
  }
  return E.right(removed);
};

/** A checkpoint file in a folder, as listed (not yet verified). */
export interface CheckpointEntry {
  /** `latest`, `best`, `epoch-3`, ... (the file name without `.safetensors`). */
  readonly name: string;
  readonly path: string;
  readonly kind: 'latest' | 'best' | 'epoch' | 'other';
  /** N for `epoch-N`, otherwise `null`. */
  readonly epoch: number | null;
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

const KIND_RANK: Readonly<Record<CheckpointEntry['kind'], number>> = {
  latest: 0,
  epoch: 1,
  best: 2,
  other: 3,
};

/**
 * Lists the checkpoint files of `dir` (hidden temporary files are never listed), newest first:
 * by modification time, then `latest`, `epoch-N` (highest N first), `best`, others. A missing
 * folder has none.
 */
export const listCheckpoints = async (
  dir: string,
  options: Pick<CheckpointFileOptions, 'fs'> = {},
): Promise<E.Either<FsError, CheckpointEntry[]>> => {
  const fs = options.fs ?? nodeFs;
  const listed = await listDir(fs, dir);
  if (E.isLeft(listed)) return listed;
  const names = listed.right ?? [];
  const entries: CheckpointEntry[] = [];
  for (const file of names) {
    if (!file.endsWith(CHECKPOINT_EXT) || file.startsWith('.')) continue;
    const full = path.join(dir, file);
    let st: Awaited<ReturnType<typeof fs.stat>>;
    try {
      st = await fs.stat(full);
    } catch (cause) {
      const e = fsError('stat', full, cause);
      if (e._tag === 'FileNotFound') continue;
      return E.left(e);
    }
    if (!st.isFile()) continue;
    const name = file.slice(0, -CHECKPOINT_EXT.length);
    const m = EPOCH_RE.exec(file);
    const kind = name === 'latest' ? 'latest' : name === 'best' ? 'best' : m ? 'epoch' : 'other';
    entries.push({
      name,
      path: full,
      kind,
      epoch: m ? Number(m[1]) : null,
      mtimeMs: st.mtimeMs,
      size: st.size,
      ino: st.ino,
    });
  }
  entries.sort(
    (a, b) =>
      b.mtimeMs - a.mtimeMs ||
      KIND_RANK[a.kind] - KIND_RANK[b.kind] ||
      (b.epoch ?? 0) - (a.epoch ?? 0) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  return E.right(entries);
};

/** A checkpoint that {@link findLatestValid} skipped, and why. */
export interface CheckpointSkipped {
  readonly _tag: 'CheckpointSkipped';
  readonly path: string;
  readonly reason: CheckpointError;
  readonly message: string;
}

/** A checkpoint ranked above the one chosen that was not used (it did not verify). */
export interface RankedCheckpoint {
  readonly path: string;
  readonly epoch: number | null;
  readonly step: number | null;
  readonly mtimeMs: number;
}

/** The newest valid checkpoint of a folder (or `null` if there is none) and the ones skipped. */
export interface LatestValid {
  readonly checkpoint: LoadedCheckpoint | null;
  readonly skipped: readonly CheckpointSkipped[];
  /**
   * Valid-looking checkpoints with a newer modification time than the one chosen, which hold
   * less progress (a copied run dir, an older `best`): passed over, for the log.
   */
  readonly passedOver: readonly RankedCheckpoint[];
}

/** Options of {@link findLatestValid}. */
export interface FindLatestValidOptions extends Pick<CheckpointFileOptions, 'fs'> {
  /**
   * A further check of a checkpoint that loaded and verified, e.g. `(c) => checkParts(parts, c)`
   * so that a checkpoint whose tensors do not fit the model is skipped too.
   */
  readonly check?: (loaded: LoadedCheckpoint) => Promise<E.Either<CheckpointError, unknown>>;
}

/**
 * Finds the checkpoint of `dir` with the most progress that loads and verifies. Candidates are
 * ranked by the progress their header holds (step, then epoch; then `latest`, `epoch-N`, `best`),
 * never by file times, which a copy (`cp` without `-p`, an object store) resets. A corrupt,
 * truncated or too new file is skipped with a {@link CheckpointSkipped} warning naming it; names
 * that share a skipped file's inode (hard links) are skipped too.
 *
 * @example
 * ```ts
 * const found = await findLatestValid('runs/a/checkpoints');
 * if (E.isRight(found)) for (const w of found.right.skipped) logger.warn(w.message);
 * ```
 */
export const findLatestValid = async (
  dir: string,
  options: FindLatestValidOptions = {},
): Promise<E.Either<FsError, LatestValid>> => {
  const listed = await listCheckpoints(dir, options);
  if (E.isLeft(listed)) return listed;
  const ranked = await Promise.all(
    listed.right.map(async (entry) => ({
      entry,
      progress: await peekCheckpointProgress(entry.path, options),
    })),
  );
  // Unreadable headers first, so each damaged file is tried and named in a warning; then the
  // most progress first.
  const unknown = Number.MAX_SAFE_INTEGER;
  ranked.sort(
    (a, b) =>
      (b.progress?.step ?? unknown) - (a.progress?.step ?? unknown) ||
      (b.progress?.epoch ?? unknown) - (a.progress?.epoch ?? unknown) ||
      b.entry.mtimeMs - a.entry.mtimeMs ||
      KIND_RANK[a.entry.kind] - KIND_RANK[b.entry.kind] ||
      (b.entry.epoch ?? 0) - (a.entry.epoch ?? 0),
  );
  const skipped: CheckpointSkipped[] = [];
  const bad = new Map<number, CheckpointError>();
  for (const { entry } of ranked) {
    const known = entry.ino > 0 ? bad.get(entry.ino) : undefined;
    const loaded: E.Either<CheckpointError, LoadedCheckpoint> =
      known === undefined ? await loadCheckpointFile(entry.path, options) : E.left(known);
    let checked = loaded;
    if (E.isRight(loaded) && options.check !== undefined) {
      const ok = await options.check(loaded.right);
      if (E.isLeft(ok)) checked = ok;
    }
    if (E.isRight(checked)) {
      const passedOver = ranked
        .filter(
          (r) =>
            r.entry.ino !== entry.ino &&
            r.entry.mtimeMs > entry.mtimeMs &&
            !skipped.some((s) => s.path === r.entry.path),
        )
        .map((r) => ({
          path: r.entry.path,
          epoch: r.progress?.epoch ?? null,
          step: r.progress?.step ?? null,
          mtimeMs: r.entry.mtimeMs,
        }));
      return E.right({ checkpoint: checked.right, skipped, passedOver });
    }
    const reason = checked.left;
    if (reason._tag === 'CheckpointNotFound') continue;
    if (entry.ino > 0) bad.set(entry.ino, reason);
    skipped.push({
      _tag: 'CheckpointSkipped',
      path: entry.path,
      reason,
      message: `checkpoint ${entry.path}: ${reason.message}`,
    });
  }
  return E.right({ checkpoint: null, skipped, passedOver: [] });
};

/** What {@link checkDir} may do when the folder is not empty. */
export type CheckDirAction = 'warn' | 'raise' | 'ignore';

/** The folder is not empty (a warning with `warn`, the error with `raise`). */
export interface DirNotEmpty {
  readonly _tag: 'DirNotEmpty';
  readonly path: string;
  readonly message: string;
}

/** `checkDir` was given an action other than `warn`, `raise` or `ignore`. */
export interface CheckDirActionInvalid {
  readonly _tag: 'CheckDirActionInvalid';
  readonly action: string;
  readonly message: string;
}

/** Whether the folder is empty, and the warnings to log. */
export interface CheckDirResult {
  readonly empty: boolean;
  readonly warnings: readonly DirNotEmpty[];
}

/**
 * The spec's `check_dir`: whether `dir` is empty (a folder that does not exist yet is empty). When
 * it is not, `warn` returns a `DirNotEmpty` warning, `raise` a `DirNotEmpty` error, `ignore`
 * nothing.
 */
export const checkDir = async (
  dir: string,
  action: CheckDirAction = 'warn',
  options: Pick<CheckpointFileOptions, 'fs'> = {},
): Promise<E.Either<DirNotEmpty | CheckDirActionInvalid | FsError, CheckDirResult>> => {
  const given = action as string;
  if (given !== 'warn' && given !== 'raise' && given !== 'ignore')
    return E.left({
      _tag: 'CheckDirActionInvalid',
      action: given,
      message: `checkDir: action should be one of warn, raise or ignore, but got ${JSON.stringify(given)}`,
    });
  const listed = await listDir(options.fs ?? nodeFs, dir);
  if (E.isLeft(listed)) return listed;
  const names = listed.right ?? [];
  if (names.length === 0) return E.right({ empty: true, warnings: [] });
  const notEmpty: DirNotEmpty = {
    _tag: 'DirNotEmpty',
    path: dir,
    message: `Directory ${dir} is not empty; choose another dir or projectRoot, or resume with autoResume`,
  };
  if (action === 'raise') return E.left(notEmpty);
  return E.right({ empty: false, warnings: action === 'warn' ? [notEmpty] : [] });
};
