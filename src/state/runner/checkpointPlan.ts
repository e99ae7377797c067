/**
 * Which checkpoint files a save produces: pure, so that deciding is separate from doing
 * (`effects/checkpointStore.ts` does it).
 */

/** What {@link planCheckpoint} needs to know about the epoch being saved. */
export interface CheckpointPlanInput {
  /** The epoch being saved (0-based, as `config.epoch`). */
  readonly epoch: number;
  /** Keep an `epoch-N` copy every `saveInterval` epochs; `<= 0` or absent keeps none. */
  readonly saveInterval?: number | undefined;
  /** Whether this epoch has the best score so far. */
  readonly isBest: boolean;
  /**
   * A save inside an epoch (`saveSteps`, a graceful stop): only `latest`, since the epoch has no
   * result yet and must never become `best` or `epoch-N`.
   */
  readonly midEpoch?: boolean | undefined;
  /** This epoch is among the `keepBest` best: it gets its own `best-{epoch}` file. */
  readonly keptBest?: boolean | undefined;
}

/** The names of the files a save produces: always `latest`, then `epoch-N` and `best` as planned. */
export type CheckpointPlan = readonly string[];

/**
 * Plans a save as the spec's `save_checkpoint` does: always `latest`; `epoch-{epoch}` when
 * `saveInterval > 0` and `(epoch + 1) % saveInterval == 0`; `best` when `isBest`.
 *
 * @example
 * ```ts
 * planCheckpoint({ epoch: 4, saveInterval: 5, isBest: true }); // ['latest', 'epoch-4', 'best']
 * planCheckpoint({ epoch: 0, isBest: false });                 // ['latest']
 * planCheckpoint({ epoch: 4, isBest: true, midEpoch: true });  // ['latest']
 * ```
 */
export const planCheckpoint = ({
  epoch,
  saveInterval,
  isBest,
  midEpoch,
  keptBest,
}: CheckpointPlanInput): CheckpointPlan => {
  const names = ['latest'];
  if (midEpoch === true) return names;
  if (keptBest === true) names.push(`best-${epoch}`);
  if (saveInterval !== undefined && saveInterval > 0 && (epoch + 1) % saveInterval === 0)
    names.push(`epoch-${epoch}`);
  if (isBest) names.push('best');
  return names;
};
