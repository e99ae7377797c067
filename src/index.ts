/**
 * danling: the DanLing experiment runner for TypeScript.
 *
 * @packageDocumentation
 */
export { isJson, isPlainObject, deepFreeze, setOwn } from './state/Json.js';
export type { Json, JsonArray, JsonObject, JsonPrimitive } from './state/Json.js';
export {
  KNOWN_KEYS,
  CONFIG_DEFAULTS,
  configName,
  configId,
  NonNegativeInt,
  PositiveInt,
  Int,
  PositiveNumber,
  NonEmptyString,
  Bool,
  JsonValue,
} from './state/config/Config.js';
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
  editDistance,
  camelCase,
  suggestKey,
  deriveRunId,
  canonicalJson,
  describeValue,
  configError,
  formatProblems,
  BOOKKEEPING_KEYS,
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
export { readConfigFile } from './effects/storage/configFile.js';
export type { ConfigFileError } from './effects/storage/configFile.js';
export { uuid5, sha1, experimentNamespace } from './state/config/uuid.js';
export { seedRng, drawRaw, permutation } from './state/runner/rng.js';
export type { RngState } from './state/runner/rng.js';
export { getIn, setIn, mergeDeep, splitPath } from './state/config/merge.js';
export type { MergeOptions } from './state/config/merge.js';
// --- core (issue 3): the runner state, reducers, selectors ---
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
export { encodeMetric, decodeMetric, encodeResult, decodeResult } from './state/runner/metric.js';
export type { MetricValue, ResultInput } from './state/runner/metric.js';
export {
  IGNORED_SPLITS,
  resolveScoreSplit,
  scoreOf,
  scoreModeOf,
  computeBest,
  inferScoreMode,
  MINIMISED_METRICS,
  persistResults,
  restoreResults,
} from './state/runner/results.js';
export type { ScoreMode } from './state/runner/results.js';
export { configDiff, formatConfigDiff } from './state/config/configDiff.js';
export type { ConfigChange } from './state/config/configDiff.js';
export {
  emptyVec,
  push as vecPush,
  get as vecGet,
  set as vecSet,
  toArray as vecToArray,
  fromArray as vecFromArray,
} from './state/runner/vector.js';
export type { Vec, IntMap } from './state/runner/vector.js';
export {
  RunnerStateError,
  config,
  timestamp,
  name,
  id,
  uuid,
  mode,
  split,
  epoch,
  step,
  iter,
  batchSize,
  batchSizeEquivalent,
  accumSteps,
  totalEpochs,
  totalSteps,
  trainableSteps,
  progress,
  worldSize,
  rank,
  localRank,
  distributed,
  isMainProcess,
  isLocalMainProcess,
  results,
  latestResult,
  resultCount,
  scoreMode,
  bestFn,
  scoreSplit,
  scoreName,
  scores,
  bestIndex,
  bestResult,
  latestScore,
  bestScore,
  isBest,
  isFinished,
  nextEpoch,
  lastImprovementIndex,
  patienceExhausted,
  meters,
  getResult,
  dir,
  checkpointDir,
  logPath,
  checkpointDirName,
  stateDict,
  dict,
} from './state/runner/selectors.js';
export type { IndexedResult } from './state/runner/selectors.js';
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
  setRng,
  setTimestamp,
  restore,
} from './reducers/reducers.js';
export type { ResultRecord, RestoreOptions } from './reducers/reducers.js';
export { scaleLr } from './reducers/scaleLr.js';
export type { ScaleLrError, ScaledLr } from './reducers/scaleLr.js';
export { actions, reduce, replay, decodeAction, definitions } from './reducers/actions.js';
export type { Action, ActionType, ActionOf, ActionInvalid } from './reducers/actions.js';
// --- files (issue 4) ---
export {
  nodeFs,
  fsError,
  tryFs,
  writeFileAtomic,
  writeFileAtomicWith,
  writeJsonAtomic,
  linkOrCopyAtomic,
  cleanupTemp,
  tempPathFor,
  isTempName,
  isPidAlive,
} from './effects/storage/atomic.js';
export type {
  FileSystem,
  FileHandleLike,
  FsError,
  FsErrorTag,
  FileData,
  WriteOptions,
} from './effects/storage/atomic.js';
export {
  DTYPE_SIZE,
  MAX_HEADER_BYTES,
  isDtype,
  encodeSafetensors,
  encodeSafetensorsParts,
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
export { planCheckpoint } from './state/runner/checkpointPlan.js';
export type { CheckpointPlan, CheckpointPlanInput } from './state/runner/checkpointPlan.js';
export {
  CHECKPOINT_SCHEMA,
  peekCheckpointProgress,
  CHECKPOINT_FORMAT,
  encodeCheckpoint,
  decodeCheckpoint,
  saveCheckpointFile,
  loadCheckpointFile,
  collectStateDicts,
  comparePart,
  checkParts,
  restoreParts,
} from './effects/checkpoint/checkpointFile.js';
export type {
  StateDict,
  Stateful,
  CheckpointPayload,
  LoadedCheckpoint,
  EncodedCheckpoint,
  CheckpointError,
  CheckpointNotFound,
  CheckpointTruncated,
  CheckpointChecksumMismatch,
  CheckpointCorrupt,
  NotACheckpoint,
  CheckpointSchemaTooNew,
  CheckpointPartMismatch,
  PartProblem,
  PartStateFailed,
  CheckpointFileOptions,
  RestorePartsOptions,
} from './effects/checkpoint/checkpointFile.js';
export {
  CHECKPOINT_EXT,
  checkpointPath,
  saveCheckpointFiles,
  listCheckpoints,
  findLatestValid,
  checkDir,
} from './effects/checkpoint/checkpointStore.js';
export type {
  SaveCheckpointOptions,
  SavedCheckpoint,
  CheckpointEntry,
  CheckpointSkipped,
  LatestValid,
  FindLatestValidOptions,
  CheckDirAction,
  CheckDirResult,
  DirNotEmpty,
  InvalidCheckDirAction,
} from './effects/checkpoint/checkpointStore.js';
export { LOCK_NAME, acquireRunLock } from './effects/storage/lock.js';
export type {
  LockHolder,
  LockHeld,
  StaleLockTakenOver,
  RunLock,
  LockOptions,
} from './effects/storage/lock.js';
export { openJsonl, readJsonl, parseJsonl } from './effects/storage/jsonl.js';
export type {
  FsyncPolicy,
  JsonlWriter,
  OpenedJsonl,
  JsonlOptions,
  ReadJsonl,
  JsonlTornLine,
  JsonlCorrupt,
  JsonlInvalidValue,
} from './effects/storage/jsonl.js';
// --- run files (issue 4): the spec's IO members over the runner state ---
export {
  saveCheckpoint,
  loadCheckpoint,
  readCheckpoint,
  resumeState,
  repairAfterResume,
  fromCheckpoint,
  loadPretrained,
  saveResult,
  json,
  yaml,
  fromJson,
  fromYaml,
  save,
  load,
  unwrap,
} from './effects/run/runFiles.js';
export type {
  Parts,
  SaveCheckpointRunOptions,
  LoadCheckpointOptions,
  LoadCheckpointError,
  LoadedRun,
  ReadCheckpoint,
  ReadCheckpointOptions,
  CheckpointNotSpecified,
  CheckpointStateInvalid,
  PretrainedUnavailable,
  RunWriteOptions,
  ConfigFileInvalid,
  LoadFileError,
} from './effects/run/runFiles.js';
export { openHistory, replayLog } from './effects/run/history.js';
export type {
  HistoryLine,
  HistoryOptions,
  HistoryWriter,
  OpenedHistory,
  ReplayTarget,
  HistoryInvalid,
  Replayed,
} from './effects/run/history.js';
// --- TensorFlow.js parts (issue 6) ---
export { modelPart, optimizerPart } from './effects/tfjs/tfjs.js';
export type { TfModule } from './effects/tfjs/tfjs.js';
// --- the runner shell and the tfjs training loop (issue 6) ---
export { createRunner, gitCommit, gitInfo, timeString } from './effects/shell/runner.js';
export type {
  Runner,
  RunnerEnv,
  RunnerStartError,
  RunnerConfigProblem,
  RunDirTaken,
  GitInfo,
} from './effects/shell/runner.js';
export {
  createRunLogger,
  initLogging,
  openRunLog,
  openRunLogFile,
  print,
} from './effects/logging/runLogger.js';
export type {
  RunLoggerOptions,
  InitLoggingOptions,
  RunLogFile,
  RunLogFileOptions,
  RunLogKey,
  SafeStream,
} from './effects/logging/runLogger.js';
export { createProgressBar } from './effects/logging/progress.js';
export type { ProgressBar, ProgressStream } from './effects/logging/progress.js';
export { renderProgress } from './state/runner/progressLine.js';
export type { ProgressView } from './state/runner/progressLine.js';
export { trainTfjs, firstEpoch } from './effects/tfjs/trainTfjs.js';
export type {
  TfjsTask,
  SplitData,
  BatchFn,
  TrainOutcome,
  TrainError,
} from './effects/tfjs/trainTfjs.js';
// --- edges (issue 5): launchers, seeding, metric output ---
export { parallelContext, initDistributed, LAUNCHERS } from './effects/shell/parallel.js';
export type { LauncherError } from './effects/shell/parallel.js';
export {
  seedFor,
  rngFor,
  randomInt,
  randomFloat,
  randomNormal,
  tfSeed,
} from './state/runner/random.js';
export { setSeed, setDeterministic } from './effects/shell/seed.js';
export type { SetSeedOptions, DeterministicReport } from './effects/shell/seed.js';
export { flattenResult } from './state/flatten.js';
export {
  crc32c,
  maskedCrc32c,
  tfRecord,
  encodeEvent,
  openEventWriter,
  tryOpenEventWriter,
  initTensorboard,
} from './effects/logging/tensorboard.js';
export type { EventWriter, EventWriterOptions } from './effects/logging/tensorboard.js';
export {
  openMetricsFiles,
  metricsCsv,
  writeResult,
  writeScore,
} from './effects/logging/metrics.js';
export type { MetricsFiles, MetricsRow, ResultWriters } from './effects/logging/metrics.js';
