/**
 * The action log: `history.jsonl` in the run dir. Schema 2 (what this version writes):
 *
 * ```
 * {"danlingLog":2}                                      the header, line 1
 * {"actions":0,"snapshot":{...the whole state...}}      a full snapshot: at every start of the run
 * {"action":{"type":"stepProgress","steps":1}}          one line per dispatched action
 * {"actions":1000,"snapshot":{...no results...},"results":{"from":k,"add":[...]}}
 * ```
 *
 * Every `snapshotEvery` actions a snapshot of the state is written *without* its results: they
 * are the results of the previous snapshot cut at `from`, plus the entries in `add` (the ones
 * appended or changed since). So the file grows linearly with the actions, and `replayLog`
 * rebuilds the state at the end, at any action or at any epoch by applying at most one snapshot
 * interval of actions. Schema 1 files (no header, full snapshots only) are read as well.
 *
 * Appends are batched and written synchronously ({@link openLineAppender}): a process crash
 * loses at most the last `maxLines` (256) dispatched actions, and none dispatched more than
 * `maxMs` (100 ms) before a later one.
 */
import * as E from 'fp-ts/lib/Either.js';
import { existsSync } from 'node:fs';
import { type Action } from '../../reducers/actions.js';
import { isJson, type Json } from '../../state/Json.js';
import { type ResultEntry } from '../../state/runner/results.js';
import { persistState, SCHEMA_VERSION, type RunnerState } from '../../state/runner/RunnerState.js';
import { get, intMapGet } from '../../state/runner/vector.js';
import type { FsError } from '../storage/atomic.js';
import {
  type FsyncPolicy,
  type JsonlCorrupt,
  type JsonlInvalidValue,
  type JsonlTornLine,
} from '../storage/jsonl.js';
import {
  findLastLine,
  openLineAppender,
  scanLines,
  type BatchOptions,
} from '../storage/lineAppender.js';
import { ACTION, LOG_SCHEMA, startsWith } from './historyReader.js';

/** One line of the log: the header, an action, or a snapshot of the state after `actions` actions. */
export type HistoryLine =
  | { readonly danlingLog: number }
  | { readonly action: Action }
  | {
      readonly actions: number;
      readonly snapshot: Json;
      readonly results?: { readonly from: number; readonly add: readonly ResultEntry[] };
    };

/** Options of {@link openHistory}. */
export interface HistoryOptions {
  /** Actions between snapshots (default 1000). */
  readonly snapshotEvery?: number;
  /**
   * When written lines are fsynced (what survives a power loss; default `{ every: 100000 }`
   * lines, checked once per batch and run on the thread pool so the loop does not wait, plus a
   * synchronous fsync at every `sync`: before each checkpoint and at close).
   */
  readonly fsync?: FsyncPolicy;
  /** The crash-loss bound (default at most 256 actions or 100 ms unwritten). */
  readonly batch?: Omit<BatchOptions, 'fsync'>;
}

/** An open action log. Appends are synchronous; a failed write is kept and reported by `flush`. */
export interface HistoryWriter {
  readonly path: string;
  /** Actions written so far (over every start of the run). */
  readonly count: () => number;
  /** Buffers `action` (already applied: `after` is the state it led to) and a snapshot as due. */
  readonly append: (action: Action, after: RunnerState) => void;
  /** Writes what is buffered; the first failed append, if any. */
  readonly flush: () => E.Either<FsError | JsonlInvalidValue, void>;
  /** Writes what is buffered and fsyncs. */
  readonly sync: () => Promise<E.Either<FsError | JsonlInvalidValue, void>>;
  /** Writes what is buffered now; resolves once it is fsynced on the thread pool. */
  readonly syncInBackground: () => Promise<E.Either<FsError | JsonlInvalidValue, void>>;
  readonly close: () => Promise<E.Either<FsError | JsonlInvalidValue, void>>;
}

/** What opening the log found: the writer, and a torn last line (from a crash) it cut off. */
export interface OpenedHistory {
  readonly writer: HistoryWriter;
  readonly warnings: readonly JsonlTornLine[];
}

// ---------------------------------------------------------------------------------------------
// Writing.

const keyText = new Map<string, string>();
const quoted = (k: string): string => {
  let q = keyText.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (keyText.size < 10_000) keyText.set(k, q);
  }
  return q;
};

