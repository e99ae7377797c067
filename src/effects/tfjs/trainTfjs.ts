/**
 * A training loop for TensorFlow.js models in the spirit of DanLing's TorchRunner, built on the
 * reducers: train and evaluate each epoch over named splits, meters per batch, gradient
 * accumulation, epochEnd / stepEnd, appendResult after evaluation, checkpoints and result files,
 * early stopping with `patience` computed from the results history (so it survives a resume);
 * learning-rate schedules (pure functions of the state) set before every optimizer step,
 * gradient clipping, epoch metrics over whole splits, hooks whose actions are dispatched (the
 * built-in behaviours among them), splits as tensors, datasets or iterables of batches, a
 * custom step or several optimizers in turn, evaluation every N epochs or steps, `evaluate`,
 * `predict` and `restoreBest`.
 */
import type * as TF from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { actions as act, type Action } from '../../reducers/actions.js';
import { permutation, type RngState } from '../../state/runner/rng.js';
import { tfSeed } from '../../state/runner/random.js';
import {
  type Batch,
  type BatchReader,
  type Source,
  rowsOf,
  sourceOf,
  streamReader,
  tensorReader,
} from './data.js';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { formatResult } from '../../state/runner/format.js';
import { getResult, trainedInEpoch } from '../../state/runner/selectors.js';
import type { Runner } from '../shell/runner.js';
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
  metricClash,
  batchSizeOf,
  resolveTask,
  registerSource,
  thrown,
} from './task.js';
import { optimizerLr } from './optimizer.js';
import { evaluator, restoreBestWeights } from './evaluate.js';
import { optimizerPhases } from './phases.js';
import { builtinHooks } from './builtins.js';
import { useBackend } from './backend.js';

/**
 * Trains `task` with `runner` until `epochEnd` or `stepEnd`, or until `patience` epochs pass
 * without a better score. Each optimizer step is dispatched (`stepProgress`, `updateMeters`), so
 * the action log can replay the run; each epoch ends with `appendResult`, a checkpoint and the
 * result files. A resumed runner continues after its last finished epoch, with the same random
 * stream: the shuffles, and so the weights, are the ones an uninterrupted run would have. Before
 * each optimizer step the rate of `config.schedule` is set and the averaged gradients are
 * clipped (`clipNorm`, `clipValue`); `task.hooks` run at their places, their actions dispatched.
 * The model and optimizer are the task's, or those of the runner's `model` and `optimizer` parts.
 * A split of batches is read one batch ahead; its order in an epoch comes from `pass.seed`, so a
 * resume inside the epoch skips what was trained. Nothing throws: a failure, a thrown step or
 * hook included, is a `TrainFailed`.
 *
 * @example
 * const outcome = await trainTfjs(runner, { tf, loss, splits: { train, val } });
 */
export const trainTfjs = async (
  runner: Runner,
  given: TfjsTask,
): Promise<E.Either<TrainError, TrainOutcome>> => {
  // A user's step, loss or hook that throws, or data that cannot be read, is a TrainFailed
  // naming it: nothing throws out of the loop.
  try {
    return await runTraining(runner, given);
  } catch (error) {
    return thrown('trainTfjs', error);
  }
};

const isHookList = (h: TfjsHooks | readonly TfjsHooks[]): h is readonly TfjsHooks[] =>
  Array.isArray(h);

