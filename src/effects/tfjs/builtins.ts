/**
 * The loop's own behaviours written as hooks, through the same interface as a user's: step
 * lines and the progress bar, the result files and epoch line, the epoch-end checkpoint, and
 * early stopping. `trainTfjs` runs them around the task's hooks; `hooks: (builtins) => [...]`
 * chooses, reorders or replaces them.
 */
import * as E from 'fp-ts/lib/Either.js';
import { formatEarlyStop, formatEpochResult } from '../../state/runner/format.js';
import { bestIndex, isBest, patienceExhausted, scoreMode } from '../../state/runner/selectors.js';
import { HookFailed, type TfjsHooks, type TrainError } from './task.js';

/** The built-in hooks, in the order `trainTfjs` runs them by default (the task's between). */
export interface BuiltinHooks {
  /**
   * `stepEnd`: the progress bar; where a step line is due (`logInterval`, an epoch's last
   * step), the step line, its metric row and the learning rate (`train/lr`; `train/d/lr`, ...
   * with phases), and a flush of the action log.
   */
  readonly progress: TfjsHooks;
  /** `epochEnd`: the epoch's result as metric rows (`val/...`, `train/epoch/...`) and the epoch line. */
  readonly resultFiles: TfjsHooks;
  /**
   * `epochEnd`: the checkpoint (`latest`, `best`, `epoch-N` by the keep rules) and the result
   * files, copied now and written in the background. (The mid-epoch saves of `saveSteps` stay in
   * the loop: they share a step boundary with the graceful stop.)
   */
  readonly checkpoint: TfjsHooks;
  /** `epochEnd`: ends training once `patience` results passed without a better score. */
  readonly earlyStopping: TfjsHooks;
}

const orFail = (what: string, r: E.Either<{ readonly message: string }, unknown>): void => {
  if (E.isLeft(r)) {
    const error: TrainError = {
      _tag: 'TrainFailed',
      cause: r.left,
      message: `${what}: ${r.left.message}`,
    };
    throw new HookFailed(error);
  }
};

/** The built-in hooks of one `trainTfjs` call. */
export const builtinHooks = (options: {
  readonly trainSplit: string;
  /** The learning rates to log, by tag (`lr`, or `d/lr` and `g/lr` with phases). */
  readonly rates: () => Readonly<Record<string, number>>;
  readonly save: boolean;
}): BuiltinHooks => {
  const { trainSplit, rates } = options;
  return {
    progress: {
      stepEnd: (_state, { runner, batch, batches, logDue }) => {
        runner.progress(trainSplit, batch, batches);
        if (!logDue) return undefined;
        return (async () => {
          await runner.stepLog(trainSplit, batch, batches);
          for (const [tag, lr] of Object.entries(rates())) {
            orFail('writeResult', await runner.writeScore(tag, lr, trainSplit));
          }
          const flushed = await runner.flush();
          if (E.isLeft(flushed)) orFail('action log', flushed);
          return undefined;
        })();
      },
    },
    resultFiles: {
      // Epoch averages of the training split get their own tags (`train/epoch/loss`), apart
      // from its per-step values (`train/loss`) at the same step.
      epochEnd: async (state, { runner, epoch, result }) => {
        for (const [split, values] of Object.entries(result)) {
          orFail(
            'writeResult',
            await runner.writeResult(values, split === trainSplit ? `${split}/epoch` : split),
          );
        }
        runner.logger.info(
          { epoch, result, best: isBest(runner.state) },
          formatEpochResult(runner.state, result),
        );
        return undefined;
      },
    },
    checkpoint: {
      // Copied now, written in the background (checkpoint, then the result files): the next
      // epoch trains while it is written. A failed write is logged and reported at the end.
      epochEnd: async (_state, { runner }) => {
        if (options.save) orFail('saveCheckpoint', await runner.queueCheckpoint({ results: true }));
        return undefined;
      },
    },
    earlyStopping: {
      epochEnd: (state, { runner, endTraining }) => {
        if (!patienceExhausted(state)) return undefined;
        runner.logger.info(
          {
            bestIndex: bestIndex(state),
            patience: state.config.patience,
            minDelta: state.config.minDelta,
            scoreMode: scoreMode(state),
          },
          formatEarlyStop(state),
        );
        endTraining('patience');
        return undefined;
      },
    },
  };
};
