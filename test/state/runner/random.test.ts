import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import {
  randomFloat,
  randomInt,
  randomNormal,
  rngFor,
  seedFor,
  tfSeed,
} from '../../../src/state/runner/random.js';
import { permutation, seedRng, type RngState } from '../../../src/state/runner/rng.js';
import { createState, decodeState } from '../../../src/state/runner/RunnerState.js';
import { replay } from '../../../src/reducers/actions.js';
import { setDeterministic, setSeed } from '../../../src/effects/shell/seed.js';

const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const draws = (rng: RngState, n: number, f: (r: RngState) => readonly [number, RngState]) => {
  const out: number[] = [];
  let r = rng;
  for (let i = 0; i < n; i++) {
    const [v, next] = f(r);
    out.push(v);
    r = next;
  }
  return [out, r] as const;
};

describe('random draws over the state', () => {
  test.prop([seed, fc.integer({ min: 0, max: 200 })])(
    'a permutation is a permutation, input untouched',
    (s, n) => {
      const rng = seedRng(s);
      const copy = [...rng];
      const [p] = permutation(rng, n);
      expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(rng).toEqual(copy);
    },
  );

  test.prop([seed, fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 100 })])(
    'integers stay in range; the same state gives the same draws',
    (s, from, width) => {
      const [a] = draws(seedRng(s), 20, (r) => randomInt(r, from, from + width));
      const [b] = draws(seedRng(s), 20, (r) => randomInt(r, from, from + width));
      expect(a).toEqual(b);
      for (const v of a) expect(v >= from && v <= from + width && Number.isInteger(v)).toBe(true);
    },
  );

  test.prop([seed])('floats are in [0, 1)', (s) => {
    const [xs] = draws(seedRng(s), 50, randomFloat);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  it('has the right moments (fixed seed, 20k draws)', () => {
    const [u] = draws(seedRng(42), 20_000, randomFloat);
    const [z] = draws(seedRng(42), 20_000, (r) => randomNormal(r));
    const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = (xs: readonly number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(sd(u) - Math.sqrt(1 / 12))).toBeLessThan(0.01);
    expect(Math.abs(mean(z))).toBeLessThan(0.03);
    expect(Math.abs(sd(z) - 1)).toBeLessThan(0.03);
    const [t] = tfSeed(seedRng(1));
    expect(Number.isInteger(t) && t >= 0 && t < 2 ** 31).toBe(true);
  });

  it('seed 0 is a seed; bias adds the rank unless disabled', () => {
    expect(seedFor(0)).toBe(0);
    expect(seedFor(10, { rank: 3 })).toBe(13);
    expect(seedFor(10, { rank: 3, bias: false })).toBe(10);
    expect(rngFor(0, { rank: 1 })).toEqual(seedRng(1));
  });
});

describe('setSeed', () => {
  it('uses the configured seed (0 included) and draws one only when none is set', () => {
    const configured = setSeed(createState({ seed: 0 }));
    expect([configured.seed, configured.drawn]).toEqual([0, false]);
    expect(configured.actions).toEqual([{ type: 'setRng', rng: seedRng(0) }]);
    let calls = 0;
    const s0 = createState({});
    const drawn = setSeed(s0, { draw: () => (calls += 1) * 1234 });
    expect([drawn.seed, drawn.drawn, calls]).toEqual([1234, true, 1]);
    const s1 = replay(s0, drawn.actions);
    expect(s1.config.seed).toBe(1234);
    expect(setSeed(s1).drawn).toBe(false);
    const ranked = setSeed(createState({ seed: 5 }, { rank: 2, worldSize: 4 }));
    expect(ranked.actions.at(-1)).toEqual({ type: 'setRng', rng: seedRng(7) });
  });

  test.prop([seed, fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 30 })])(
    'a seeded stream continues the same after save -> resume',
    (s, k, n) => {
      const state = replay(createState({ seed: s }), setSeed(createState({ seed: s })).actions);
      const [head, mid] = draws(state.rng ?? [], k, randomFloat);
      const saved = { ...state, rng: [...mid] };
      const loaded = decodeState(JSON.parse(JSON.stringify(saved)));
      if (E.isLeft(loaded)) throw new Error(loaded.left.message);
      const [tail] = draws(loaded.right.rng ?? [], n, randomFloat);
      const [all] = draws(state.rng ?? [], k + n, randomFloat);
      expect([...head, ...tail]).toEqual(all);
    },
  );

  it('setDeterministic sets what it can and says what it cannot', () => {
    const env: Record<string, string | undefined> = {};
    const report = setDeterministic(env);
    expect(env['TF_DETERMINISTIC_OPS']).toBe('1');
    expect(report.notes.length).toBeGreaterThan(0);
  });
});
