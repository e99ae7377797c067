/**
 * A property-based test of a user's own reducer, composed with danling's: a learning-rate
 * schedule kept in the config, halved when an epoch is not the best. fast-check checks the
 * properties any reducer over the runner state should keep.
 *
 *   npx vitest run examples/myReducer.test.ts
 */
import { describe, expect } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import {
  appendResult,
  createState,
  isBest,
  mergeConfig,
  resultCount,
  type RunnerState,
} from '../src/index.js';

/** The user's reducer: append an epoch's validation loss, halve `optim.lr` unless it is the best. */
const endEpoch = (state: RunnerState, loss: number): RunnerState => {
  const next = appendResult(state, { val: { loss } }, resultCount(state));
  if (isBest(next)) return next;
  const lr = (next.config['optim'] as { lr: number }).lr;
  return mergeConfig(next, { optim: { lr: lr / 2 } });
};

const s0 = createState({ optim: { lr: 0.1 }, epochEnd: 100 });
const losses = fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { maxLength: 30 });
const lrOf = (s: RunnerState): number => (s.config['optim'] as { lr: number }).lr;

describe('a user reducer: halve the lr when an epoch is not the best', () => {
  test.prop([losses])('never touches its input and returns a frozen state', (xs) => {
    let s = s0;
    for (const x of xs) {
      const before = JSON.stringify(s);
      const next = endEpoch(s, x);
      expect(JSON.stringify(s)).toBe(before);
      expect(Object.isFrozen(next) && Object.isFrozen(next.config)).toBe(true);
      s = next;
    }
  });

  // isBest is strict: a tie with the best score is not best (the spec's 1e-7 tolerance made a
  // tie best while bestIndex kept the earlier epoch).
  test.prop([losses])('the lr is 0.1 / 2^(epochs that were not the best)', (xs) => {
    const s = xs.reduce(endEpoch, s0);
    let best = Number.POSITIVE_INFINITY;
    let misses = 0;
    for (const x of xs) {
      if (x < best) best = x;
      else misses += 1;
    }
    expect(lrOf(s)).toBe(0.1 / 2 ** misses);
  });

  test.prop([losses, losses])('a JSON round trip mid-run changes nothing', (xs, ys) => {
    const mid = xs.reduce(endEpoch, s0);
    const copy = JSON.parse(JSON.stringify(mid)) as RunnerState;
    expect(ys.reduce(endEpoch, copy)).toEqual(ys.reduce(endEpoch, mid));
  });
});
