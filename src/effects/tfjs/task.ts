/**
 * What `trainTfjs` trains (`TfjsTask`: the model, optimizer, loss, metrics, splits, hooks) and
 * how it ends (`TrainOutcome`, `TrainError`), with the loop's small helpers.
 */
import type * as TF from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { actions as act, type Action } from '../../reducers/actions.js';
import { getIn } from '../../state/config/merge.js';
import type { JsonObject } from '../../state/Json.js';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { nextEpoch } from '../../state/runner/selectors.js';
import type { Runner } from '../shell/runner.js';
import type { EpochMetricFn } from './epochMetrics.js';
import type { Source, SplitInput } from './data.js';
import type { BatchFn, StepFn } from './step.js';
import type { BuiltinHooks } from './builtins.js';

export type {
  SplitData,
  TensorsSplit,
  SplitInput,
  Batch,
  BatchSource,
  BatchStream,
  Pass,
  Tensors,
} from './data.js';
export type { BatchFn, StepFn, StepOutput, StepContext } from './step.js';

/** What a hook may give back: actions for the loop to dispatch (data), or nothing. */
export type HookResult = readonly Action[] | undefined;

/**
 * A hook: reads the state (and the context: the runner, for I/O or `requestStop()`), may return
 * actions, which the loop dispatches (so they land in the action log and checkpoints, and a
 * replay reaches the same state), synchronously or as a promise.
 */
export type Hook<C> = (state: RunnerState, context: C) => HookResult | Promise<HookResult>;

/** Where the loop is when a hook runs. */
export interface HookContext {
  readonly runner: Runner;
  readonly epoch: number;
  /**
   * Ends training after the current epoch (its evaluation, result and checkpoint), with
   * `reason` (default `stopped`): what early stopping does. For a stop at once, with `latest`
   * saved where the loop is, use `runner.requestStop()` (the graceful stop).
   */
  readonly endTraining: (reason?: 'patience' | 'stopped') => void;
}

/**
 * The loop's extension points. Each runs at one place, with the state as it is there; a hook
 * with state of its own keeps it in the runner state (return `mergeConfig` actions) or as a
 * checkpoint part (`Stateful`), so that it survives a resume.
 */
export interface TfjsHooks {
  /** Once per `trainTfjs` call, before the first epoch; again on a resume (return idempotent actions). */
  readonly trainStart?: Hook<HookContext>;
  /** When an epoch's training starts (not again when a resume continues inside it). */
  readonly epochStart?: Hook<HookContext>;
  /** After every optimizer step, with the batch's values (loss and batch metrics). */
  readonly stepEnd?: Hook<
    HookContext & {
      readonly batch: number;
      /** Batches in the epoch; NaN for a stream whose size is not known yet. */
      readonly batches: number;
      readonly values: Readonly<Record<string, number>>;
      /** Whether a step line is due (every `logInterval` batches, and at the epoch's last). */
      readonly logDue: boolean;
      /** Whether this is the epoch's last step. */
      readonly last: boolean;
    }
  >;
  /** After each evaluated split, with its result (batch averages and epoch metrics). */
  readonly evaluationEnd?: Hook<
    HookContext & { readonly split: string; readonly result: Readonly<Record<string, number>> }
  >;
  /** After the epoch's result is appended and written, before its checkpoint. */
  readonly epochEnd?: Hook<
    HookContext & { readonly result: Readonly<Record<string, Record<string, number>>> }
  >;
  /** When training ends (epochEnd, stepEnd, patience); not on a graceful stop (the run goes on later). */
  readonly trainEnd?: Hook<HookContext & { readonly reason: TrainOutcome['reason'] }>;
}

