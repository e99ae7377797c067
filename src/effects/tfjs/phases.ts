/**
 * The optimizers of a training: the task's one, or its phases (several in turn on each batch),
 * each with the variables it trains, its step, its base rate, and the gradients accumulated
 * for its next update; the schedule's rate set and the clipping done at each update.
 */
import type * as TF from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import {
  baseLearningRate,
  plateauReductions,
  scheduledLr,
  scheduleTotalSteps,
} from '../../state/runner/schedule.js';
import type { Runner } from '../shell/runner.js';
import { clipGradients, optimizerLr, setOptimizerLr } from './optimizer.js';
import { stepper } from './step.js';
import { failed, type ResolvedTask, type TrainError } from './task.js';

/** One optimizer of the loop: its variables, its step, its base rate and accumulated gradients. */
export interface Phase {
  /** The prefix of its values and rate: `''`, or the phase's name and `/`. */
  readonly prefix: string;
  readonly optimizer: TF.Optimizer;
  readonly variables: TF.Variable[];
  readonly steps: Pick<ReturnType<typeof stepper>, 'train'>;
  baseLr: number;
  pending: Record<string, TF.Tensor> | undefined;
}

/** The phases of `task`, and how one is updated; an error when a schedule cannot apply. */
export const optimizerPhases = (
  runner: Runner,
  task: ResolvedTask,
  context: {
    /** The task's default step. */
    readonly steps: Pick<ReturnType<typeof stepper>, 'train'>;
    /** The engine's variables of layer weights or variables. */
    readonly tracked: (vs: readonly TF.LayerVariable[] | readonly TF.Variable[]) => TF.Variable[];
    /** Batches in an epoch of the training split (NaN: not known yet). */
    readonly known: number;
    readonly trainName: string;
  },
): E.Either<
  TrainError,
  {
    readonly phases: readonly Phase[];
    readonly apply: (phase: Phase, count: number) => void;
    readonly accumulate: (phase: Phase, grads: Record<string, TF.Tensor>) => void;
  }
> => {
  const { tf, model, optimizer } = task;
  const { steps, tracked, known, trainName } = context;
  const { schedule, clipNorm, clipValue, stepEnd } = runner.state.config;
  const accum = runner.state.config.accumSteps;
  const clipping = clipNorm !== undefined || clipValue !== undefined;
  // The schedule's inputs that do not change within the loop: the base rate (the optimizer's
  // rate when the loop starts, or schedule.lr), the run's end in optimizer steps.
  let totalSteps = 1;
  // The optimizers, each with the variables it trains and its step: the task's one, or its
  // phases (several optimizers in turn on each batch), with the base rate of each.
  const phases: Phase[] = (
    task.phases === undefined
      ? [
          {
            prefix: '',
            optimizer,
            variables: tracked(task.variables ?? model?.trainableWeights ?? []),
            steps,
          },
        ]
      : task.phases.map((p) => ({
          prefix: `${p.name}/`,
          optimizer: p.optimizer,
          variables: tracked(p.variables),
          steps: stepper({ ...task, step: p.step }),
        }))
  ).map((p) => ({ ...p, baseLr: 0, pending: undefined }));
  if (schedule !== undefined) {
    for (const p of phases) {
      const startLr = optimizerLr(p.optimizer);
      if (startLr === undefined && schedule.lr === undefined) {
        return failed('trainTfjs', {
          message: `config.schedule needs a base rate: the ${p.optimizer.getClassName()} has no numeric learningRate; set schedule.lr`,
        });
      }
      p.baseLr = baseLearningRate(runner.state, startLr ?? 0);
    }
    const ends = schedule.kind === 'cosine' || schedule.kind === 'linear';
    if (
      ends &&
      !Number.isFinite(known) &&
      schedule.totalSteps === undefined &&
      stepEnd === undefined
    ) {
      return failed('trainTfjs', {
        message: `config.schedule: a ${schedule.kind} schedule needs the run's length in steps, and the size of splits.${trainName} is unknown: set schedule.totalSteps or stepEnd, or give the split's size ({ batches, size })`,
      });
    }
    totalSteps = scheduleTotalSteps(runner.state, Math.ceil(known / accum));
  }
  // plateau's cuts change only when a result is appended: computed again when the history does.
  let cutsFor: unknown = undefined;
  let cuts = 0;
  /** Sets the rate of the step about to be taken (a pure function of the state). */
  const setRate = (phase: Phase): void => {
    if (schedule === undefined) return;
    const state = runner.state;
    if (state.results !== cutsFor) {
      cutsFor = state.results;
      cuts = plateauReductions(state);
    }
    setOptimizerLr(
      phase.optimizer,
      scheduledLr(schedule, {
        baseLr: phase.baseLr,
        step: state.progress.step,
        totalSteps,
        reductions: cuts,
      }),
    );
  };
  /** Applies a phase's accumulated gradients (averaged, clipped) with its optimizer. */
  const apply = (phase: Phase, count: number): void => {
    const grads = phase.pending;
    phase.pending = undefined;
    if (grads === undefined) return;
    setRate(phase);
    tf.tidy(() => {
      const averaged: Record<string, TF.Tensor> = {};
      for (const [k, g] of Object.entries(grads)) averaged[k] = count === 1 ? g : g.div(count);
      phase.optimizer.applyGradients(
        clipping ? clipGradients(tf, averaged, { clipNorm, clipValue }) : averaged,
      );
    });
    for (const g of Object.values(grads)) g.dispose();
  };
  /** Adds a batch's gradients to a phase's accumulated ones. */
  const accumulate = (phase: Phase, grads: Record<string, TF.Tensor>): void => {
    const prev = phase.pending;
    if (prev === undefined) {
      phase.pending = grads;
      return;
    }
    const sum: Record<string, TF.Tensor> = {};
    for (const [k, g] of Object.entries(grads)) {
      const p = prev[k];
      sum[k] = p === undefined ? g : tf.add(p, g);
      if (p !== undefined) {
        p.dispose();
        g.dispose();
      }
    }
    phase.pending = sum;
  };
  return E.right({ phases, apply, accumulate });
};
