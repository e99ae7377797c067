/**
 * A training loop for TensorFlow.js models in the spirit of DanLing's TorchRunner, built on the
 * reducers: train and evaluate each epoch over named splits, meters per batch, gradient
 * accumulation, epochEnd / stepEnd, appendResult after evaluation, checkpoints and result files,
 * early stopping with `patience` computed from the results history (so it survives a resume);
 * learning-rate schedules (pure functions of the state) set before every optimizer step,
 * gradient clipping, epoch metrics over whole splits, hooks whose actions are dispatched,
 * `evaluate`, `predict` and `restoreBest`.
 */
import type * as TF from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { actions as act, type Action } from '../../reducers/actions.js';
import { getIn } from '../../state/config/merge.js';
import type { JsonObject } from '../../state/Json.js';
import { permutation } from '../../state/runner/rng.js';
import {
  baseLearningRate,
  plateauReductions,
  scheduledLr,
  scheduleTotalSteps,
} from '../../state/runner/schedule.js';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { formatEarlyStop, formatEpochResult } from '../../state/runner/format.js';
import {
  bestIndex,
  checkpointDir,
  getResult,
  isBest,
  nextEpoch,
  patienceExhausted,
  scoreMode,
  trainedInEpoch,
} from '../../state/runner/selectors.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { warning } from '../../state/warning.js';
import { loadPretrained } from '../run/runFiles.js';
import type { Runner } from '../shell/runner.js';
import { modelPart, type ModelPart } from './tfjs.js';
import type { EpochMetricFn } from './epochMetrics.js';
import { signalExitCode } from '../shell/stop.js';

/** One split's data: inputs and targets with the samples along the first axis. */
export interface SplitData {
  readonly x: TF.Tensor;
  readonly y: TF.Tensor;
}

/** A batch-wise function of targets and predictions giving a scalar (the loss, a metric). */
export type BatchFn = (yTrue: TF.Tensor, yPred: TF.Tensor) => TF.Scalar;

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
      readonly batches: number;
      readonly values: Readonly<Record<string, number>>;
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
  readonly model: TF.LayersModel;
  readonly optimizer: TF.Optimizer;
  /** The spec's criterion. */
  readonly loss: BatchFn;
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
  /** Named splits; the training split is `trainSplit` (default `train`), the others are evaluated. */
  readonly splits: Readonly<Record<string, SplitData>>;
  readonly trainSplit?: string;
  /** Write a checkpoint and the result files at the end of every epoch (default `true`). */
  readonly save?: boolean;
  /** Extension points (see {@link TfjsHooks}); none by default. */
  readonly hooks?: TfjsHooks;
  /**
   * At the end of training (not on a graceful stop), load the model weights of the best
   * checkpoint (`best.safetensors`) into the model, after the background saves are done (Keras'
   * `restore_best_weights`). A run without one (no valid score, `save: false`) keeps its weights,
   * with a `BestWeightsUnavailable` warning.
   */
  readonly restoreBest?: boolean;
}