/** What the loop trains. */
export interface TfjsTask {
  /** The `tf` module in use (`@tensorflow/tfjs` or `@tensorflow/tfjs-node`). */
  readonly tf: typeof TF;
  /**
   * The model; by default the one in the runner's `model` part (`modelPart(tf, model)`), so
   * that the code building the parts is the only place holding it.
   */
  readonly model?: TF.LayersModel;
  /** The optimizer; by default the one in the runner's `optimizer` part (`optimizerPart`). */
  readonly optimizer?: TF.Optimizer;
  /** The spec's criterion, of the targets and the model's predictions (not needed with `step`). */
  readonly loss?: BatchFn;
  /**
   * A step of your own for one batch (see {@link StepFn}): the loss, metrics and predictions of
   * a model that is not one forward of `model`; by default `loss(y, model.apply(x))`.
   */
  readonly step?: StepFn;
  /**
   * The variables the optimizer trains; default the model's trainable weights. With `step`
   * and `variables` no model is needed (keep your variables in a checkpoint part of your own).
   */
  readonly variables?: readonly TF.Variable[];
  /**
   * Several optimizers updating in turn on each batch (a GAN's discriminator, then its
   * generator), instead of `optimizer` / `step` / `variables`: each phase's step gives its loss
   * for the gradients of its variables, applied with its optimizer before the next phase runs
   * (at each optimizer step; accumulated in between). Values are prefixed with the phase's name
   * (`d/loss`, `g/loss`; the rates `d/lr`, `g/lr`); schedules and clipping apply to each. Save
   * each optimizer as a part of its own (`optimizerPart`).
   */
  readonly phases?: readonly StepPhase[];
  /** Metrics averaged over each split, sample-weighted. */
  readonly metrics?: Readonly<Record<string, BatchFn>>;
  /**
   * Metrics over all of an evaluated split's predictions (`r2Score`, `auc`, `f1Macro`,
   * `accuracy`, or your own `(yTrue, yPred) => number`), computed once per split per epoch after
   * its batches: exact where a batch average is not. They join the split's result (so one can be
   * the score), the metric files and TensorBoard. Not computed for the training split, whose
   * predictions come from a model changing along the epoch (and would not survive a resume
   * inside it): evaluate the training data as a split of its own for that.
   */
  readonly epochMetrics?: Readonly<Record<string, EpochMetricFn>>;
  /**
   * Named splits; the training split is `trainSplit` (default `train`), the others are
   * evaluated. Each is tensors in memory (`{ x, y }`, shuffled by the loop), or batches:
   * `{ batches: (pass) => dataset }` (the order a function of `pass.seed`: exact resume), a
   * `tf.data.Dataset`, an array or an (async) iterable of `{ x, y }` batches (see
   * {@link SplitInput}).
   */
  readonly splits: Readonly<Record<string, SplitInput>>;
  readonly trainSplit?: string;
  /** Write a checkpoint and the result files at the end of every epoch (default `true`). */
  readonly save?: boolean;
  /**
   * Extension points (see {@link TfjsHooks}): one set or a list, run in order between the
   * built-in `progress` and `resultFiles` hooks and the built-in `checkpoint` and
   * `earlyStopping` ones; or a function of the built-ins giving the whole list, to reorder,
   * drop or replace them (`(b) => [b.progress, b.resultFiles, myCheckpoint]`).
   */
  readonly hooks?:
    TfjsHooks | readonly TfjsHooks[] | ((builtins: BuiltinHooks) => readonly TfjsHooks[]);
  /**
   * At the end of training (not on a graceful stop), load the model weights of the best
   * checkpoint (`best.safetensors`) into the model, after the background saves are done (Keras'
   * `restore_best_weights`). A run without one (no valid score, `save: false`) keeps its weights,
   * with a `BestWeightsUnavailable` warning.
   */
  readonly restoreBest?: boolean;
}

/** One optimizer of {@link TfjsTask.phases}. */
export interface StepPhase {
  /** The prefix of its values (`d` gives `d/loss`). */
  readonly name: string;
  readonly optimizer: TF.Optimizer;
  readonly variables: readonly TF.Variable[];
  readonly step: StepFn;
}

/** How the loop ended. */
export interface TrainOutcome {
  readonly state: RunnerState;
  /**
   * `epochEnd`, `stepEnd`, `patience` (early stopping), `stopped` (a hook's `endTraining()`), or
   * `interrupted` (a graceful stop).
   */
  readonly reason: 'epochEnd' | 'stepEnd' | 'patience' | 'stopped' | 'interrupted';
  /** The signal that stopped the run (`interrupted` only). */
  readonly signal?: NodeJS.Signals;
  /** The exit code the process should end with: 128 + the signal number (`interrupted` only). */
  readonly exitCode?: number;
  /** The checkpoint whose model weights were loaded at the end (`restoreBest`). */
  readonly restoredFrom?: string;
}

/** A step of the loop could not write its files: what and where. */
export interface TrainError {
  readonly _tag: 'TrainFailed';
  readonly cause: { readonly message: string };
  readonly message: string;
}

/** Thrown by a built-in hook whose write failed: the loop returns its error as it is. */
export class HookFailed extends Error {
  constructor(readonly error: TrainError) {
    super(error.message);
  }
}

export const failed = (what: string, cause: { message: string }): E.Either<TrainError, never> =>
  E.left({ _tag: 'TrainFailed', cause, message: `${what}: ${cause.message}` });

