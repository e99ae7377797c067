/**
 * The checkpoint's data types and its tagged errors: what a part saves (`StateDict`, `Stateful`),
 * what a checkpoint holds (`CheckpointPayload`, `LoadedCheckpoint`) and why one cannot be used
 * (`CheckpointError`). Types only: the codec and file IO are in `checkpointFile.ts`.
 */
import type { Json } from '../../state/Json.js';
import type { TensorMap } from '../../state/formats/safetensors.js';
import type { FsError } from '../storage/atomic.js';

/** The state of one stateful part (model, optimizer, scheduler): tensors and JSON. */
export interface StateDict {
  /** Tensors by name (names may contain `/` and `.`). */
  readonly tensors?: TensorMap;
  /** Everything else, as JSON (hyper-parameters, step counters, ...). */
  readonly json?: Json;
}

/**
 * Something whose state is saved in a checkpoint next to the runner state: a model, an optimizer,
 * a scheduler. `stateDict` gives its state; `loadStateDict` takes one back.
 */
export interface Stateful {
  stateDict(): StateDict | Promise<StateDict>;
  loadStateDict(stateDict: StateDict): void | Promise<void>;
  /**
   * Optional: the problems a saved state dict would have if loaded (one message each), for parts
   * whose current state dict cannot serve as the template, e.g. an optimizer whose slots are
   * created lazily on its first step. Without it, the saved tensors must match the current
   * state dict's names, shapes and dtypes exactly.
   */
  checkStateDict?(stateDict: StateDict): readonly string[];
}

/** What a checkpoint holds: the runner state (opaque JSON here) and the parts' state dicts. */
export interface CheckpointPayload {
  readonly state: Json;
  readonly parts: Readonly<Record<string, StateDict>>;
}

/** A checkpoint read back and verified. */
export interface LoadedCheckpoint extends CheckpointPayload {
  readonly path: string;
  readonly schema: number;
  /** File size in bytes. */
  readonly bytes: number;
}

/** The checkpoint file does not exist. */
export interface CheckpointNotFound {
  readonly _tag: 'CheckpointNotFound';
  readonly path: string;
  readonly message: string;
}

/** The file is shorter than its header says (a partial write or a cut copy). */
export interface CheckpointTruncated {
  readonly _tag: 'CheckpointTruncated';
  readonly path: string;
  readonly expectedBytes: number;
  readonly actualBytes: number;
  readonly message: string;
}

/** The bytes do not match the checksum stored in the file. */
export interface CheckpointChecksumMismatch {
  readonly _tag: 'CheckpointChecksumMismatch';
  readonly path: string;
  readonly expected: string;
  readonly actual: string;
  readonly message: string;
}

/** The file is damaged or malformed: bad header JSON, bad offsets, bad state JSON, ... */
export interface CheckpointCorrupt {
  readonly _tag: 'CheckpointCorrupt';
  readonly path: string;
  /** Which part of the file: `header`, `danling.state`, `danling.parts`, a tensor name, ... */
  readonly field: string;
  readonly message: string;
}

/** A valid safetensors file that is not a danling checkpoint (no `danling.format`). */
export interface FileNotACheckpoint {
  readonly _tag: 'FileNotACheckpoint';
  readonly path: string;
  readonly message: string;
}

/**
 * A checkpoint over a limit of the format or of this runtime: refused at save time (never written
 * when it could not be read back), or at load time for a file written by an older danling.
 */
export interface CheckpointTooLarge {
  readonly _tag: 'CheckpointTooLarge';
  readonly path: string;
  /** What is over the limit: `header`, `danling.state`. */
  readonly field: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** The limit in bytes. */
  readonly limit: number;
  readonly message: string;
}

/** The checkpoint path is not a regular file (a FIFO, a device, a socket, a folder). */
export interface CheckpointNotAFile {
  readonly _tag: 'CheckpointNotAFile';
  readonly path: string;
  readonly message: string;
}

/** The checkpoint was written by a newer danling. */
export interface CheckpointSchemaTooNew {
  readonly _tag: 'CheckpointSchemaTooNew';
  readonly path: string;
  readonly schema: number;
  readonly supported: number;
  readonly message: string;
}

/** One difference between a part and the checkpoint's tensors for it. */
export interface PartProblem {
  /** `<part>/<tensor>`. */
  readonly tensor: string;
  readonly problem: 'shape' | 'dtype' | 'missing' | 'unexpected';
  readonly message: string;
}

/** A part's tensors do not match the checkpoint (every difference is listed). */
export interface CheckpointPartMismatch {
  readonly _tag: 'CheckpointPartMismatch';
  readonly path: string;
  readonly part: string;
  readonly problems: readonly PartProblem[];
  readonly message: string;
}

/** A part's `stateDict` / `loadStateDict` threw, or gave something that cannot be saved. */
export interface PartStateFailed {
  readonly _tag: 'PartStateFailed';
  readonly path: string;
  readonly part: string;
  readonly message: string;
}

/** The one constructor of {@link PartStateFailed}: `cannot <what>`, naming the file and part. */
export const partStateFailed = (path: string, part: string, what: string): PartStateFailed => ({
  _tag: 'PartStateFailed',
  path,
  part,
  message: `cannot ${what}`,
});

/** A part's method threw: `cannot save|load <file>: <part>.<method>() threw: <cause>`. */
export const partThrew = (
  verb: 'save' | 'load',
  path: string,
  part: string,
  method: 'stateDict' | 'loadStateDict',
  cause: unknown,
): PartStateFailed =>
  partStateFailed(
    path,
    part,
    `${verb} ${path}: ${part}.${method}() threw: ${cause instanceof Error ? cause.message : String(cause)}`,
  );

/** Everything that can go wrong saving or loading a checkpoint. */
export type CheckpointError =
  | FsError
  | CheckpointNotFound
  | CheckpointTruncated
  | CheckpointChecksumMismatch
  | CheckpointCorrupt
  | FileNotACheckpoint
  | CheckpointSchemaTooNew
  | CheckpointTooLarge
  | CheckpointNotAFile
  | CheckpointPartMismatch
  | PartStateFailed;