/** How the loop ended. */
export interface TrainOutcome {
  readonly state: RunnerState;
  /** `epochEnd`, `stepEnd`, `patience` (early stopping), or `interrupted` (a graceful stop). */
  readonly reason: 'epochEnd' | 'stepEnd' | 'patience' | 'interrupted';
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

const failed = (what: string, cause: { message: string }): E.Either<TrainError, never> =>
  E.left({ _tag: 'TrainFailed', cause, message: `${what}: ${cause.message}` });

/** The epoch to start at: the one after the last finished epoch when the run resumed. */
export const firstEpoch = (state: RunnerState): number => nextEpoch(state);

/** Samples along the first axis. */
const rows = (t: TF.Tensor): number => t.shape.at(0) ?? 0;

const numberOf = (t: TF.Tensor): number => (t.dataSync() as Float32Array)[0] ?? Number.NaN;

/** The fields of a tfjs optimizer that hold its rate (SGD and Momentum keep a scalar too). */
interface RateField {
  learningRate?: unknown;
  setLearningRate?: (lr: number) => void;
}

/** The optimizer's learning rate, when it has a numeric one. */
export const optimizerLr = (optimizer: TF.Optimizer): number | undefined => {
  const lr = (optimizer as unknown as RateField).learningRate;
  return typeof lr === 'number' ? lr : undefined;
};

/**
 * Sets a tfjs optimizer's rate: `setLearningRate` where the optimizer has one (SGD, Momentum:
 * they keep `-lr` as a scalar), else the `learningRate` field, which Adam, Adamax, RMSProp and
 * Adagrad read at every `applyGradients`. Nothing is done when the rate is unchanged.
 */
export const setOptimizerLr = (optimizer: TF.Optimizer, lr: number): void => {
  const o = optimizer as unknown as RateField;
  if (o.learningRate === lr) return;
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
};

/**
 * Gradient clipping as `config.clipNorm` / `config.clipValue` ask (TensorFlow's
 * `clip_by_global_norm`, then `clip_by_value`): with a global L2 norm `n` over all gradients
 * above `clipNorm`, each is scaled by `clipNorm / n`; then each value is clipped to
 * `[-clipValue, clipValue]`. Call inside `tf.tidy`.
 */
export const clipGradients = (
  tf: typeof TF,
  grads: Readonly<Record<string, TF.Tensor>>,
  clip: { readonly clipNorm?: number | undefined; readonly clipValue?: number | undefined },
): Record<string, TF.Tensor> => {
  let out: Record<string, TF.Tensor> = { ...grads };
  const { clipNorm, clipValue } = clip;
  if (clipNorm !== undefined) {
    const squares = Object.values(out).map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(squares.length === 1 ? (squares[0] as TF.Tensor) : tf.addN(squares));
    const scale = tf.div(clipNorm, tf.maximum(norm, clipNorm));
    const scaled: Record<string, TF.Tensor> = {};
    for (const [k, g] of Object.entries(out)) scaled[k] = tf.mul(g, scale);
    out = scaled;
  }
  if (clipValue !== undefined) {
    const clipped: Record<string, TF.Tensor> = {};
    for (const [k, g] of Object.entries(out)) clipped[k] = tf.clipByValue(g, -clipValue, clipValue);
    out = clipped;
  }
  return out;
};

/** Why the task's metric names clash, or `undefined`. */
const metricClash = (task: TfjsTask): string | undefined => {
  const names = Object.keys(task.metrics ?? {});
  const clash = Object.keys(task.epochMetrics ?? {}).filter(
    (k) => k === 'loss' || names.includes(k),
  );
  return clash.length === 0
    ? undefined
    : `${clash.join(', ')}: named in both metrics (or loss) and epochMetrics; rename one`;
};

/** The batch size of the config's dataloader (default 32). */
const batchSizeOf = (runner: Runner): number => {
  const configured = getIn(runner.state.config as JsonObject, 'dataloader.batchSize');
  return typeof configured === 'number' ? configured : 32;
};

/**
 * The parts of the loop that training and {@link evaluate} share: the batch metrics, the turn
 * given to the event loop, and the evaluation of one split (dispatching its actions).
 */
const evaluator = (runner: Runner, task: TfjsTask, batchSize: number) => {
  const { tf, model } = task;
  const send = (action: Action): RunnerState => runner.dispatch(action);
  const metricNames = Object.keys(task.metrics ?? {});
  const epochMetrics = task.epochMetrics ?? {};
  const epochNames = Object.keys(epochMetrics);

  /** Loss and metrics of one batch, as plain numbers. */
  const measure = (yTrue: TF.Tensor, yPred: TF.Tensor): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const k of metricNames) {
      const fn = task.metrics?.[k];
      if (fn !== undefined) out[k] = tf.tidy(() => numberOf(fn(yTrue, yPred)));
    }
    return out;
  };

  // The loop never waits on anything while it trains, so signal handlers (a graceful stop)
  // could not run, nor a checkpoint written in the background: it gives the event loop a turn
  // at a batch boundary every 20 ms, and at every one while a checkpoint is being written.
  let lastTurn = performance.now();
  const turn = async (): Promise<void> => {
    if (runner.pendingSaves() === 0 && performance.now() - lastTurn < 20) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    lastTurn = performance.now();
  };

  /** Evaluates one split; `undefined` when a stop was asked for on the way. */
  const evaluate = async (
    split: string,
    data: SplitData,
  ): Promise<Record<string, number> | undefined> => {
    for (const a of [act.setMode('eval'), act.setSplit(split), act.resetMeters()]) {
      send(a);
    }
    const n = rows(data.x);
    // Predictions are kept only when epoch metrics need them.
    const preds: TF.Tensor[] = [];
    const dispose = (): void => {
      for (const p of preds) p.dispose();
    };
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const values = tf.tidy(() => {
        const xb = data.x.slice(start, size);
        const yb = data.y.slice(start, size);
        const pred = model.apply(xb, { training: false }) as TF.Tensor;
        if (epochNames.length > 0) preds.push(tf.keep(pred));
        return { loss: numberOf(task.loss(yb, pred)), ...measure(yb, pred) };
      });
      send(act.updateMeters(values, size));
      await turn();
      if (runner.stopSignal() !== null) {
        dispose();
        return undefined;
      }
    }
    const averaged = { ...getResult(runner.state, 'epoch') };
    if (epochNames.length === 0) return averaged;
    if (preds.length === 0) {
      for (const k of epochNames) averaged[k] = Number.NaN;
      return averaged;
    }
    try {
      tf.tidy(() => {
        const all = preds.length === 1 ? (preds[0] as TF.Tensor) : tf.concat(preds);
        for (const k of epochNames) averaged[k] = (epochMetrics[k] as EpochMetricFn)(data.y, all);
      });
    } finally {
      dispose();
    }
    return averaged;
  };
  return { measure, turn, evaluate };
};

