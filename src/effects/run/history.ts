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
import type * as TE from 'fp-ts/lib/TaskEither.js';
import { existsSync } from 'node:fs';
import { decodeAction, reduce, type Action } from '../../reducers/actions.js';
import { isJson, type Json } from '../../state/Json.js';
import { persistResults, type ResultEntry } from '../../state/runner/results.js';
import {
  decodeState,
  persistState,
  SCHEMA_VERSION,
  type RunnerState,
  type StateError,
} from '../../state/runner/RunnerState.js';
import { get, intMapGet } from '../../state/runner/vector.js';
import type { FsError } from '../storage/atomic.js';
import {
  findLastLine,
  openLineAppender,
  scanLines,
  type BatchOptions,
  type FsyncPolicy,
  type JsonlCorrupt,
  type JsonlInvalidValue,
  type JsonlTornLine,
} from '../storage/jsonl.js';

/** The log schema this version writes (the `danlingLog` header); it reads 1 and 2. */
export const LOG_SCHEMA = 2;

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
   * lines, checked once per batch, plus every `sync`: before each checkpoint and at close).
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
  readonly sync: () => TE.TaskEither<FsError | JsonlInvalidValue, void>;
  readonly close: () => TE.TaskEither<FsError | JsonlInvalidValue, void>;
}

/** What opening the log found: the writer, and a torn last line (from a crash) it cut off. */
export interface OpenedHistory {
  readonly writer: HistoryWriter;
  readonly warnings: readonly JsonlTornLine[];
}

/** A log line that is neither an action nor a valid snapshot, or a log that cannot be replayed. */
export interface HistoryInvalid {
  readonly _tag: 'HistoryInvalid';
  readonly path: string;
  readonly line: number;
  readonly error?: StateError;
  readonly message: string;
}

/** A replay target outside the log (past its end, negative, not an integer). */
export interface ReplayTargetInvalid {
  readonly _tag: 'ReplayTargetInvalid';
  readonly path: string;
  readonly message: string;
}

const invalid = (path: string, line: number, why: string, error?: StateError): HistoryInvalid =>
  error === undefined
    ? { _tag: 'HistoryInvalid', path, line, message: `${path}:${line}: ${why}` }
    : { _tag: 'HistoryInvalid', path, line, error, message: `${path}:${line}: ${why}` };

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

/**
 * The log line of an action, exactly `JSON.stringify({ action })` for a JSON-safe action (the
 * two per-step actions without `JSON.stringify`), or `undefined` when the action is not JSON.
 */
