/**
 * Actions: every change of state as plain JSON data, so a log of them can be stored, shipped and
 * replayed. Each action is defined once, in {@link definitions} (Redux Toolkit's `createSlice`
 * idea): its payload check, how a creator shapes its payload (`prepare`) and its reducer. The
 * `Action` type, the creators in {@link actions}, {@link reduce} and {@link decodeAction} all
 * derive from that table, so adding an action is one edit.
 */
import * as E from 'fp-ts/lib/Either.js';
import { isJson, isPlainObject, setOwn, type JsonObject } from '../state/Json.js';
import { encodeResult } from '../state/runner/metric.js';
import type { RngState } from '../state/runner/rng.js';
import {
  decodeState,
  persistState,
  RUNNER_MODES,
  type PersistedState,
  type RunnerMode,
  type RunnerState,
} from '../state/runner/RunnerState.js';
import {
  appendResult,
  registerSplit,
  resetMeters,
  restore,
  setMeters,
  setMode,
  setRng,
  setSplit,
  setTimestamp,
  startEpoch,
  stepProgress,
  tryMergeConfig,
  updateMetersEncoded,
  type ResultRecord,
} from './reducers.js';

/** A metric value as actions carry it: a finite number, or NaN and the infinities as strings. */
type Encoded = number | 'NaN' | 'Infinity' | '-Infinity';

const encodeNumber = (v: number): Encoded =>
  Number.isFinite(v)
    ? v === 0
      ? 0
      : v
    : Number.isNaN(v)
      ? 'NaN'
      : v > 0
        ? 'Infinity'
        : '-Infinity';

/** `values` with each number encoded (own enumerable keys, in order; `__proto__` kept as a key). */
const encodeValues = (values: { readonly [name: string]: number }): Record<string, Encoded> => {
  const out: Record<string, Encoded> = {};
  const keys = Object.keys(values);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    setOwn(out, k, encodeNumber(values[k] as number));
  }
  return out;
};

// ---------------------------------------------------------------------------------------------
// Field checks for decodeAction: each returns the phrase of what was expected, or undefined.

type Check = (value: unknown) => string | undefined;
const check =
  (expected: string, ok: (u: unknown) => boolean): Check =>
  (u) =>
    ok(u) ? undefined : expected;
const count = check('a non-negative integer', (u) => Number.isSafeInteger(u) && (u as number) >= 0);
const positive = check('a positive integer', (u) => Number.isSafeInteger(u) && (u as number) > 0);
const bool = check('a boolean', (u) => typeof u === 'boolean');
const string = check('a string', (u) => typeof u === 'string');
const jsonObject = check('a JSON object', (u) => isPlainObject(u) && isJson(u));
const isEncoded = (u: unknown): boolean =>
  (typeof u === 'number' && Number.isFinite(u)) ||
  u === 'NaN' ||
  u === 'Infinity' ||
  u === '-Infinity';
const optional =
  (c: Check): Check =>
  (u) =>
    u === undefined ? undefined : c(u);

/** One action's definition: payload fields and their checks, the creator and the reducer. */
interface Definition<P, A extends readonly unknown[]> {
  /** Checks of the payload's fields; a field missing from `fields` is refused. */
  readonly fields: { readonly [K in keyof P]-?: Check };
  /** Builds the JSON payload from the creator's arguments. */
  readonly prepare: (...args: A) => P;
  /** The reducer: total on any payload that passed the checks (it never throws). */
  readonly reduce: (state: RunnerState, payload: P) => RunnerState;
}

const define = <P, A extends readonly unknown[]>(d: Definition<P, A>): Definition<P, A> => d;

/**
 * Every action, defined once. A reducer here never throws on an action that decodes: an invalid
 * `mergeConfig` patch or `restore` state leaves the state unchanged (use `tryMergeConfig` /
 * `decodeState` first to see why).
 */