/**
 * Trains `task` with `runner` until `epochEnd` or `stepEnd`, or until `patience` epochs pass
 * without a better score. Each optimizer step is dispatched (`stepProgress`, `updateMeters`), so
 * the action log can replay the run; each epoch ends with `appendResult`, a checkpoint and the
 * result files. A resumed runner continues after its last finished epoch, with the same random
 * stream: the shuffles, and so the weights, are the ones an uninterrupted run would have. Before
 * each optimizer step the rate of `config.schedule` is set and the averaged gradients are
 * clipped (`clipNorm`, `clipValue`); `task.hooks` run at their places, their actions dispatched.
 *
 * @example
 * const outcome = await trainTfjs(runner, { tf, model, optimizer, loss, splits: { train, val } });
 */
export const trainTfjs = async (
  runner: Runner,
  task: TfjsTask,
): Promise<E.Either<TrainError, TrainOutcome>> => {
  const { tf, model, optimizer } = task;
  const trainName = task.trainSplit ?? 'train';
  const train = task.splits[trainName];
  if (train === undefined) {
    return failed('trainTfjs', {
      message: `no ${JSON.stringify(trainName)} split among ${Object.keys(task.splits).join(', ')}`,
    });
  }
  // The backend: switched to config.backend when another one is in use (tfjs moves the
  // variables over); a resume from a checkpoint saved on another backend is no longer bitwise.
  const wanted = runner.state.config.backend;
  if (wanted !== undefined && tf.getBackend() !== wanted) {
    let switched: boolean;
    try {
      switched = await tf.setBackend(wanted);
      await tf.ready();
    } catch {
      switched = false;
    }
    if (!switched) {
      return failed('trainTfjs', {
        message: `backend: the ${wanted} backend is not registered or did not start${wanted === 'wasm' ? "; import '@tensorflow/tfjs-backend-wasm' before trainTfjs" : ''}`,
      });
    }
  }
  const backend = tf.getBackend();
  runner.logger.debug({ backend }, `training on the ${backend} backend`);
  const savedOn =
    runner.resumedFrom === null
      ? undefined
      : (runner.parts['model'] as Partial<ModelPart> | undefined)?.loadedBackend?.();
  if (savedOn !== undefined && savedOn !== backend) {
    const w = warning(
      'BackendChanged',
      `${runner.resumedFrom ?? 'the checkpoint'} was saved on the ${savedOn} backend, this run uses ${backend}: the resume is not bitwise exact (set backend: ${savedOn} to continue exactly)`,
    );
    runner.logger.warn({ warning: w._tag, savedOn, backend }, w.message);
  }
  // dispatch is synchronous; a failed append to the action log is reported by the next flush
  // (every step line, every checkpoint, and the end of training).
  const send = (action: Action): RunnerState => runner.dispatch(action);
  const hooks: TfjsHooks = task.hooks ?? {};
  const sendAll = (actions: HookResult): void => {
    if (actions !== undefined) for (const a of actions) send(a);
  };
  /**
   * Runs a hook and dispatches what it returns; a promise only when the hook returned one (the
   * caller awaits it then), so a synchronous hook costs no microtask.
   */
  const call = <C>(hook: Hook<C>, context: C): Promise<void> | undefined => {
    const r = hook(runner.state, context);
    if (r instanceof Promise) return r.then(sendAll);
    sendAll(r);
    return undefined;
  };
  const flushed = async (): Promise<E.Either<TrainError, void>> =>
    E.mapLeft((e: { message: string }) => ({
      _tag: 'TrainFailed' as const,
      cause: e,
      message: `action log: ${e.message}`,
    }))(await runner.flush());

  const batchSize = batchSizeOf(runner);
  for (const [split, data] of Object.entries(task.splits)) {
    const size = rows(data.x);
    const known = runner.state.splits[split];
    if (known?.size !== size || known.batchSize !== batchSize) {
      send(act.registerSplit(split, { size, batchSize }));
    }
  }
  const clash = metricClash(task);
  if (clash !== undefined) return failed('trainTfjs', { message: clash });
  const registered = tf.engine().registeredVariables;
  const variables = model.trainableWeights.flatMap((w) => {
    const v = registered[w.name];
    return v === undefined ? [] : [v];
  });
  const accum = runner.state.config.accumSteps;
  const { epochEnd, stepEnd } = runner.state.config;
  const trainSize = rows(train.x);
  const batches = Math.ceil(trainSize / batchSize);
  // By default about ten step lines an epoch, and a short split (up to ten batches) only its
  // last: never a line for every step of a short split.
  const logEvery =
    runner.state.config.logInterval ?? Math.max(Math.floor(batches / 10), Math.min(batches, 10));
  const { schedule, clipNorm, clipValue } = runner.state.config;
  const clipping = clipNorm !== undefined || clipValue !== undefined;
  // The schedule's inputs that do not change within the loop: the base rate (the optimizer's
  // rate when the loop starts, or schedule.lr), the run's end in optimizer steps.
  const startLr = optimizerLr(optimizer);
  let baseLr = 0;
  let totalSteps = 1;
  if (schedule !== undefined) {
    if (startLr === undefined && schedule.lr === undefined) {
      return failed('trainTfjs', {
        message: `config.schedule needs a base rate: the ${optimizer.getClassName()} has no numeric learningRate; set schedule.lr`,
      });
    }
    baseLr = baseLearningRate(runner.state, startLr ?? 0);
    totalSteps = scheduleTotalSteps(runner.state, Math.ceil(batches / accum));
  }
  // plateau's cuts change only when a result is appended: computed again when the history does.
  let cutsFor: unknown = undefined;
  let cuts = 0;
  /** Sets the rate of the step about to be taken (a pure function of the state). */
  const setRate = (): void => {
    if (schedule === undefined) return;
    const state = runner.state;
    if (state.results !== cutsFor) {
      cutsFor = state.results;
      cuts = plateauReductions(state);
    }
    setOptimizerLr(
      optimizer,
      scheduledLr(schedule, {
        baseLr,
        step: state.progress.step,
        totalSteps,
        reductions: cuts,
      }),
    );
  };

  const { measure, turn, evaluate } = evaluator(runner, task, batchSize);

  /**
   * The graceful stop: saves `latest` (of `saved`, default the current state), drains the action
   * log, says where the run stopped and how to resume it.
   */
  const interrupt = async (
    saved: RunnerState | undefined,
    save: boolean,
  ): Promise<E.Either<TrainError, TrainOutcome>> => {
    const signal = runner.stopSignal() ?? 'SIGTERM';
    if (save && task.save !== false) {
      const written = await runner.saveCheckpoint(saved);
      if (E.isLeft(written)) return failed('saveCheckpoint', written.left);
    }
    const f = await flushed();
    if (E.isLeft(f)) return f;
    const at = (saved ?? runner.state).progress;
    runner.logger.warn(
      { signal, epoch: at.epoch, step: at.step, warning: 'Interrupted' },
      `interrupted by ${signal} at epoch ${at.epoch}, step ${at.step}; resume with --autoResume true`,
    );
    return E.right({
      state: runner.state,
      reason: 'interrupted',
      signal,
      exitCode: signalExitCode(signal),
    });
  };

  let reason: TrainOutcome['reason'] = 'epochEnd';
  const last = epochEnd ?? Number.POSITIVE_INFINITY;
  if (epochEnd === undefined && stepEnd === undefined) {
    return failed('trainTfjs', { message: 'no end: set config.epochEnd or config.stepEnd' });
  }
  const saveSteps = runner.state.config.saveSteps;
  if (hooks.trainStart !== undefined) {
    const p = call(hooks.trainStart, { runner, epoch: firstEpoch(runner.state) });
    if (p !== undefined) await p;
  }
  for (let epoch = firstEpoch(runner.state); epoch < last; epoch++) {
    // A stop asked for at an epoch boundary: the state is the one last saved (the epoch-end
    // checkpoint, or the checkpoint the run resumed from).
    if (runner.stopSignal() !== null) return interrupt(undefined, false);
    if (stepEnd !== undefined && runner.state.progress.step >= stepEnd) {
      reason = 'stepEnd';
      break;
    }
    // A checkpoint saved inside this epoch (saveSteps, a graceful stop) continues at its next
    // batch, in the same shuffled order: the order comes from the generator as it was at the
    // start of the epoch, which is only advanced once the epoch's training is done.
    const done = epoch === runner.state.progress.epoch ? trainedInEpoch(runner.state) : 0;
    if (done > 0 && done < trainSize && done % batchSize !== 0) {
      return failed('trainTfjs', {
        message: `the checkpoint was saved after ${done} samples of epoch ${epoch}, not a whole number of batches of ${batchSize}: resume with the dataloader.batchSize it was saved with, or from an epoch-end checkpoint`,
      });
    }
    const resumeAt = done >= trainSize ? batches : done / batchSize;
    const trainActions =
      done === 0
        ? [act.startEpoch(epoch), act.setMode('train'), act.setSplit(trainName), act.resetMeters()]
        : [act.setMode('train'), act.setSplit(trainName)];
    for (const a of trainActions) send(a);
    if (done === 0 && hooks.epochStart !== undefined) {
      const p = call(hooks.epochStart, { runner, epoch });
      if (p !== undefined) await p;
    }
    const [order, rng] =
      resumeAt < batches ? permutation(runner.state.rng ?? [0, 0, 0, 0], trainSize) : [[], null];
    const indices = tf.tensor1d(order, 'int32');
    let pending: Record<string, TF.Tensor> | undefined;
    let pendingCount = 0;
    let logDue = false;
    const applyPending = (): void => {
      const grads = pending;
      const count = pendingCount;
      pending = undefined;
      pendingCount = 0;
      if (grads === undefined) return;
      setRate();
      tf.tidy(() => {
        const averaged: Record<string, TF.Tensor> = {};
        for (const [k, g] of Object.entries(grads)) averaged[k] = count === 1 ? g : g.div(count);
        optimizer.applyGradients(
          clipping ? clipGradients(tf, averaged, { clipNorm, clipValue }) : averaged,
        );
      });
      for (const g of Object.values(grads)) g.dispose();
      send(act.stepProgress(1));
    };
    for (let b = resumeAt; b < batches; b++) {
      if (stepEnd !== undefined && runner.state.progress.step >= stepEnd) break;
      const start = b * batchSize;
      const size = Math.min(batchSize, trainSize - start);
      const { values, grads } = tf.tidy(() => {
        const idx = indices.slice(start, size);
        const xb = tf.gather(train.x, idx);
        const yb = tf.gather(train.y, idx);
        let metrics: Record<string, number> = {};
        const { value, grads: g } = tf.variableGrads(() => {
          const pred = model.apply(xb, { training: true }) as TF.Tensor;
          metrics = measure(yb, pred);
          return task.loss(yb, pred);
        }, variables);
        return { values: { loss: numberOf(value), ...metrics }, grads: g };
      });
      if (pending === undefined) pending = grads;
      else {
        const sum: Record<string, TF.Tensor> = {};
        for (const [k, g] of Object.entries(grads)) {
          const prev = pending[k];
          sum[k] = prev === undefined ? g : tf.add(prev, g);
          if (prev !== undefined) {
            prev.dispose();
            g.dispose();
          }
        }
        pending = sum;
      }
      pendingCount += 1;
      const stepped = pendingCount === accum || b === batches - 1;
      if (stepped) applyPending();
      send(act.updateMeters(values, size));
      runner.progress(trainName, b + 1, batches);
      if (stepped && hooks.stepEnd !== undefined) {
        const p = call(hooks.stepEnd, { runner, epoch, batch: b + 1, batches, values });
        if (p !== undefined) await p;
      }
      // A step line (and its metric row) is written at an optimizer-step boundary only: with
      // accumSteps > 1 a line due between two steps waits for the next one, so no two rows share
      // a step (the first batch of an epoch would repeat the previous epoch's last step).
      logDue ||= (b + 1) % logEvery === 0 || b === batches - 1;
      if (logDue && stepped) {
        logDue = false;
        await runner.stepLog(trainName, b + 1, batches);
        const lr = optimizerLr(optimizer);
        if (lr !== undefined) {
          const wl = await runner.writeScore('lr', lr, trainName);
          if (E.isLeft(wl)) return failed('writeResult', wl.left);
        }
        const f = await flushed();
        if (E.isLeft(f)) return f;
      }
      // Step boundaries inside the epoch: a graceful stop, a periodic mid-epoch checkpoint.
      if (stepped && b < batches - 1) {
        await turn();
        if (runner.stopSignal() !== null) {
          indices.dispose();
          return interrupt(undefined, true);
        }
        if (
          saveSteps !== undefined &&
          task.save !== false &&
          runner.state.progress.step % saveSteps === 0
        ) {
          const queued = await runner.queueCheckpoint();
          if (E.isLeft(queued)) return failed('saveCheckpoint', queued.left);
        }
      }
    }
    applyPending();
    indices.dispose();
    if (rng !== null) send(act.setRng(rng));
    // The end of this epoch's training: what a stop during evaluation saves (the weights do not
    // change while evaluating), so that a resume evaluates again and appends the same result.
    const trained = runner.state;
    if (runner.stopSignal() !== null) return interrupt(trained, true);
    const result: Record<string, Record<string, number>> = {
      [trainName]: { ...getResult(runner.state, 'epoch') },
    };
    for (const [split, data] of Object.entries(task.splits)) {
      if (split === trainName) continue;
      const evaluated = await evaluate(split, data);
      if (evaluated === undefined) return interrupt(trained, true);
      result[split] = evaluated;
      if (hooks.evaluationEnd !== undefined) {
        const p = call(hooks.evaluationEnd, { runner, epoch, split, result: evaluated });
        if (p !== undefined) await p;
      }
    }
    send(act.appendResult(result, epoch));
    // Epoch averages of the training split get their own tags (`train/epoch/loss`), apart from
    // its per-step values (`train/loss`) at the same step.
    for (const [split, values] of Object.entries(result)) {
      const w = await runner.writeResult(values, split === trainName ? `${split}/epoch` : split);
      if (E.isLeft(w)) return failed('writeResult', w.left);
    }
    runner.logger.info(
      { epoch, result, best: isBest(runner.state) },
      formatEpochResult(runner.state, result),
    );
    if (hooks.epochEnd !== undefined) {
      const p = call(hooks.epochEnd, { runner, epoch, result });
      if (p !== undefined) await p;
    }
    if (task.save !== false) {
      // Copied now, written in the background (checkpoint, then the result files): the next
      // epoch trains while it is written. A failed write is logged and reported at the end.
      const queued = await runner.queueCheckpoint({ results: true });
      if (E.isLeft(queued)) return failed('saveCheckpoint', queued.left);
    }
    if (patienceExhausted(runner.state)) {
      reason = 'patience';
      runner.logger.info(
        {
          bestIndex: bestIndex(runner.state),
          patience: runner.state.config.patience,
          minDelta: runner.state.config.minDelta,
          scoreMode: scoreMode(runner.state),
        },
        formatEarlyStop(runner.state),
      );
      break;
    }
  }
  if (hooks.trainEnd !== undefined) {
    const p = call(hooks.trainEnd, { runner, epoch: runner.state.progress.epoch, reason });
    if (p !== undefined) await p;
  }
  const done = await flushed();
  if (E.isLeft(done)) return done;
  const settled = await runner.settle();
  if (E.isLeft(settled)) return failed('saveCheckpoint', settled.left);
  if (task.restoreBest === true) {
    const path = join(checkpointDir(runner.state), 'best.safetensors');
    if (task.save === false || !existsSync(path)) {
      const w = warning(
        'BestWeightsUnavailable',
        `restoreBest: no ${path} (no valid score, or save: false); the model keeps its last weights`,
      );
      runner.logger.warn({ warning: w._tag }, w.message);
    } else {
      const loaded = await loadPretrained(runner.state, modelPart(tf, model), path);
      if (E.isLeft(loaded)) return failed('restoreBest', loaded.left);
      runner.logger.info(
        { restoredFrom: path, bestIndex: bestIndex(runner.state) },
        `restored the best weights (epoch ${String(bestIndex(runner.state))}) from ${path}`,
      );
      return E.right({ state: runner.state, reason, restoredFrom: path });
    }
  }
  return E.right({ state: runner.state, reason });
};