const runTraining = async (
  runner: Runner,
  given: TfjsTask,
): Promise<E.Either<TrainError, TrainOutcome>> => {
  const resolved = resolveTask(runner, given, 'trainTfjs');
  if (E.isLeft(resolved)) return resolved;
  const task = resolved.right;
  const { tf, model } = task;
  const trainName = task.trainSplit ?? 'train';
  const train = task.splits[trainName];
  if (train === undefined) {
    return failed('trainTfjs', {
      message: `no ${JSON.stringify(trainName)} split among ${Object.keys(task.splits).join(', ')}`,
    });
  }
  const switched = await useBackend(runner, tf);
  if (E.isLeft(switched)) return switched;
  // dispatch is synchronous; a failed append to the action log is reported by the next flush
  // (every step line, every checkpoint, and the end of training).
  const send = (action: Action): RunnerState => runner.dispatch(action);
  // The hooks: the built-ins around the task's, or the list the task makes of the built-ins.
  const builtins = builtinHooks({
    trainSplit: trainName,
    rates: () => {
      const out: Record<string, number> = {};
      for (const p of phases) {
        const lr = optimizerLr(p.optimizer);
        if (lr !== undefined) out[`${p.prefix}lr`] = lr;
      }
      return out;
    },
    save: task.save !== false,
  });
  const own = task.hooks;
  const list: readonly TfjsHooks[] =
    typeof own === 'function'
      ? own(builtins)
      : [
          builtins.progress,
          builtins.resultFiles,
          ...(own === undefined ? [] : isHookList(own) ? own : [own]),
          builtins.checkpoint,
          builtins.earlyStopping,
        ];
  const at = <K extends keyof TfjsHooks>(place: K): NonNullable<TfjsHooks[K]>[] =>
    list.flatMap((h) => (h[place] === undefined ? [] : [h[place] as NonNullable<TfjsHooks[K]>]));
  const hooks = {
    trainStart: at('trainStart'),
    epochStart: at('epochStart'),
    stepEnd: at('stepEnd'),
    evaluationEnd: at('evaluationEnd'),
    epochEnd: at('epochEnd'),
    trainEnd: at('trainEnd'),
  };
  let ended: 'patience' | 'stopped' | undefined;
  const endTraining = (why: 'patience' | 'stopped' = 'stopped'): void => {
    ended ??= why;
  };
  const sendAll = (actions: HookResult): void => {
    if (actions !== undefined) for (const a of actions) send(a);
  };
  /**
   * Runs the hooks of a place in order, dispatching what each returns before the next runs; a
   * promise only once a hook returned one (the caller awaits it then), so synchronous hooks cost
   * no microtask.
   */
  const call = <C>(fns: readonly Hook<C>[], context: C): Promise<void> | undefined => {
    for (let i = 0; i < fns.length; i++) {
      const r = (fns[i] as Hook<C>)(runner.state, context);
      if (r instanceof Promise) {
        return (async () => {
          sendAll(await r);
          for (let j = i + 1; j < fns.length; j++) {
            sendAll(await (fns[j] as Hook<C>)(runner.state, context));
          }
        })();
      }
      sendAll(r);
    }
    return undefined;
  };
  const flushed = async (): Promise<E.Either<TrainError, void>> =>
    E.mapLeft((e: { message: string }) => ({
      _tag: 'TrainFailed' as const,
      cause: e,
      message: `action log: ${e.message}`,
    }))(await runner.flush());

  const batchSize = batchSizeOf(runner);
  const sources: Record<string, Source> = {};
  for (const [split, data] of Object.entries(task.splits)) {
    const source = sourceOf(split, data);
    if (typeof source === 'string') return failed('trainTfjs', { message: source });
    sources[split] = source;
    registerSource(runner, split, source, batchSize);
  }
  const trainSource = sources[trainName] as Source;
  const clash = metricClash(task);
  if (clash !== undefined) return failed('trainTfjs', { message: clash });
  const registered = tf.engine().registeredVariables;
  const tracked = (vs: readonly TF.LayerVariable[] | readonly TF.Variable[]): TF.Variable[] =>
    vs.flatMap((w) => {
      const v = registered[w.name];
      return v === undefined ? [] : [v];
    });
  const accum = runner.state.config.accumSteps;
  const { epochEnd, stepEnd } = runner.state.config;
  // The training split's size: known for tensors and sized streams, else counted by its first
  // pass (and registered), NaN before that.
  const trainSize = (): number => trainSource.size ?? runner.state.splits[trainName]?.size ?? NaN;
  const trainBatchSize =
    trainSource.kind === 'stream' ? (trainSource.batchSize ?? batchSize) : batchSize;
  const batchesOf = (): number => Math.ceil(trainSize() / trainBatchSize);
  // By default about ten step lines an epoch, and a short split (up to ten batches) only its
  // last: never a line for every step of a short split. Every 10 steps when the size is unknown.
  const known = batchesOf();
  const logEvery =
    runner.state.config.logInterval ??
    (Number.isFinite(known) ? Math.max(Math.floor(known / 10), Math.min(known, 10)) : 10);
  const { steps, turn, evaluate } = evaluator(runner, task, batchSize);
  const updates = optimizerPhases(runner, task, { steps, tracked, known, trainName });
  if (E.isLeft(updates)) return updates;
  const { phases, apply, accumulate } = updates.right;

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
  const { saveSteps, evalSteps, evalInterval } = runner.state.config;
  const evaluated = Object.entries(sources).filter(([split]) => split !== trainName);

  /**
   * An evaluation inside an epoch (`evalSteps`): each other split's values written at the
   * current step and logged, not appended to the results; then the training meters (the
   * epoch's samples so far) are put back. A stop on the way saves the state before it.
   */
  const evaluateInside = async (
    epoch: number,
  ): Promise<E.Either<TrainError, TrainOutcome> | undefined> => {
    const before = runner.state;
    for (const [split, source] of evaluated) {
      const values = await evaluate(split, source, epoch);
      if (values === undefined) return interrupt(before, true);
      const w = await runner.writeResult(values, split);
      if (E.isLeft(w)) return failed('writeResult', w.left);
      runner.logger.info(
        { split, step: before.progress.step, result: values },
        `evaluated ${split} at step ${before.progress.step}: ${formatResult(values)}`,
      );
      if (hooks.evaluationEnd.length > 0) {
        const p = call(hooks.evaluationEnd, { runner, epoch, endTraining, split, result: values });
        if (p !== undefined) await p;
      }
    }
    for (const a of [act.setMeters(before.meters), act.setMode('train'), act.setSplit(trainName)]) {
      send(a);
    }
    return undefined;
  };
  if (hooks.trainStart.length > 0) {
    const p = call(hooks.trainStart, { runner, epoch: firstEpoch(runner.state), endTraining });
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
    // A checkpoint saved inside this epoch (saveSteps, a graceful stop) continues after the
    // samples it trained, in the same order: the order comes from the generator as it was at
    // the start of the epoch, which is only advanced once the epoch's training is done.
    const done = epoch === runner.state.progress.epoch ? trainedInEpoch(runner.state) : 0;
    const size = trainSize();
    const finished = done > 0 && done >= size;
    if (trainSource.kind === 'tensors' && done > 0 && !finished && done % batchSize !== 0) {
      return failed('trainTfjs', {
        message: `the checkpoint was saved after ${done} samples of epoch ${epoch}, not a whole number of batches of ${batchSize}: resume with the dataloader.batchSize it was saved with, or from an epoch-end checkpoint`,
      });
    }
    if (
      trainSource.kind === 'stream' &&
      done > 0 &&
      !finished &&
      trainSource.repeatable === 'unknown'
    ) {
      return failed('trainTfjs', {
        message: `the checkpoint was saved after ${done} samples of epoch ${epoch}, and splits.${trainName} is a bare dataset or iterator, which danling cannot replay in the same order: give it as { batches: ({ seed }) => dataset.shuffle(n, String(seed)) } (or without a shuffle), or resume from an epoch-end checkpoint (--checkpoint .../epoch-${epoch - 1}...)`,
      });
    }
    const trainActions =
      done === 0
        ? [act.startEpoch(epoch), act.setMode('train'), act.setSplit(trainName), act.resetMeters()]
        : [act.setMode('train'), act.setSplit(trainName)];
    for (const a of trainActions) send(a);
    if (done === 0 && hooks.epochStart.length > 0) {
      const p = call(hooks.epochStart, { runner, epoch, endTraining });
      if (p !== undefined) await p;
    }
    const rng0 = runner.state.rng ?? [0, 0, 0, 0];
    let rng: RngState | null = null;
    let reader: BatchReader | undefined;
    let b = 0;
    if (!finished && trainSource.kind === 'tensors') {
      const [order, next] = permutation(rng0, size);
      rng = next;
      b = done / batchSize;
      reader = tensorReader(tf, trainSource, batchSize, { order, from: b });
    } else if (!finished && trainSource.kind === 'stream') {
      const [seed, next] = tfSeed(rng0);
      rng = next;
      reader = streamReader(trainName, trainSource.open({ epoch, seed }));
      // A resume inside the epoch: the samples already trained are read and dropped.
      for (let skipped = 0; skipped < done; b++) {
        const got = reader.next();
        const batch = got instanceof Promise ? await got : got;
        if (batch === undefined || skipped + rowsOf(batch.x) > done) {
          reader.close();
          if (batch !== undefined) reader.release(batch);
          return failed('trainTfjs', {
            message: `splits.${trainName}: the checkpoint was saved after ${done} samples of epoch ${epoch}, and this pass ${batch === undefined ? `ended after ${skipped}` : `has no batch boundary there (${skipped} + ${rowsOf(batch.x)})`}: the data is not the one the run was trained on`,
          });
        }
        skipped += rowsOf(batch.x);
        reader.release(batch);
      }
    }
    const batches = batchesOf();
    let pendingCount = 0;
    let logDue = false;
    let seen = done;
    /** The optimizer step of what is accumulated (at a stepEnd or the end of the pass). */
    const applyPending = (): void => {
      const count = pendingCount;
      pendingCount = 0;
      if (count === 0) return;
      for (const p of phases) apply(p, count);
      send(act.stepProgress(1));
    };
    const read = async (): Promise<Batch | undefined> => {
      const got = reader?.next();
      return got instanceof Promise ? await got : got;
    };
    // One batch ahead, so that the last batch of a stream is known when it is trained.
    let current = reader === undefined ? undefined : await read();
    let passDone = current === undefined;
    while (current !== undefined) {
      if (stepEnd !== undefined && runner.state.progress.step >= stepEnd) {
        reader?.release(current);
        reader?.close();
        break;
      }
      const next = await read();
      const isLast = next === undefined;
      const stepped = pendingCount + 1 === accum || isLast;
      let values: Record<string, number> = {};
      let n = 0;
      try {
        // Each phase's forward and gradients; at a step, its update before the next phase's
        // forward (a GAN's generator trains against the discriminator just updated).
        for (const p of phases) {
          const out = p.steps.train(current, runner.state, p.variables);
          n = out.size;
          if (p.prefix === '') values = out.values;
          else for (const [k, v] of Object.entries(out.values)) values[p.prefix + k] = v;
          accumulate(p, out.grads);
          if (stepped) apply(p, pendingCount + 1);
        }
      } finally {
        reader?.release(current);
      }
      current = next;
      seen += n;
      b += 1;
      if (stepped) {
        pendingCount = 0;
        send(act.stepProgress(1));
      } else pendingCount += 1;
      send(act.updateMeters(values, n));
      // A step line (and its metric row) is written at an optimizer-step boundary only: with
      // accumSteps > 1 a line due between two steps waits for the next one, so no two rows share
      // a step (the first batch of an epoch would repeat the previous epoch's last step).
      logDue ||= b % logEvery === 0 || isLast;
      if (stepped && hooks.stepEnd.length > 0) {
        const context = {
          runner,
          epoch,
          endTraining,
          batch: b,
          batches,
          values,
          logDue,
          last: isLast,
        };
        logDue = false;
        const p = call(hooks.stepEnd, context);
        if (p !== undefined) await p;
      } else if (stepped) logDue = false;
      if (isLast) passDone = true;
      // Step boundaries inside the epoch: a graceful stop, a periodic mid-epoch checkpoint.
      if (stepped && !isLast) {
        await turn();
        if (runner.stopSignal() !== null) {
          if (current !== undefined) reader?.release(current);
          reader?.close();
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
        if (evalSteps !== undefined && runner.state.progress.step % evalSteps === 0) {
          const ended = await evaluateInside(epoch);
          if (ended !== undefined) {
            if (current !== undefined) reader?.release(current);
            reader?.close();
            return ended;
          }
        }
      }
    }
    applyPending();
    if (reader !== undefined && passDone && seen === done && trainSource.kind === 'stream') {
      return failed('trainTfjs', {
        message: `splits.${trainName} gave no batches in epoch ${epoch}${trainSource.repeatable === 'unknown' ? ' (an iterator or generator is used up after one pass: give { batches: (pass) => ... } making a new one each pass)' : ''}`,
      });
    }
    // A stream's size, once a whole pass has counted it (progress, the schedules' run length).
    if (trainSource.kind === 'stream' && passDone && reader !== undefined) {
      registerSource(runner, trainName, trainSource, batchSize, seen);
    }
    if (rng !== null) send(act.setRng(rng));
    // The end of this epoch's training: what a stop during evaluation saves (the weights do not
    // change while evaluating), so that a resume evaluates again and appends the same result.
    const trainedState = runner.state;
    if (runner.stopSignal() !== null) return interrupt(trainedState, true);
    const result: Record<string, Record<string, number>> = {
      [trainName]: { ...getResult(runner.state, 'epoch') },
    };
    // Every epoch, or every evalInterval-th and the last (the result has only the training
    // split in between, and no score).
    const lastEpoch =
      (epochEnd !== undefined && epoch + 1 >= epochEnd) ||
      (stepEnd !== undefined && runner.state.progress.step >= stepEnd);
    const evalNow = evalInterval === undefined || (epoch + 1) % evalInterval === 0 || lastEpoch;
    for (const [split, source] of evalNow ? evaluated : []) {
      const values = await evaluate(split, source, epoch);
      if (values === undefined) return interrupt(trainedState, true);
      result[split] = values;
      if (hooks.evaluationEnd.length > 0) {
        const p = call(hooks.evaluationEnd, { runner, epoch, endTraining, split, result: values });
        if (p !== undefined) await p;
      }
    }
    send(act.appendResult(result, epoch));
    // The result files and epoch line, the task's hooks, the checkpoint, early stopping.
    if (hooks.epochEnd.length > 0) {
      const p = call(hooks.epochEnd, { runner, epoch, endTraining, result });
      if (p !== undefined) await p;
    }
    if (ended !== undefined) {
      reason = ended;
      break;
    }
  }
  if (hooks.trainEnd.length > 0) {
    const p = call(hooks.trainEnd, {
      runner,
      epoch: runner.state.progress.epoch,
      endTraining,
      reason,
    });
    if (p !== undefined) await p;
  }
  const done = await flushed();
  if (E.isLeft(done)) return done;
  const settled = await runner.settle();
  if (E.isLeft(settled)) return failed('saveCheckpoint', settled.left);
  if (task.restoreBest === true) {
    const restored = await restoreBestWeights(runner, tf, model, task.save !== false);
    if (E.isLeft(restored)) return restored;
    if (restored.right !== undefined) {
      return E.right({ state: runner.state, reason, restoredFrom: restored.right });
    }
  }
  return E.right({ state: runner.state, reason });
};

export {
  firstEpoch,
  type SplitData,
  type TensorsSplit,
  type SplitInput,
  type Batch,
  type BatchSource,
  type BatchStream,
  type Pass,
  type Tensors,
  type StepFn,
  type StepPhase,
  type StepOutput,
  type StepContext,
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