export const definitions = {
  appendResult: define({
    fields: { result: jsonObject, index: optional(count) },
    prepare: (result: ResultRecord, index?: number) =>
      index === undefined
        ? { result: encodeResult(result) as JsonObject }
        : { result: encodeResult(result) as JsonObject, index },
    reduce: (s, p: { readonly result: JsonObject; readonly index?: number }) =>
      appendResult(s, p.result, p.index),
  }),
  stepProgress: define({
    fields: { steps: count },
    prepare: (steps: number = 1) => ({ steps }),
    reduce: (s, p: { readonly steps: number }) => stepProgress(s, p.steps),
  }),
  startEpoch: define({
    fields: { epoch: count },
    prepare: (epoch: number) => ({ epoch }),
    reduce: (s, p: { readonly epoch: number }) => startEpoch(s, p.epoch),
  }),
  mergeConfig: define({
    fields: { patch: jsonObject, overwrite: bool },
    prepare: (patch: JsonObject, overwrite: boolean = true) => ({ patch, overwrite }),
    reduce: (s, p: { readonly patch: JsonObject; readonly overwrite: boolean }) => {
      const r = tryMergeConfig(s, p.patch, { overwrite: p.overwrite });
      return E.isRight(r) ? r.right : s;
    },
  }),
  setMode: define({
    fields: {
      mode: check(`one of ${RUNNER_MODES.join(', ')}`, (u) =>
        RUNNER_MODES.includes(u as RunnerMode),
      ),
    },
    prepare: (mode: RunnerMode) => ({ mode }),
    reduce: (s, p: { readonly mode: RunnerMode }) =>
      RUNNER_MODES.includes(p.mode) ? setMode(s, p.mode) : s,
  }),
  setSplit: define({
    fields: { split: check('a string or null', (u) => u === null || typeof u === 'string') },
    prepare: (split: string | null) => ({ split }),
    reduce: (s, p: { readonly split: string | null }) => setSplit(s, p.split),
  }),
  updateMeters: define({
    fields: {
      values: check(
        'an object of metric values',
        (u) => isPlainObject(u) && Object.values(u).every(isEncoded),
      ),
      n: count,
    },
    prepare: (values: { readonly [name: string]: number }, n: number = 1) => ({
      values: encodeValues(values),
      n,
    }),
    reduce: (s, p: { readonly values: { readonly [name: string]: Encoded }; readonly n: number }) =>
      updateMetersEncoded(s, p.values, p.n),
  }),
  resetMeters: define({
    fields: {},
    prepare: () => ({}),
    reduce: (s) => resetMeters(s),
  }),
  setMeters: define({
    fields: {
      meters: check(
        'an object of meters ({ val, avg, sum, count })',
        (u) =>
          isPlainObject(u) &&
          Object.values(u).every(
            (m) =>
              isPlainObject(m) &&
              Object.keys(m).length === 4 &&
              isEncoded(m['val']) &&
              isEncoded(m['avg']) &&
              isEncoded(m['sum']) &&
              count(m['count']) === undefined,
          ),
      ),
    },
    prepare: (meters: RunnerState['meters']) => ({ meters }),
    reduce: (s, p: { readonly meters: RunnerState['meters'] }) => setMeters(s, p.meters),
  }),
  registerSplit: define({
    fields: { split: string, size: count, batchSize: positive },
    prepare: (split: string, info: { readonly size: number; readonly batchSize: number }) => ({
      split,
      size: info.size,
      batchSize: info.batchSize,
    }),
    reduce: (s, p: { readonly split: string; readonly size: number; readonly batchSize: number }) =>
      registerSplit(s, p.split, { size: p.size, batchSize: p.batchSize }),
  }),
  restore: define({
    fields: {
      saved: (u) => {
        const d = decodeState(u);
        return E.isLeft(d)
          ? `a saved runner state (${d.left.message.split('\n')[0] ?? ''})`
          : undefined;
      },
      overrideConfig: bool,
    },
    /** The saved state travels in its persisted form (plain arrays, nothing derived). */
    prepare: (saved: RunnerState, overrideConfig: boolean = false) => ({
      saved: persistState(saved),
      overrideConfig,
    }),
    reduce: (
      s,
      p: { readonly saved: PersistedState | RunnerState; readonly overrideConfig: boolean },
    ) => {
      const saved = decodeState(p.saved);
      return E.isRight(saved) ? restore(s, saved.right, { overrideConfig: p.overrideConfig }) : s;
    },
  }),
  setRng: define({
    fields: {
      rng: check(
        'null or an array of integers',
        (u) => u === null || (Array.isArray(u) && u.every((x) => Number.isSafeInteger(x))),
      ),
    },
    prepare: (rng: RngState | null) => ({ rng }),
    reduce: (s, p: { readonly rng: RngState | null }) => setRng(s, p.rng),
  }),
  setTimestamp: define({
    fields: { timestamp: string },
    prepare: (timestamp: string) => ({ timestamp }),
    reduce: (s, p: { readonly timestamp: string }) => setTimestamp(s, p.timestamp),
  }),
};