const STEP_1 = '{"action":{"type":"stepProgress","steps":1}}';
const UPDATE_METERS_KEYS = ['type', 'values', 'n'];
const STEP_PROGRESS_KEYS = ['type', 'steps'];
const headKeys: string[] = [];
const headTexts: string[] = [];

/** Whether `o`'s own enumerable keys are `keys`, in that order (as `JSON.stringify` writes them). */
const sameKeys = (o: object, keys: readonly string[]): boolean => {
  const ks = Object.keys(o);
  if (ks.length !== keys.length) return false;
  for (let i = 0; i < ks.length; i++) if (ks[i] !== keys[i]) return false;
  return true;
};

/**
 * The log line of an action, exactly `JSON.stringify({ action })` for a JSON-safe action (the
 * two per-step actions without `JSON.stringify`), or `undefined` when the action is not JSON.
 */
export const actionLine = (action: Action): string | undefined => {
  if (action.type === 'stepProgress') {
    const a = action as { readonly type: string; readonly steps: unknown };
    if (Number.isSafeInteger(a.steps) && sameKeys(a, STEP_PROGRESS_KEYS))
      return a.steps === 1
        ? STEP_1
        : `{"action":{"type":"stepProgress","steps":${String(a.steps)}}}`;
  } else if (action.type === 'updateMeters') {
    const a = action as { readonly values: unknown; readonly n: unknown };
    const values = a.values;
    if (
      Number.isSafeInteger(a.n) &&
      typeof values === 'object' &&
      values !== null &&
      Object.getPrototypeOf(values) === Object.prototype &&
      sameKeys(action, UPDATE_METERS_KEYS)
    ) {
      let line = '{"action":{"type":"updateMeters","values":{';
      let i = 0;
      let ok = true;
      for (const k in values) {
        const v = (values as Record<string, unknown>)[k];
        let text: string;
        if (typeof v === 'number') {
          if (!Number.isFinite(v) || (v === 0 && 1 / v < 0)) {
            ok = false;
            break;
          }
          text = String(v);
        } else if (typeof v === 'string') text = JSON.stringify(v);
        else {
          ok = false;
          break;
        }
        // The `"name":` text of the i-th value, kept from the previous line (the same meters
        // come in the same order every step).
        let head = headKeys[i] === k ? headTexts[i] : undefined;
        if (head === undefined) {
          head = i === 0 ? `${quoted(k)}:` : `,${quoted(k)}:`;
          if (i < 64) {
            headKeys[i] = k;
            headTexts[i] = head;
          }
        }
        line += head;
        line += text;
        i += 1;
      }
      if (ok) return `${line}},"n":${String(a.n)}}}`;
    }
  }
  const line = { action } as unknown as Json;
  return isJson(line) ? JSON.stringify(line) : undefined;
};

/** The persisted state without its results (a periodic snapshot's body). */
const smallState = (state: RunnerState): Json => {
  const { best: _best, results: _results, ...rest } = state;
  return { ...rest, schemaVersion: SCHEMA_VERSION } as unknown as Json;
};

const snapshotLine = (count: number, state: RunnerState): string =>
  JSON.stringify({ actions: count, snapshot: persistState(state) });