/**
 * Evaluates one of `task.splits` with the current weights, after training or in a runner that
 * only evaluates: the same batches, metrics and epoch metrics as the loop's evaluation, its
 * actions dispatched (`setMode('eval')`, `setSplit`, `resetMeters`, `updateMeters`), the values
 * written as `split/name` scalars at the current step (unless `write: false`). The result is
 * not appended to the history. A graceful stop asked for on the way is an
 * `EvaluationInterrupted`.
 *
 * @example
 * const test = await evaluate(runner, { ...task, splits: { ...task.splits, test } }, 'test');
 */
export const evaluate = async (
  runner: Runner,
  task: TfjsTask,
  split: string,
  options: { readonly write?: boolean } = {},
): Promise<E.Either<TrainError | EvaluationInterrupted, Readonly<Record<string, number>>>> => {
  const data = task.splits[split];
  if (data === undefined) {
    return failed('evaluate', {
      message: `no ${JSON.stringify(split)} split among ${Object.keys(task.splits).join(', ')}`,
    });
  }
  const clash = metricClash(task);
  if (clash !== undefined) return failed('evaluate', { message: clash });
  const batchSize = batchSizeOf(runner);
  const size = rows(data.x);
  const known = runner.state.splits[split];
  if (known?.size !== size || known.batchSize !== batchSize) {
    runner.dispatch(act.registerSplit(split, { size, batchSize }));
  }
  const result = await evaluator(runner, task, batchSize).evaluate(split, data);
  if (result === undefined) {
    const signal = runner.stopSignal() ?? 'SIGTERM';
    return E.left({
      _tag: 'EvaluationInterrupted',
      signal,
      message: `evaluation of ${split} interrupted by ${signal}`,
    });
  }
  if (options.write !== false) {
    const w = await runner.writeResult(result, split);
    if (E.isLeft(w)) return failed('writeResult', w.left);
  }
  const f = await runner.flush();
  if (E.isLeft(f)) return failed('action log', f.left);
  return E.right(result);
};