export const actionLine = (action: Action): string | undefined => {
  if (action.type === 'stepProgress') {
    const a = action as { readonly type: string; readonly steps: unknown };
    if (Number.isSafeInteger(a.steps) && Object.keys(a).length === 2)
      return `{"action":{"type":"stepProgress","steps":${String(a.steps)}}}`;
  } else if (action.type === 'updateMeters') {
    const a = action as { readonly values: unknown; readonly n: unknown };
    const values = a.values;
    if (
      Number.isSafeInteger(a.n) &&
      typeof values === 'object' &&
      values !== null &&
      Object.getPrototypeOf(values) === Object.prototype &&
      Object.keys(action).length === 3
    ) {
      let body = '';
      let ok = true;
      for (const k in values) {
        const v = (values as Record<string, unknown>)[k];
        let text: string;
        if (typeof v === 'number') {
          if (!Number.isFinite(v) || Object.is(v, -0)) {
            ok = false;
            break;
          }
          text = String(v);
        } else if (typeof v === 'string') text = JSON.stringify(v);
        else {
          ok = false;
          break;
        }
        body += body === '' ? `${quoted(k)}:${text}` : `,${quoted(k)}:${text}`;
      }
      if (ok) return `{"action":{"type":"updateMeters","values":{${body}},"n":${String(a.n)}}}`;
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
  const at = await findLastLine(path, ['{"actions":', '{"snapshot":'])();
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
  )();
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
export const openHistory =
  (
    path: string,
    initial: RunnerState,
    options: HistoryOptions = {},
  ): TE.TaskEither<FsError | JsonlCorrupt | JsonlInvalidValue, OpenedHistory> =>
  async () => {
    const every = Math.max(1, options.snapshotEvery ?? 1000);
    const opened = await openLineAppender(path, {
      ...options.batch,
      fsync: options.fsync ?? { every: 100_000 },
    })();
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
      sync: () => () => {
        const r = appender.sync();
        if (E.isLeft(r)) return Promise.resolve(r);
        return Promise.resolve(
          invalidValue === undefined ? E.right(undefined) : E.left(invalidValue),
        );
      },
      close: () => () => {
        const r = appender.close();
        if (E.isLeft(r)) return Promise.resolve(r);
        return Promise.resolve(
          invalidValue === undefined ? E.right(undefined) : E.left(invalidValue),
        );
      },
    };
    return E.right({ writer, warnings });
  };

// ---------------------------------------------------------------------------------------------
// Reading.

const bytesOf = (s: string): Uint8Array => new TextEncoder().encode(s);
const ACTION = bytesOf('{"action":{');
const SNAPSHOT2 = bytesOf('{"actions":');
const SNAPSHOT1 = bytesOf('{"snapshot":');
const HEADER = bytesOf('{"danlingLog":');

const startsWith = (bytes: Uint8Array, from: number, to: number, prefix: Uint8Array): boolean => {
  if (to - from < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[from + i] !== prefix[i]) return false;
  return true;
};

/** Where to stop replaying: after `action` actions, or at the end of epoch `epoch`. */
export type ReplayTarget = { readonly action: number } | { readonly epoch: number };

/** The state rebuilt from a log, how many actions it covers, and the log's warnings. */
export interface Replayed {
  readonly state: RunnerState;
  /** Actions applied to reach `state`. */
  readonly actions: number;
  /** Actions replayed from the nearest snapshot (the cost). */
  readonly replayed: number;
  readonly warnings: readonly JsonlTornLine[];
}

/** Actions held undecoded after a snapshot before the snapshot is decoded and they are applied. */
const BUFFERED = 4096;

/**
 * Rebuilds the state recorded in an action log: at its end, after `at.action` actions, or as it
 * stood at the end of epoch `at.epoch` (before the first action that moved past it). Reads the
 * file line by line in 1 MiB chunks (memory: the state, one snapshot interval of lines, one
 * chunk) and applies only the actions after the last snapshot before the target; every applied
 * line is checked with `decodeAction` and every snapshot used with `decodeState`. A torn last
 * line (a crash mid-append) is skipped with a warning; a bad line is an error naming the file and
 * the line; a target outside the log is an error. Reads schema 1 and 2 logs.
 *
 * @example
 * const r = await replayLog('experiments/iris-mlp-.../history.jsonl', { epoch: 3 })();
 */
export const replayLog =
  (
    path: string,
    at?: ReplayTarget,
  ): TE.TaskEither<FsError | HistoryInvalid | ReplayTargetInvalid, Replayed> =>
  async () => {
    const actionTarget = at !== undefined && 'action' in at ? at.action : undefined;
    const epochTarget = at !== undefined && 'epoch' in at ? at.epoch : undefined;
    for (const [name, v] of [
      ['action', actionTarget],
      ['epoch', epochTarget],
    ] as const) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0))
        return E.left({
          _tag: 'ReplayTargetInvalid',
          path,
          message: `${path}: cannot replay to ${name} ${String(v)}: expected a non-negative integer`,
        });
    }
    let fail: HistoryInvalid | undefined;
    const failure = (): HistoryInvalid | undefined => fail;
    let results: ResultEntry[] = [];
    // The candidate: the last usable snapshot, the action lines after it (undecoded), or, once
    // too many are buffered, the live state they led to.
    let base: { line: number; n: number; raw: Record<string, Json> } | undefined;
    let buffered: { line: number; text: string }[] = [];
    let live: RunnerState | undefined;
    let frozen = false as boolean; // a snapshot moved past the epoch target: no more lines join the candidate
    let crossed = false as boolean; // an applied action moved past the epoch target
    let done = 0; // actions applied to reach the candidate
    let replayed = 0;
    let n = 0; // actions seen

    const materialize = (): boolean => {
      if (live !== undefined) return true;
      if (base === undefined) {
        const first = buffered[0];
        fail = invalid(
          path,
          first?.line ?? 1,
          'an action before any snapshot; the log must start with a snapshot (a damaged or foreign file?)',
        );
        return false;
      }
      const s = decodeState({ ...base.raw, results: results as unknown as Json });
      if (E.isLeft(s)) {
        fail = invalid(
          path,
          base.line,
          `the snapshot is not a usable state:\n${s.left.message}`,
          s.left,
        );
        return false;
      }
      live = s.right;
      done = base.n;
      const pending = buffered;
      buffered = [];
      for (const p of pending) if (crossed || !apply(p.line, p.text)) break;
      return fail === undefined;
    };
    const apply = (line: number, text: string): boolean => {
      if (crossed || live === undefined) return true;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (cause) {
        fail = invalid(path, line, `not valid JSON (${String(cause)}); the log is damaged here`);
        return false;
      }
      const keys =
        typeof parsed === 'object' && parsed !== null ? Object.keys(parsed) : ['(not an object)'];
      if (keys.length !== 1) {
        fail = invalid(path, line, `expected {"action": ...}, got the keys ${keys.join(', ')}`);
        return false;
      }
      const action = decodeAction((parsed as { action: unknown }).action);
      if (E.isLeft(action)) {
        fail = invalid(
          path,
          line,
          `not a valid action: ${action.left.problems.join('; ')}; the log is damaged here (cut it before line ${line} to replay what precedes it)`,
        );
        return false;
      }
      const next = reduce(live, action.right);
      if (epochTarget !== undefined && next.progress.epoch > epochTarget) {
        crossed = true;
        return true;
      }
      live = next;
      done += 1;
      replayed += 1;
      return true;
    };
    const onSnapshot = (line: number, v: unknown): boolean => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        fail = invalid(path, line, 'expected a snapshot object');
        return false;
      }
      const o = v as Record<string, Json>;
      const m = o['actions'];
      const snap = o['snapshot'];
      if (
        !Number.isSafeInteger(m) ||
        typeof snap !== 'object' ||
        snap === null ||
        Array.isArray(snap)
      ) {
        fail = invalid(path, line, 'expected {"actions": n, "snapshot": {...}}');
        return false;
      }
      const count = m as number;
      if (actionTarget !== undefined && count > actionTarget) return false;
      const progress = (snap as Record<string, Json>)['progress'];
      const epoch =
        typeof progress === 'object' && progress !== null && !Array.isArray(progress)
          ? (progress as Record<string, Json>)['epoch']
          : undefined;
      if (epochTarget !== undefined && typeof epoch === 'number' && epoch > epochTarget) {
        frozen = true; // keep the candidate; a later restart may go back before the target
        n = count;
        return true;
      }
      const own = (snap as Record<string, Json>)['results'];
      // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- checked by decodeState on use
      if (Array.isArray(own)) results = own;
      else if (own !== undefined) {
        // Schema 1 snapshots hold the in-memory layout of the results: decode it.
        const s = decodeState(snap);
        if (E.isLeft(s)) {
          fail = invalid(
            path,
            line,
            `the snapshot is not a usable state:\n${s.left.message}`,
            s.left,
          );
          return false;
        }
        results = [...persistResults(s.right.results)];
      } else {
        const delta = o['results'] as Record<string, Json> | null | undefined;
        const from =
          typeof delta === 'object' && delta !== null && !Array.isArray(delta)
            ? delta['from']
            : undefined;
        const add =
          typeof delta === 'object' && delta !== null && !Array.isArray(delta)
            ? delta['add']
            : undefined;
        if (
          !Number.isSafeInteger(from) ||
          (from as number) > results.length ||
          !Array.isArray(add)
        ) {
          fail = invalid(
            path,
            line,
            `the snapshot's results {"from", "add"} do not continue the previous snapshot's ${results.length} results; the log is damaged`,
          );
          return false;
        }
        results.length = from as number;
        // eslint-disable-next-line @typescript-eslint/no-unsafe-argument -- checked by decodeState on use
        for (const e of add) results.push(e);
      }
      const { results: _r, ...rest } = snap as Record<string, Json>;
      base = { line, n: count, raw: rest };
      buffered = [];
      live = undefined;
      frozen = false;
      crossed = false;
      replayed = 0;
      n = count;
      done = count;
      return true;
    };

    const scanned = await scanLines(path, (bytes, from, to, line) => {
      if (startsWith(bytes, from, to, ACTION)) {
        if (actionTarget !== undefined && n + 1 > actionTarget) return false;
        n += 1;
        if (frozen || crossed) return true;
        const text = bytes.toString('utf8', from, to);
        if (live !== undefined) return apply(line, text);
        buffered.push({ line, text });
        return buffered.length < BUFFERED || materialize();
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(bytes.toString('utf8', from, to));
      } catch (cause) {
        const why = from === to ? 'an empty line' : `not valid JSON (${String(cause)})`;
        fail = invalid(
          path,
          line,
          `${why}; the log is damaged before its end: restore it or cut it before line ${line}`,
        );
        return false;
      }
      if (
        startsWith(bytes, from, to, HEADER) ||
        (line === 1 && typeof parsed === 'object' && parsed !== null && 'danlingLog' in parsed)
      ) {
        const version = (parsed as { danlingLog: unknown }).danlingLog;
        if (line !== 1 || !Number.isSafeInteger(version)) {
          fail = invalid(path, line, 'a log header {"danlingLog": n} belongs on line 1 only');
          return false;
        }
        if ((version as number) > LOG_SCHEMA) {
          fail = invalid(
            path,
            line,
            `the log was written by a newer danling (log schema ${String(version)}, this one reads up to ${LOG_SCHEMA}); upgrade danling to read it`,
          );
          return false;
        }
        return true;
      }
      if (
        startsWith(bytes, from, to, SNAPSHOT2) ||
        startsWith(bytes, from, to, SNAPSHOT1) ||
        (typeof parsed === 'object' && parsed !== null && 'snapshot' in parsed)
      ) {
        if (!onSnapshot(line, parsed)) return fail === undefined ? false : false;
        return true;
      }
      if (typeof parsed === 'object' && parsed !== null && 'action' in parsed) {
        // An action line in another key order (hand-written): handled like any other.
        if (actionTarget !== undefined && n + 1 > actionTarget) return false;
        n += 1;
        if (frozen || crossed) return true;
        const text = bytes.toString('utf8', from, to);
        if (live !== undefined) return apply(line, text);
        buffered.push({ line, text });
        return buffered.length < BUFFERED || materialize();
      }
      fail = invalid(
        path,
        line,
        `expected {"action": ...} or {"actions": n, "snapshot": ...}, got ${bytes.toString('utf8', from, Math.min(to, from + 60))}`,
      );
      return false;
    })();
    if (E.isLeft(scanned)) return scanned;
    if (fail !== undefined) return E.left(fail);
    if (actionTarget !== undefined && n < actionTarget)
      return E.left({
        _tag: 'ReplayTargetInvalid',
        path,
        message: `${path}: cannot replay to action ${actionTarget}: the log holds ${n} actions (replay to at most ${n}, or leave the target out for the end)`,
      });
    if (!materialize()) return E.left(failure() ?? invalid(path, 1, 'no snapshot'));
    const state = live as unknown as RunnerState;
    if (epochTarget !== undefined && !frozen && !crossed && state.progress.epoch < epochTarget)
      return E.left({
        _tag: 'ReplayTargetInvalid',
        path,
        message: `${path}: cannot replay to epoch ${epochTarget}: the log ends in epoch ${state.progress.epoch}`,
      });
    const warnings = scanned.right.torn === undefined ? [] : [scanned.right.torn];
    return E.right({ state, actions: done, replayed, warnings });
  };
