/**
 * Reading the action log `history.jsonl`: `replayLog` streams it line by line from bytes, replays
 * from the nearest snapshot to a target, and decodes every line it applies; its errors name the
 * file and the line. Writing is `history.ts`.
 */
import * as E from 'fp-ts/lib/Either.js';
import { decodeAction, reduce } from '../../reducers/actions.js';
import { type Json } from '../../state/Json.js';
import { persistResults, type ResultEntry } from '../../state/runner/results.js';
import { decodeState, type RunnerState, type StateError } from '../../state/runner/RunnerState.js';
import type { FsError } from '../storage/atomic.js';
import type { JsonlTornLine } from '../storage/jsonl.js';
import { scanLines } from '../storage/lineAppender.js';

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

/** The log schema this version writes (the `danlingLog` header); it reads 1 and 2. */
export const LOG_SCHEMA = 2;

export const invalid = (
  path: string,
  line: number,
  why: string,
  error?: StateError,
): HistoryInvalid =>
  error === undefined
    ? { _tag: 'HistoryInvalid', path, line, message: `${path}:${line}: ${why}` }
    : { _tag: 'HistoryInvalid', path, line, error, message: `${path}:${line}: ${why}` };

const bytesOf = (s: string): Uint8Array => new TextEncoder().encode(s);
export const ACTION = bytesOf('{"action":{');
const SNAPSHOT2 = bytesOf('{"actions":');
const SNAPSHOT1 = bytesOf('{"snapshot":');
const HEADER = bytesOf('{"danlingLog":');

export const startsWith = (
  bytes: Uint8Array,
  from: number,
  to: number,
  prefix: Uint8Array,
): boolean => {
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
 * const r = await replayLog('experiments/iris-mlp-.../history.jsonl', { epoch: 3 });
 */
export const replayLog = async (
  path: string,
  at?: ReplayTarget,
): Promise<E.Either<FsError | HistoryInvalid | ReplayTargetInvalid, Replayed>> => {
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
      if (!Number.isSafeInteger(from) || (from as number) > results.length || !Array.isArray(add)) {
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
  });
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