/** A graceful stop was asked for while {@link evaluate} ran. */
export interface EvaluationInterrupted {
  readonly _tag: 'EvaluationInterrupted';
  readonly signal: NodeJS.Signals;
  readonly message: string;
}

/**
 * The model's predictions for `x` (samples along the first axis), in batches of
 * `dataloader.batchSize` with `training: false`, concatenated: one tensor for the caller to
 * dispose. Changes no state. A `Left` when the model refuses the input (a shape mismatch).
 *
 * @example
 * const probs = predict(runner, task, xTest); // E.Either<TrainError, tf.Tensor>
 */
export const predict = (
  runner: Runner,
  task: Pick<TfjsTask, 'tf' | 'model'>,
  x: TF.Tensor,
): E.Either<TrainError, TF.Tensor> => {
  const { tf, model } = task;
  const batchSize = batchSizeOf(runner);
  const n = rows(x);
  try {
    return E.right(
      tf.tidy(() => {
        const parts: TF.Tensor[] = [];
        for (let start = 0; start < n; start += batchSize) {
          const size = Math.min(batchSize, n - start);
          parts.push(model.apply(x.slice(start, size), { training: false }) as TF.Tensor);
        }
        if (parts.length === 0) return model.apply(x, { training: false }) as TF.Tensor;
        return parts.length === 1 ? (parts[0] as TF.Tensor) : tf.concat(parts);
      }),
    );
  } catch (error) {
    return failed('predict', { message: error instanceof Error ? error.message : String(error) });
  }
};
