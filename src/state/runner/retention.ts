/**
 * Which checkpoint files to keep, pure: composable keep rules over the files of a checkpoint
 * folder. `latest` and `best` are never deleted; `epoch-N` files follow `last` (the highest N)
 * and `every` (each M-th epoch stays for good); `best-N` files (one per epoch among the best K
 * scores) follow `bestEpochs`. The effect deletes what {@link prunable} names, only after the new
 * checkpoint is durable.
 */
import type { RunnerState } from './RunnerState.js';
import { scoreMode, scores } from './selectors.js';

/** The keep rules (absent: keep that kind of file for good). */
export interface KeepRules {
  /** Keep the `last` highest `epoch-N` files (`maxToKeep`). */
  readonly last?: number | undefined;
  /** Also keep every `epoch-N` with `(N + 1) % every === 0` (`keepEvery`). */
  readonly every?: number | undefined;
  /** The epochs whose `best-N` files stay (see {@link bestEpochs}); others are deleted. */
  readonly bestEpochs?: readonly number[] | undefined;
}

const EPOCH = /^epoch-(\d+)\.safetensors$/;
const BEST = /^best-(\d+)\.safetensors$/;

/**
 * The names among `names` (files of a checkpoint folder) that the rules do not keep.
 *
 * @example
 * prunable(['latest.safetensors', 'epoch-1.safetensors', 'epoch-2.safetensors', 'epoch-3.safetensors'], { last: 1, every: 2 })
 * // ['epoch-2.safetensors']: epoch-3 is the last, epoch-1 is every 2nd ((1 + 1) % 2 === 0)
 */
export const prunable = (names: readonly string[], rules: KeepRules): string[] => {
  const out: string[] = [];
  const { last, every, bestEpochs } = rules;
  if (last !== undefined && last > 0) {
    const epochs = names
      .map((n) => ({ n, m: EPOCH.exec(n) }))
      .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
      .map(({ n, m }) => ({ n, epoch: Number(m[1]) }))
      .sort((a, b) => b.epoch - a.epoch);
    for (const { n, epoch } of epochs.slice(last)) {
      if (every !== undefined && every > 0 && (epoch + 1) % every === 0) continue;
      out.push(n);
    }
  }
  if (bestEpochs !== undefined) {
    const keep = new Set(bestEpochs);
    for (const n of names) {
      const m = BEST.exec(n);
      if (m !== null && !keep.has(Number(m[1]))) out.push(n);
    }
  }
  return out;
};

/**
 * The epochs of the `k` best valid scores, best first (ties: the earlier epoch ranks higher, as
 * `isBest` never counts a tie as better).
 */
export const bestEpochs = (state: RunnerState, k: number): number[] => {
  const sign = scoreMode(state) === 'min' ? 1 : -1;
  return scores(state)
    .filter(
      (s): s is { index: number; score: number } => s.score !== undefined && !Number.isNaN(s.score),
    )
    .sort((a, b) => sign * (a.score - b.score) || a.index - b.index)
    .slice(0, Math.max(0, k))
    .map((s) => s.index);
};
