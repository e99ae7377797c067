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
import { signalExitCode } from '../shell/stop.js';
import {
  type HookResult,
  type Hook,
  type TfjsHooks,
  type TfjsTask,
  type TrainOutcome,
  type TrainError,
  failed,
  firstEpoch,
  rows,
  numberOf,
  metricClash,
  batchSizeOf,
  resolveTask,
} from './task.js';
import { optimizerLr, setOptimizerLr, clipGradients } from './optimizer.js';
import { evaluator } from './evaluate.js';

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
  given: TfjsTask,
): Promise<E.Either<TrainError, TrainOutcome>> => {
  const resolved = resolveTask(runner, given, 'trainTfjs');
  if (E.isLeft(resolved)) return resolved;
  const task = resolved.right;
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

export {
  firstEpoch,
  type SplitData,
  type BatchFn,
  type HookResult,
  type Hook,
  type HookContext,
  type TfjsHooks,
  type TfjsTask,
  type TrainOutcome,
  type TrainError,
} from './task.js';
export { optimizerLr, setOptimizerLr, clipGradients } from './optimizer.js';
export { evaluate, predict, type EvaluationInterrupted } from './evaluate.js';