/** Counts the actions of an existing log, reading only its tail from the last snapshot. */
const countActions = async (path: string): Promise<E.Either<FsError | JsonlCorrupt, number>> => {
  const at = await findLastLine(path, ['{"actions":', '{"snapshot":']);
  if (E.isLeft(at)) return at;
  let count = 0;
  let bad: JsonlCorrupt | undefined;
  let first = true;
  const scanned = await scanLines(
    path,
    (bytes, from, to, n) => {
      if (first && at.right !== undefined) {
        first = false;
        // The snapshot line: its action count (schema 2 puts it first).
        const head = bytes.toString('latin1', from, Math.min(to, from + 40));
        const m = /^\{"actions":(\d+),/.exec(head);
        if (m !== null) count = Number(m[1]);
        else {
          try {
            const v = JSON.parse(bytes.toString('utf8', from, to)) as { actions?: unknown };
            if (!Number.isSafeInteger(v.actions)) throw new Error('no action count');
            count = v.actions as number;
          } catch {
            const line = `line ${n} from byte ${String(at.right)}`;
            bad = {
              _tag: 'JsonlCorrupt',
              path,
              line: 0,
              message: `${path}: ${line}: the last snapshot has no action count; the log is damaged: restore it or move it aside`,
            };
            return false;
          }
        }
        return true;
      }
      if (startsWith(bytes, from, to, ACTION)) count += 1;
      return true;
    },
    at.right ?? 0,
  );
  if (E.isLeft(scanned)) return scanned;
  return bad === undefined ? E.right(count) : E.left(bad);
};

/**
 * Opens (or creates) the action log at `path` and writes a full snapshot of `initial` first. A
 * new log starts with the header and that snapshot; an existing one (a resumed run) is
 * continued after it, its torn last line (a crash mid-append) cut off with a warning, reading
 * only its tail (from the last snapshot) to count its actions. Open it after loading a
 * checkpoint, so the snapshot is the state the run resumes from. Action numbers count every
 * action written over every start of the run.
 */
export const openHistory = async (
  path: string,
  initial: RunnerState,
  options: HistoryOptions = {},
): Promise<E.Either<FsError | JsonlCorrupt | JsonlInvalidValue, OpenedHistory>> => {
  const every = Math.max(1, options.snapshotEvery ?? 1000);
  const opened = await openLineAppender(path, {
    ...options.batch,
    fsync: options.fsync ?? { every: 100_000 },
  });
  if (E.isLeft(opened)) return opened;
  const { appender, size, warnings } = opened.right;
  let count = 0;
  if (size > 0 && existsSync(path)) {
    const counted = await countActions(path);
    if (E.isLeft(counted)) {
      appender.close();
      return counted;
    }
    count = counted.right;
  } else appender.push(JSON.stringify({ danlingLog: LOG_SCHEMA }));
  appender.push(snapshotLine(count, initial));
  const first = appender.flush();
  if (E.isLeft(first)) return first;
  let invalidValue: JsonlInvalidValue | undefined;
  // Results entries at positions >= dirtyFrom changed since the last snapshot; `full` when
  // something other than appendResult replaced them (a restore).
  let lastResults = initial.results;
  let dirtyFrom = initial.results.entries.size;
  let full = false;
  const writer: HistoryWriter = {
    path,
    count: () => count,
    append: (action, after) => {
      const line = actionLine(action);
      if (line === undefined) {
        invalidValue ??= {
          _tag: 'JsonlInvalidValue',
          path,
          message: `cannot append to ${path}: the ${action.type} action is not JSON data (NaN, Infinity, -0, undefined or a class instance); build actions with the \`actions\` creators`,
        };
        return;
      }
      count += 1;
      appender.push(line);
      if (after.results !== lastResults) {
        if (action.type === 'appendResult') {
          const at = action.index ?? after.progress.epoch;
          const pos = intMapGet(after.results.positions, at) ?? 0;
          if (pos < dirtyFrom) dirtyFrom = pos;
        } else full = true;
        lastResults = after.results;
      }
      if (count % every === 0) {
        if (full) appender.push(snapshotLine(count, after));
        else {
          const entries = after.results.entries;
          const add: ResultEntry[] = [];
          for (let i = dirtyFrom; i < entries.size; i++) {
            const e = get(entries, i);
            if (e !== undefined) add.push(e);
          }
          appender.push(
            JSON.stringify({
              actions: count,
              snapshot: smallState(after),
              results: { from: dirtyFrom, add },
            }),
          );
        }
        full = false;
        dirtyFrom = after.results.entries.size;
      }
    },
    flush: () => {
      const r = appender.flush();
      if (E.isLeft(r)) return r;
      return invalidValue === undefined ? E.right(undefined) : E.left(invalidValue);
    },
    sync: () => {
      const r = appender.sync();
      if (E.isLeft(r)) return Promise.resolve(r);
      return Promise.resolve(
        invalidValue === undefined ? E.right(undefined) : E.left(invalidValue),
      );
    },
    syncInBackground: async () => {
      const r = await appender.syncInBackground();
      if (E.isLeft(r)) return r;
      return invalidValue === undefined ? E.right(undefined) : E.left(invalidValue);
    },
    close: () => {
      const r = appender.close();
      if (E.isLeft(r)) return Promise.resolve(r);
      return Promise.resolve(
        invalidValue === undefined ? E.right(undefined) : E.left(invalidValue),
      );
    },
  };
  return E.right({ writer, warnings });
};

export {
  LOG_SCHEMA,
  replayLog,
  type HistoryInvalid,
  type ReplayTarget,
  type ReplayTargetInvalid,
  type Replayed,
} from './historyReader.js';