/** A thrown error (a user's step or hook, data that cannot be read) as a `TrainFailed`. */
export const thrown = (what: string, error: unknown): E.Either<TrainError, never> =>
  error instanceof HookFailed
    ? E.left(error.error)
    : failed(what, { message: error instanceof Error ? error.message : String(error) });

/**
 * Registers a split's size and batch size when they are known and not yet in the state (a
 * stream of unknown size is registered after its first pass).
 */
export const registerSource = (
  runner: Runner,
  split: string,
  source: Source,
  batchSize: number,
  counted?: number,
): void => {
  const size = counted ?? source.size;
  if (size === undefined) return;
  const bs = source.kind === 'stream' ? (source.batchSize ?? batchSize) : batchSize;
  const known = runner.state.splits[split];
  if (known?.size !== size || known.batchSize !== bs) {
    runner.dispatch(act.registerSplit(split, { size, batchSize: bs }));
  }
};

/** The epoch to start at: the one after the last finished epoch when the run resumed. */
export const firstEpoch = (state: RunnerState): number => nextEpoch(state);

/** Why the task's metric names clash, or `undefined`. */
export const metricClash = (
  task: Pick<TfjsTask, 'metrics' | 'epochMetrics'>,
): string | undefined => {
  const names = Object.keys(task.metrics ?? {});
  const clash = Object.keys(task.epochMetrics ?? {}).filter(
    (k) => k === 'loss' || names.includes(k),
  );
  return clash.length === 0
    ? undefined
    : `${clash.join(', ')}: named in both metrics (or loss) and epochMetrics; rename one`;
};

/** A task with its model and optimizer found (given, or taken from the runner's parts). */
export type ResolvedTask = Omit<TfjsTask, 'model' | 'optimizer'> & {
  /** Undefined only with a custom `step` and `variables`. */
  readonly model: TF.LayersModel | undefined;
  readonly optimizer: TF.Optimizer;
};

const partField = <K extends string>(
  runner: Runner,
  part: string,
  field: K,
): Record<K, unknown>[K] | undefined => {
  const p = runner.parts[part] as Partial<Record<K, unknown>> | undefined;
  return p?.[field];
};

/** The model of `task`, or of the runner's `model` part; an error saying how to give one. */
export const modelOf = (
  runner: Runner,
  task: Pick<TfjsTask, 'model'>,
  what: string,
): E.Either<TrainError, TF.LayersModel> => {
  const model = task.model ?? partField(runner, 'model', 'model');
  if (model !== undefined && typeof (model as TF.LayersModel).apply === 'function') {
    return E.right(model as TF.LayersModel);
  }
  return failed(what, {
    message:
      'no model: pass task.model, or build the runner with parts: { model: modelPart(tf, model) }',
  });
};

/** The task with its model and optimizer found, or an error saying how to give them. */
export const resolveTask = (
  runner: Runner,
  task: TfjsTask,
  what: string,
): E.Either<TrainError, ResolvedTask> => {
  const found = modelOf(runner, task, what);
  const own =
    task.phases !== undefined || (task.step !== undefined && task.variables !== undefined);
  if (E.isLeft(found) && !own) return found;
  const model = E.isRight(found) ? found.right : undefined;
  if (task.step === undefined && task.loss === undefined && task.phases === undefined) {
    return failed(what, { message: 'no loss: give task.loss, or task.step computing it' });
  }
  if (task.phases !== undefined) {
    const names = task.phases.map((p) => p.name);
    if (names.length === 0 || new Set(names).size !== names.length || names.includes('')) {
      return failed(what, {
        message: `task.phases: give at least one phase, each with a name of its own (got ${JSON.stringify(names)})`,
      });
    }
    const first = (task.phases[0] as StepPhase).optimizer;
    return E.right({ ...task, model, optimizer: task.optimizer ?? first });
  }
  const optimizer = task.optimizer ?? partField(runner, 'optimizer', 'optimizer');
  if (optimizer === undefined || typeof (optimizer as TF.Optimizer).applyGradients !== 'function') {
    return failed(what, {
      message:
        'no optimizer: pass task.optimizer, or build the runner with parts: { optimizer: optimizerPart(tf, optimizer) }',
    });
  }
  return E.right({ ...task, model, optimizer: optimizer as TF.Optimizer });
};

/** The batch size of the config's dataloader (default 32). */
export const batchSizeOf = (runner: Runner): number => {
  const configured = getIn(runner.state.config as JsonObject, 'dataloader.batchSize');
  return typeof configured === 'number' ? configured : 32;
};