type Definitions = typeof definitions;
type PayloadOf<D> = D extends Definition<infer P, infer _A> ? P : never;
type ArgsOf<D> = D extends Definition<infer _P, infer A> ? A : never;

/** The `type` of every action. */
export type ActionType = keyof Definitions;

/** Every change of state, as data: `{ type, ...payload }`. */
export type Action = {
  [K in ActionType]: { readonly type: K } & PayloadOf<Definitions[K]>;
}[ActionType];

/** The action of one type. */
export type ActionOf<K extends ActionType> = Extract<Action, { readonly type: K }>;

/**
 * Action creators, one per definition: they build JSON-safe actions (numbers in results and
 * meters encoded, so NaN and the infinities survive a JSON log).
 *
 * @example
 * actions.appendResult({ val: { loss: 0.2 } }) // { type: 'appendResult', result: { val: { loss: 0.2 } } }
 */
export const actions = {
  ...Object.fromEntries(
    Object.entries(definitions).map(([type, d]) => [
      type,
      (...args: never[]) => ({ type, ...d.prepare(...args) }),
    ]),
  ),
  // The two per-step actions, built as literals of fixed shape (the same objects as above:
  // `{ type, ...prepare(...args) }`), since the training loop creates two of them per step.
  stepProgress: (steps: number = 1) => ({ type: 'stepProgress', steps }),
  updateMeters: (values: { readonly [name: string]: number }, n: number = 1) => ({
    type: 'updateMeters',
    values: encodeValues(values),
    n,
  }),
} as unknown as { readonly [K in ActionType]: (...args: ArgsOf<Definitions[K]>) => Action };

/**
 * Applies one action: a lookup in {@link definitions}. The same state and action always give
 * the same result; an action that {@link decodeAction} accepts never throws.
 *
 * @example
 * const next = reduce(state, actions.appendResult({ val: { loss: 0.2 } }));
 */
export const reduce = (state: RunnerState, action: Action): RunnerState => {
  // The two per-step actions first, without the table lookup (the same reducers).
  if (action.type === 'stepProgress') return stepProgress(state, action.steps);
  if (action.type === 'updateMeters') return updateMetersEncoded(state, action.values, action.n);
  return (definitions[action.type].reduce as (s: RunnerState, a: Action) => RunnerState)(
    state,
    action,
  );
};

/** Folds a log of actions over `initial`: the state after all of them. */
export const replay = (initial: RunnerState, log: readonly Action[]): RunnerState =>
  log.reduce(reduce, initial);

/** Why a value is not an action: every problem, one line each, field first. */
export interface ActionInvalid {
  readonly _tag: 'ActionInvalid';
  readonly problems: readonly string[];
  readonly message: string;
}

const describe = (u: unknown): string => {
  if (u === undefined) return 'nothing';
  const text = JSON.stringify(u);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/**
 * Checks a parsed JSON value as an {@link Action} (what a log line holds): a known `type` and
 * every payload field, unknown fields refused. Never throws.
 *
 * @example
 * decodeAction({ type: 'stepProgress', steps: -1 }) // Left: "steps: expected a non-negative integer, got -1"
 */
export const decodeAction = (input: unknown): E.Either<ActionInvalid, Action> => {
  const fail = (problems: string[]): E.Either<ActionInvalid, Action> =>
    E.left({ _tag: 'ActionInvalid', problems, message: problems.join('\n') });
  if (!isPlainObject(input))
    return fail([`(root): expected an action object, got ${describe(input)}`]);
  const type = input['type'];
  if (typeof type !== 'string' || !Object.hasOwn(definitions, type)) {
    return fail([
      `type: expected one of ${Object.keys(definitions).join(', ')}, got ${describe(type)}`,
    ]);
  }
  const fields = definitions[type as ActionType].fields as Readonly<Record<string, Check>>;
  const problems: string[] = [];
  for (const [name, c] of Object.entries(fields)) {
    const expected = c(input[name]);
    if (expected !== undefined)
      problems.push(`${name}: expected ${expected}, got ${describe(input[name])}`);
  }
  for (const name of Object.keys(input)) {
    if (name !== 'type' && !Object.hasOwn(fields, name))
      problems.push(`${name}: unknown field of ${type}`);
  }
  return problems.length > 0 ? fail(problems) : E.right(input as unknown as Action);
};
