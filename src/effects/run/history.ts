/**
 * The action log: `history.jsonl` in the run dir, one dispatched action per line, with a
 * snapshot of the whole state every N actions, so that `replayLog` rebuilds the state at the end
 * or at any action or epoch by replaying at most N actions from the nearest snapshot.
 */
import { existsSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import type * as TE from 'fp-ts/lib/TaskEither.js';
import { reduce, type Action } from '../../reducers/actions.js';
import type { Json } from '../../state/Json.js';
import {
  decodeState,
  persistState,
  type RunnerState,
  type StateError,
} from '../../state/runner/RunnerState.js';
import type { FsError } from '../storage/atomic.js';
import {
  openJsonl,
  readJsonl,
  type FsyncPolicy,
  type JsonlCorrupt,
  type JsonlInvalidValue,
  type JsonlTornLine,
} from '../storage/jsonl.js';

/** One line of the log: an action, or a snapshot of the state after `actions` actions. */
export type HistoryLine =
  { readonly action: Action } | { readonly snapshot: RunnerState; readonly actions: number };

/** Options of {@link openHistory}. */
export interface HistoryOptions {
  /** Actions between snapshots (default 1000). */
  readonly snapshotEvery?: number;
  /** When appended lines reach the disk (default: fsync every 100 lines). */
  readonly fsync?: FsyncPolicy;
}

/** An open action log. */
export interface HistoryWriter {
  readonly path: string;
  /** Actions written so far (over every start of the run). */
  readonly count: () => number;
  /** Appends `action` (already applied: `after` is the state it led to); snapshots as due. */
  readonly append: (
    action: Action,
    after: RunnerState,
  ) => TE.TaskEither<FsError | JsonlInvalidValue, number>;
  readonly sync: () => TE.TaskEither<FsError, void>;
  readonly close: () => TE.TaskEither<FsError, void>;
}

/** What opening the log found: the writer, and a torn last line (from a crash) it cut off. */
export interface OpenedHistory {
  readonly writer: HistoryWriter;
  readonly warnings: readonly JsonlTornLine[];
}

/**
 * Opens (or creates) the action log at `path` and writes a snapshot of `initial` first. A new
 * log starts with it; an existing one (a resumed run) is continued after it, its torn last line
 * (a crash mid-append) cut off with a warning. Open it after loading a checkpoint, so the
 * snapshot is the state the run resumes from. Action numbers count every action written over
 * every start of the run.
 */
export const openHistory =
  (
    path: string,
    initial: RunnerState,
    options: HistoryOptions = {},
  ): TE.TaskEither<FsError | JsonlInvalidValue | JsonlCorrupt, OpenedHistory> =>
  async () => {
    const every = Math.max(1, options.snapshotEvery ?? 1000);
    let count = 0;
    if (existsSync(path)) {
      const existing = await readJsonl(path)();
      if (E.isLeft(existing)) return existing;
      count = existing.right.values.filter((v) => isActionLine(v)).length;
    }
    const opened = await openJsonl(
      path,
      options.fsync === undefined ? {} : { fsync: options.fsync },
    )();
    if (E.isLeft(opened)) return opened;
    const { writer: w, warnings } = opened.right;
    const first = await w.append({
      snapshot: persistState(initial),
      actions: count,
    } as unknown as Json)();
    if (E.isLeft(first)) return first;
    const writer: HistoryWriter = {
      path,
      count: () => count,
      // Both lines are queued at call time, so concurrent appends keep their order and a
      // snapshot always follows the action it is the state after.
      append: (action, after) => async () => {
        count += 1;
        const line = w.append({ action } as unknown as Json)();
        const snap =
          count % every === 0
            ? w.append({ snapshot: persistState(after), actions: count } as unknown as Json)()
            : undefined;
        const written = await line;
        if (E.isLeft(written)) return written;
        if (snap !== undefined) {
          const s = await snap;
          if (E.isLeft(s)) return s;
        }
        return written;
      },
      sync: w.sync,
      close: w.close,
    };
    return E.right({ writer, warnings });
  };

const isActionLine = (v: Json): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && 'action' in v;

/** Where to stop replaying: after `action` actions, or at the end of epoch `epoch`. */
export type ReplayTarget = { readonly action: number } | { readonly epoch: number };

/** A log line that is neither an action nor a valid snapshot. */
export interface HistoryInvalid {
  readonly _tag: 'HistoryInvalid';
  readonly path: string;
  readonly line: number;
  readonly error?: StateError;
  readonly message: string;
}

/** The state rebuilt from a log, how many actions it covers, and the log's warnings. */
export interface Replayed {
  readonly state: RunnerState;
  /** Actions applied to reach `state`. */
  readonly actions: number;
  /** Actions replayed from the nearest snapshot (the cost). */
  readonly replayed: number;
  readonly warnings: readonly JsonlTornLine[];
}

/**
 * Rebuilds the state recorded in an action log: at its end, after `at.action` actions, or as it
 * stood at the end of epoch `at.epoch` (before the first action that moved past it). Replays only
 * from the last snapshot before the target. A torn last line (a crash mid-append) is skipped with
 * a warning; any other bad line is an error naming the file and the line.
 *
 * @example
 * const r = await replayLog('experiments/iris-mlp-.../history.jsonl', { epoch: 3 })();
 */
export const replayLog =
  (
    path: string,
    at?: ReplayTarget,
  ): TE.TaskEither<FsError | JsonlCorrupt | HistoryInvalid, Replayed> =>
  async () => {
    const read = await readJsonl(path)();
    if (E.isLeft(read)) return read;
    const lines = read.right.values;
    // Index every line: snapshots with their action count, actions numbered from 1.
    type Item =
      | { kind: 'snapshot'; line: number; actions: number; raw: Json }
      | { kind: 'action'; line: number; n: number; action: Action };
    const items: Item[] = [];
    let n = 0;
    for (let i = 0; i < lines.length; i++) {
      const v = lines[i] as Record<string, Json> | null;
      if (v !== null && typeof v === 'object' && 'action' in v) {
        n += 1;
        items.push({ kind: 'action', line: i + 1, n, action: v['action'] as unknown as Action });
      } else if (
        v !== null &&
        typeof v === 'object' &&
        'snapshot' in v &&
        typeof v['actions'] === 'number'
      ) {
        n = v['actions'];
        items.push({ kind: 'snapshot', line: i + 1, actions: n, raw: v['snapshot'] ?? null });
      } else {
        return E.left({
          _tag: 'HistoryInvalid',
          path,
          line: i + 1,
          message: `${path}:${i + 1}: expected {"action": ...} or {"snapshot": ..., "actions": n}`,
        });
      }
    }
    const decodeAt = (
      item: Extract<Item, { kind: 'snapshot' }>,
    ): E.Either<HistoryInvalid, RunnerState> =>
      E.mapLeft((error: StateError) => ({
        _tag: 'HistoryInvalid' as const,
        path,
        line: item.line,
        error,
        message: `${path}:${item.line}: the snapshot is not a usable state:\n${error.message}`,
      }))(decodeState(item.raw));
    const target = at !== undefined && 'action' in at ? at.action : undefined;
    // The last snapshot at or before the target (for an epoch target: whose epoch is <= it).
    let start = -1;
    for (let i = items.length - 1; i >= 0; i--) {
      const it = items[i];
      if (it?.kind !== 'snapshot') continue;
      if (target !== undefined && it.actions > target) continue;
      if (at !== undefined && 'epoch' in at) {
        const s = decodeAt(it);
        if (E.isLeft(s)) return s;
        if (s.right.progress.epoch > at.epoch) continue;
      }
      start = i;
      break;
    }
    const snap = items[start];
    if (snap?.kind !== 'snapshot') {
      return E.left({
        _tag: 'HistoryInvalid',
        path,
        line: 1,
        message: `${path}: no snapshot at or before the target; the log must start with one`,
      });
    }
    const first = decodeAt(snap);
    if (E.isLeft(first)) return first;
    let state = first.right;
    let done = snap.actions;
    let replayed = 0;
    for (const it of items.slice(start + 1)) {
      // A later snapshot is the state the actions before it led to (or, after a restart, the
      // state the run resumed from): continue from it.
      if (it.kind === 'snapshot') {
        if (target !== undefined && it.actions > target) break;
        const s = decodeAt(it);
        if (E.isLeft(s)) return s;
        if (at !== undefined && 'epoch' in at && s.right.progress.epoch > at.epoch) break;
        state = s.right;
        done = it.actions;
        continue;
      }
      if (target !== undefined && it.n > target) break;
      const next = reduce(state, it.action);
      if (at !== undefined && 'epoch' in at && next.progress.epoch > at.epoch) break;
      state = next;
      done = it.n;
      replayed += 1;
    }
    return E.right({ state, actions: done, replayed, warnings: read.right.warnings });
  };
