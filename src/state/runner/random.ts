/**
 * Pure random draws over the runner's generator state: each returns `[value, nextState]` and
 * never touches its input, so a loop threads the state through and a checkpoint carries it.
 */
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { seedRng, type RngState } from './rng.js';

/**
 * The seed a process uses: the spec's set_seed with its bug fixed (0 is a seed). With `bias`
 * (the default) each rank gets `seed + rank`, so data augmentation differs between processes.
 */
export const seedFor = (seed: number, options: { rank?: number; bias?: boolean } = {}): number =>
  options.bias === false ? seed : seed + (options.rank ?? 0);

/** The generator state for a process: {@link seedFor} then pure-rand's xoroshiro128plus. */
export const rngFor = (seed: number, options: { rank?: number; bias?: boolean } = {}): RngState =>
  seedRng(seedFor(seed, options));

/** An integer in `[from, to]`, uniformly. */
export const randomInt = (rng: RngState, from: number, to: number): readonly [number, RngState] => {
  const g = xoroshiro128plusFromState(rng);
  const v = uniformInt(g, from, to);
  return [v, g.getState()];
};

/** A float in `[0, 1)` with 53 random bits (two 32-bit draws). */
export const randomFloat = (rng: RngState): readonly [number, RngState] => {
  const g = xoroshiro128plusFromState(rng);
  const hi = (g.next() >>> 0) >>> 5; // 27 bits
  const lo = (g.next() >>> 0) >>> 6; // 26 bits
  return [(hi * 67108864 + lo) / 9007199254740992, g.getState()];
};

/** A normal draw (Box-Muller on two uniform floats; the second variate is discarded). */
export const randomNormal = (rng: RngState, mean = 0, std = 1): readonly [number, RngState] => {
  const [u1, r1] = randomFloat(rng);
  const [u2, r2] = randomFloat(r1);
  const z = Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
  return [mean + std * z, r2];
};

/** A seed for TensorFlow.js ops that take one (`tf.randomNormal(shape, 0, 1, 'float32', seed)`). */
export const tfSeed = (rng: RngState): readonly [number, RngState] =>
  randomInt(rng, 0, 2 ** 31 - 1);
