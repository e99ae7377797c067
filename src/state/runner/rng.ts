/**
 * The runner's random generator as plain data: the numeric state of a pure-rand
 * xoroshiro128plus generator, so it lives in the JSON-safe runner state and in checkpoints.
 */
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';

/** The numeric state of a xoroshiro128plus generator (four 32-bit integers). */
export type RngState = readonly number[];

/** The generator state for `seed` (any integer; only its low 32 bits count, as pure-rand). */
export const seedRng = (seed: number): RngState => xoroshiro128plus(seed).getState();

/**
 * Draws `count` raw 32-bit values from `rng`, returning them with the advanced state. The input
 * state is not touched.
 */
export const drawRaw = (rng: RngState, count: number): readonly [readonly number[], RngState] => {
  const generator = xoroshiro128plusFromState(rng);
  const values = Array.from({ length: count }, () => generator.next());
  return [values, generator.getState()];
};

/**
 * A uniformly shuffled permutation of `0..n-1` (Fisher-Yates over pure-rand's `uniformInt`),
 * returned with the advanced state. The input state is not touched.
 *
 * @example
 * const [order, next] = permutation(seedRng(0), 5); // e.g. [3, 0, 4, 1, 2]
 */
export const permutation = (rng: RngState, n: number): readonly [number[], RngState] => {
  const generator = xoroshiro128plusFromState(rng);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(generator, 0, i);
    const t = out[i] ?? 0;
    out[i] = out[j] ?? 0;
    out[j] = t;
  }
  return [out, generator.getState()];
};
