/**
 * `danling/effects`: everything that touches the outside world. Files (atomic writes, the run
 * lock, JSON Lines), checkpoints (the safetensors checkpoint file and folder), the run files over
 * the runner state (the spec's IO members), the action log, logging (run.log, the progress bar,
 * metric files, TensorBoard), seeding and launchers, and the runner shell (`createRunner`).
 *
 * One shape for every effect: an asynchronous one returns `Promise<Either<E, A>>` when called,
 * a synchronous one `Either<E, A>`; `E` is a tagged error value whose `message` names the file,
 * the field and the fix. Nothing here throws on bad input.
 *
 * The pure core is the root entry point, `danling`; the TensorFlow.js adapters are in
 * `danling/tfjs`.
 *
 * @packageDocumentation
 */

// --- storage: atomic files, the run lock, JSON Lines, config files ---
export {
  nodeFs,
  syncFs,
  writeFileAtomic,
  writeJsonAtomic,
  linkOrCopyAtomic,
  cleanupTemp,
  durableGroup,
} from './storage/atomic.js';
export type {
  DurableGroup,
  FileSystem,
  FileHandleLike,
  FsError,
  FsErrorTag,
  FileData,
  WriteOptions,
} from './storage/atomic.js';
export {
  LOCK_NAME,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_LEASE_MS,
  acquireRunLock,
} from './storage/lock.js';
export type {
  LockHolder,
  LockHeld,
  LockUnreadable,
  LockError,
  StaleLockTakenOver,
  RunLock,
  LockOptions,
} from './storage/lock.js';
export { openJsonl, readJsonl } from './storage/jsonl.js';
export type {
  FsyncPolicy,
  JsonlWriter,
  OpenedJsonl,
  JsonlOptions,
  ReadJsonl,
  JsonlTornLine,
  JsonlCorrupt,
  JsonlInvalidValue,
} from './storage/jsonl.js';
export { readConfigFile, readConfigArgs } from './storage/configFile.js';
export type { ConfigFileError } from './storage/configFile.js';

// --- checkpoints: the file and the folder ---
export {
  CHECKPOINT_SCHEMA,
  CHECKPOINT_FORMAT,
  STATE_IN_HEADER_BYTES,
  saveCheckpointFile,
  loadCheckpointFile,
  peekCheckpointProgress,
} from './checkpoint/checkpointFile.js';
export { ownedCopy } from './checkpoint/checkpointParts.js';
export { saveThreadUnavailable } from './run/saveThread.js';
export type {
  StateDict,
  Stateful,
  CheckpointPayload,
  LoadedCheckpoint,
  CheckpointError,
  CheckpointNotFound,
  CheckpointTruncated,
  CheckpointChecksumMismatch,
  CheckpointCorrupt,
  FileNotACheckpoint,
  CheckpointSchemaTooNew,
  CheckpointTooLarge,
  CheckpointNotAFile,
  CheckpointPartMismatch,
  PartProblem,
  PartStateFailed,
  CheckpointFileOptions,
  RestorePartsOptions,
} from './checkpoint/checkpointFile.js';
export {
  CHECKPOINT_EXT,
  checkpointPath,
  saveCheckpointFiles,
  pruneCheckpoints,
  listCheckpoints,
  findLatestValid,
  checkDir,
} from './checkpoint/checkpointStore.js';
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
  CheckDirActionInvalid,
} from './checkpoint/checkpointStore.js';

// --- run files: the spec's IO members over the runner state ---
export {
  saveCheckpoint,
  loadCheckpoint,
  readCheckpoint,
  resumeState,
  fromCheckpoint,
  loadPretrained,
  saveResult,
  appendResults,
  readResults,
  RESULTS_JOURNAL,
} from './run/runFiles.js';
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
  ReadResults,
  ResultsCorrupt,
  ResultsJournal,
  ConfigFileInvalid,
  LoadFileError,
} from './run/runFiles.js';
/**
 * The spec's generic file members, grouped: `io.json(state, file)`, `io.yaml`, `io.fromJson`,
 * `io.fromYaml`, `io.save(obj, file)`, `io.load(file)`.
 */
export * as io from './run/specIo.js';
export { openHistory, replayLog } from './run/history.js';
export type {
  HistoryLine,
  HistoryOptions,
  HistoryWriter,
  OpenedHistory,
  ReplayTarget,
  HistoryInvalid,
  Replayed,
} from './run/history.js';

// --- logging: run.log, the progress bar, metric files, TensorBoard ---
export { createRunLogger, initLogging, openRunLog, print } from './logging/runLogger.js';
export type {
  RunLoggerOptions,
  InitLoggingOptions,
  RunLogFile,
  RunLogFileOptions,
  RunLogKey,
  SafeStream,
} from './logging/runLogger.js';
export { createProgressBar } from './logging/progress.js';
export type { ProgressBar, ProgressStream } from './logging/progress.js';
export { openEventWriter, initTensorboard } from './logging/tensorboard.js';
export type { EventWriter, EventWriterOptions } from './logging/tensorboard.js';
export { openMetricsFiles, writeResult, writeScore } from './logging/metrics.js';
export type { MetricsFiles, MetricsRow, ResultWriters } from './logging/metrics.js';

// --- the shell: launchers, seeding, the runner ---
export { parallelContext, initDistributed, LAUNCHERS } from './shell/parallel.js';
export type { LauncherError } from './shell/parallel.js';
export { setSeed, setDeterministic } from './shell/seed.js';
export type { SetSeedOptions, DeterministicReport } from './shell/seed.js';
export { createRunner } from './shell/runner.js';
export type {
  Runner,
  RunnerEnv,
  RunnerStartError,
  RunnerConfigProblem,
  RunDirTaken,
  GitInfo,
} from './shell/runner.js';
