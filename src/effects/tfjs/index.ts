/**
 * `danling/tfjs`: the TensorFlow.js adapters (a model and an optimizer as checkpoint parts) and
 * the training loop. Needs the optional peer dependency `@tensorflow/tfjs` (>= 4), which the
 * caller passes in (`modelPart(tf, model)`): this module imports no backend itself.
 *
 * @packageDocumentation
 */
export { modelPart, optimizerPart } from './tfjs.js';
export type { TfModule, ModelPart, OptimizerPart } from './tfjs.js';
export {
  trainTfjs,
  firstEpoch,
  evaluate,
  predict,
  clipGradients,
  optimizerLr,
  setOptimizerLr,
} from './trainTfjs.js';
// Epoch metrics over tensors (the pure array versions are `epochMetrics` in 'danling').
export { r2Score, auc, f1Macro, accuracy } from './epochMetrics.js';
export type { EpochMetricFn } from './epochMetrics.js';
export type {
  TfjsTask,
  SplitData,
  TensorsSplit,
  SplitInput,
  Batch,
  BatchSource,
  BatchStream,
  Pass,
  Tensors,
  StepFn,
  StepPhase,
  StepOutput,
  StepContext,
  BatchFn,
  TrainOutcome,
  TrainError,
  TfjsHooks,
  Hook,
  HookContext,
  HookResult,
  EvaluationInterrupted,
} from './trainTfjs.js';
export type { BuiltinHooks } from './builtins.js';
