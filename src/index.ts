/**
 * danling: the DanLing experiment runner for TypeScript.
 *
 * The root entry point is the **pure core**: the config, the runner state, its selectors and
 * reducers, the action table and the pure formats. It does no I/O and loads no optional
 * dependency. The effects (files, checkpoints, logging, the runner shell) are in
 * `danling/effects`; the TensorFlow.js adapters and training loop in `danling/tfjs`.
 *
 * The spec's properties that have generic names (`name`, `id`, `mode`, `epoch`, `dir`, ...) are
 * grouped in the {@link select} namespace (`select.epoch(state)`), which holds every selector;
 * the distinctive ones (`bestResult`, `isBest`, ...) are also exported here by name.
 *
 * @packageDocumentation
 */

// --- JSON data ---
export { isJson, isPlainObject, deepFreeze } from './state/Json.js';
export type { Json, JsonArray, JsonObject, JsonPrimitive } from './state/Json.js';

// --- config: decode, text, overrides, merge, diff ---
export { KNOWN_KEYS, CONFIG_DEFAULTS, configName, configId } from './state/config/Config.js';
export type {
  Config,
  KnownConfig,
  KnownKey,
  KeySpec,
  DataloaderConfig,
} from './state/config/Config.js';
export {
  decodeConfig,
  decodeConfigWithWarnings,
  deriveRunId,
} from './state/config/decodeConfig.js';
export type {
  ConfigError,
  ConfigProblem,
  ConfigWarning,
  DecodedConfig,
} from './state/config/decodeConfig.js';
export {
  yamls,
  fromYamls,
  jsons,
  fromJsons,
  parseYaml,
  parseJson,
} from './state/config/configText.js';
export type { ConfigSyntaxError, ConfigTextError } from './state/config/configText.js';
export { parseArgs, parseScalar, applyOverrides } from './state/config/overrides.js';
export type { Override, ParsedArgs, ArgsError } from './state/config/overrides.js';
export { getIn, setIn, mergeDeep } from './state/config/merge.js';
export type { MergeOptions } from './state/config/merge.js';
export { configDiff, formatConfigDiff } from './state/config/configDiff.js';
export type { ConfigChange } from './state/config/configDiff.js';
export { uuid5 } from './state/config/uuid.js';

// --- the runner state ---
export {
  SCHEMA_VERSION,
  RUNNER_MODES,
  ConfigDecodeError,
  createState,
  initialState,
  decodeState,
  persistState,
} from './state/runner/RunnerState.js';
export type {
  RunnerState,
  RunnerMode,
  Progress,
  ResultEntry,
  ResultsHistory,
  BestTracking,
  Meter,
  SplitInfo,
  ParallelContext,
  StateContext,
  StateError,
} from './state/runner/RunnerState.js';
export type { MetricValue, ResultInput } from './state/runner/metric.js';
export { inferScoreMode, MINIMISED_METRICS } from './state/runner/results.js';
export type { ScoreMode } from './state/runner/results.js';

// --- selectors: all of them in `select`, the distinctive ones by name too ---
export * as select from './state/runner/selectors.js';
export {
  RunnerStateError,
  isBest,
  bestIndex,
  bestResult,
  bestScore,
  latestResult,
  latestScore,
  resultCount,
  getResult,
  scores,
  isFinished,
  nextEpoch,
  lastImprovementIndex,
  patienceExhausted,
  totalEpochs,
  totalSteps,
  trainableSteps,
  batchSizeEquivalent,
  isMainProcess,
  isLocalMainProcess,
} from './state/runner/selectors.js';
export type { IndexedResult } from './state/runner/selectors.js';

// --- reducers and the action table ---
export {
  appendResult,
  stepProgress,
  startEpoch,
  setMode,
  setSplit,
  registerSplit,
  tryMergeConfig,
  mergeConfig,
  updateMeters,
  resetMeters,
  setMeters,
  setRng,
  setTimestamp,
  restore,
} from './reducers/reducers.js';
export type { ResultRecord, RestoreOptions } from './reducers/reducers.js';
export { scaleLr } from './reducers/scaleLr.js';
export type { ScaleLrError, ScaledLr } from './reducers/scaleLr.js';
export { actions, reduce, replay, decodeAction, definitions } from './reducers/actions.js';
export type { Action, ActionType, ActionOf, ActionInvalid } from './reducers/actions.js';

// --- learning-rate schedules (pure functions of the state) and epoch metrics over arrays ---
export {
  learningRate,
  scheduledLr,
  plateauReductions,
  scheduleTotalSteps,
  baseLearningRate,
} from './state/runner/schedule.js';
export type { ScheduleInput } from './state/runner/schedule.js';
export type { ScheduleConfig, ScheduleKind } from './state/config/Config.js';
export * as epochMetrics from './state/runner/epochMetrics.js';

// --- randomness in the state (pure-rand) ---
export { seedRng, permutation } from './state/runner/rng.js';
export type { RngState } from './state/runner/rng.js';
export { seedFor, rngFor, randomInt, randomFloat, randomNormal } from './state/runner/random.js';

// --- pure formats: console lines, the checkpoint plan, safetensors ---
export {
  formatValue,
  formatResult,
  formatStepLine,
  formatEpochLine,
  formatStepResult,
  formatEpochResult,
  formatScoreRule,
  formatEarlyStop,
} from './state/runner/format.js';
export { planCheckpoint } from './state/runner/checkpointPlan.js';
export type { CheckpointPlan, CheckpointPlanInput } from './state/runner/checkpointPlan.js';
export {
  encodeSafetensors,
  decodeSafetensors,
  readSafetensorsHeader,
} from './state/formats/safetensors.js';
export type {
  Dtype,
  Tensor,
  TensorData,
  TensorMap,
  SafetensorsFile,
  SafetensorsError,
  SafetensorsProblem,
  SafetensorsHeader,
  EncodedSafetensors,
  DecodeOptions,
} from './state/formats/safetensors.js';
