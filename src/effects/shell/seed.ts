/**
 * The spec's set_seed and set_deterministic at the edge: the only place a seed is drawn from
 * entropy, once, so every run is reproducible from its config afterwards.
 */
import { randomInt } from 'node:crypto';
import { actions, type Action } from '../../reducers/actions.js';
import { rngFor } from '../../state/runner/random.js';
import type { RunnerState } from '../../state/runner/RunnerState.js';

/** Options of {@link setSeed}. */
export interface SetSeedOptions {
  /** The seed (default `config.seed`; 0 is a seed). */
  readonly seed?: number;
  /** Add the rank so each process draws a different stream (default `true`). */
  readonly bias?: boolean;
  /** Entropy for a seed when none is configured (default `crypto.randomInt(2 ** 31)`). */
  readonly draw?: () => number;
}

/**
 * Decides the seed and the generator state, and returns them with the actions that record them:
 * `mergeConfig({ seed })` when the seed was drawn (so it lands in the config and checkpoints)
 * and `setRng(...)`. Dispatch the actions (or `replay` them) to apply.
 *
 * @example
 * const { seed, actions } = setSeed(state);
 * for (const a of actions) state = reduce(state, a);
 */
export const setSeed = (
  state: RunnerState,
  options: SetSeedOptions = {},
): { readonly seed: number; readonly drawn: boolean; readonly actions: readonly Action[] } => {
  const given = options.seed ?? state.config.seed;
  const seed = given ?? (options.draw ?? (() => randomInt(2 ** 31)))();
  const rng = rngFor(seed, {
    rank: state.parallel.rank,
    ...(options.bias === undefined ? {} : { bias: options.bias }),
  });
  const out: Action[] = [];
  if (state.config.seed !== seed) out.push(actions.mergeConfig({ seed }));
  out.push(actions.setRng(rng));
  return { seed, drawn: given === undefined, actions: out };
};

/** What {@link setDeterministic} did and what it cannot do. */
export interface DeterministicReport {
  readonly set: readonly string[];
  readonly notes: readonly string[];
}

/**
 * The spec's set_deterministic. Sets `TF_DETERMINISTIC_OPS=1` in `env` (read by
 * `@tensorflow/tfjs-node`'s native TensorFlow) and reports what cannot be set: the pure-JS CPU
 * backend is deterministic already; WebGL/WebGPU reductions are not guaranteed to be; tfjs has
 * no global seed, so initializers and random ops need explicit seeds (see `tfSeed`).
 */
export const setDeterministic = (
  env: Record<string, string | undefined> = process.env,
): DeterministicReport => {
  env['TF_DETERMINISTIC_OPS'] = '1';
  return {
    set: ['TF_DETERMINISTIC_OPS=1'],
    notes: [
      'the tfjs CPU backend is deterministic: the same ops on the same inputs give the same bits',
      'tfjs has no global seed: give initializers and random ops a seed (tfSeed draws one from the run generator)',
      'GPU backends (webgl, webgpu) do not promise deterministic reductions',
    ],
  };
};
