/**
 * danling: the DanLing experiment runner for TypeScript.
 *
 * @packageDocumentation
 */
export { isJson, isPlainObject, deepFreeze } from './state/Json.js';
export type { Json, JsonArray, JsonObject, JsonPrimitive } from './state/Json.js';
export { KNOWN_KEYS, CONFIG_DEFAULTS } from './state/Config.js';
export type { Config, KnownConfig, KnownKey, KeySpec, DataloaderConfig } from './state/Config.js';
export {
  decodeConfig,
  deriveRunId,
  canonicalJson,
  describeValue,
  configError,
  formatProblems,
  BOOKKEEPING_KEYS,
} from './state/decodeConfig.js';
export type { ConfigError, ConfigProblem } from './state/decodeConfig.js';
export { uuid5, sha1, experimentNamespace } from './state/uuid.js';
export { seedRng, drawRaw } from './state/rng.js';
export type { RngState } from './state/rng.js';
export { getIn, setIn, mergeDeep, splitPath } from './state/merge.js';
export type { MergeOptions } from './state/merge.js';
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
} from './effects/atomic.js';
export type {
  FileSystem,
  FileHandleLike,
  FsError,
  FsErrorTag,
  FileData,
  WriteOptions,
} from './effects/atomic.js';
export {
  DTYPE_SIZE,
  MAX_HEADER_BYTES,
  isDtype,
  encodeSafetensors,
  encodeSafetensorsParts,
  decodeSafetensors,
  readSafetensorsHeader,
} from './state/safetensors.js';
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
} from './state/safetensors.js';
export { planCheckpoint } from './state/checkpointPlan.js';
export type { CheckpointPlan, CheckpointPlanInput } from './state/checkpointPlan.js';
export {
  CHECKPOINT_SCHEMA,
  CHECKPOINT_FORMAT,
  encodeCheckpoint,
  decodeCheckpoint,
  saveCheckpointFile,
  loadCheckpointFile,
  collectStateDicts,
  comparePart,
  checkParts,
  restoreParts,
} from './effects/checkpointFile.js';
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
} from './effects/checkpointFile.js';
export {
  CHECKPOINT_EXT,
  checkpointPath,
  saveCheckpointFiles,
  listCheckpoints,
  findLatestValid,
  checkDir,
} from './effects/checkpointStore.js';
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
} from './effects/checkpointStore.js';
export { LOCK_NAME, acquireRunLock } from './effects/lock.js';
export type {
  LockHolder,
  LockHeld,
  StaleLockTakenOver,
  RunLock,
  LockOptions,
} from './effects/lock.js';
export { openJsonl, readJsonl, parseJsonl } from './effects/jsonl.js';
export type {
  FsyncPolicy,
  JsonlWriter,
  OpenedJsonl,
  JsonlOptions,
  ReadJsonl,
  JsonlTornLine,
  JsonlCorrupt,
  JsonlInvalidValue,
} from './effects/jsonl.js';
