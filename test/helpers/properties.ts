/**
 * Reusable properties of reducers over the runner state (as pure-rand's
 * RandomGenerator.properties.ts): call them from any test with a state and an action.
 */
import { expect } from 'vitest';
import { decodeState, type RunnerState } from '../../src/state/runner/RunnerState.js';
import { replay, type Action } from '../../src/reducers/actions.js';
import * as E from 'fp-ts/lib/Either.js';

/** Every object and array reachable from `value` is frozen. */
export const expectDeepFrozen = (value: unknown): void => {
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    expect(Object.isFrozen(v)).toBe(true);
    Object.values(v).forEach(walk);
  };
  walk(value);
};

/** `reducer` neither mutates its input state nor returns anything unfrozen or non-JSON. */
export const expectPureStep = (
  state: RunnerState,
  step: (s: RunnerState) => RunnerState,
): RunnerState => {
  const before = JSON.stringify(state);
  const next = step(state);
  expect(JSON.stringify(state)).toBe(before);
  expectDeepFrozen(next);
  expect(JSON.parse(JSON.stringify(next))).toEqual(next);
  return next;
};

/** A state survives JSON and decoding exactly. */
export const roundTrip = (state: RunnerState): RunnerState => {
  const decoded = decodeState(JSON.parse(JSON.stringify(state)));
  if (E.isLeft(decoded)) throw new Error(decoded.left.message);
  return decoded.right;
};

/** Saving mid-run (JSON + decode) then continuing equals never stopping. */
export const expectResumeEqualsUninterrupted = (
  s0: RunnerState,
  xs: readonly Action[],
  ys: readonly Action[],
): void => {
  const uninterrupted = replay(s0, [...xs, ...ys]);
  const resumed = replay(roundTrip(replay(s0, xs)), ys);
  expect(resumed).toEqual(uninterrupted);
};
