/**
 * One checkpoint = one safetensors file. Tensors are named `<part>/<name>` (so a model's weights
 * open in Python's `safetensors` as they are); the `__metadata__` map holds the danling payload:
 *
 * | key                | value                                                            |
 * | ------------------ | ---------------------------------------------------------------- |
 * | `danling.format`   | `danling-checkpoint`                                             |
 * | `danling.schema`   | the schema version: `1`, or `2` when the state is a tensor       |
 * | `danling.state`    | the runner state as JSON (schema 1)                              |
 * | `danling.progress` | `{ epoch, step }` of the state as JSON (schema 2)                |
 * | `danling.parts`    | `{ part: { json, tensors: [name, ...] } }` as JSON               |
 * | `danling.checksum` | `crc32:xxxxxxxx`: CRC-32 of the whole file with these 8 hex digits read as `00000000` |
 *
 * A runner state over {@link STATE_IN_HEADER_BYTES} (a long results history) does not live in the
 * header (safetensors readers refuse headers over 100 MB): it is the U8 tensor `danling.state`
 * (its UTF-8 JSON; no part tensor can have that name, theirs all contain a `/`) and the file has
 * schema 2. A header that would still be over {@link MAX_HEADER_BYTES} is refused at save time
 * (`CheckpointTooLarge`): nothing is written that cannot be read back.
 *
 * Loading reads the header first and checks every size in it against the file's size before any
 * data is read; each tensor is then read into its own buffer (so files over Node's 4 GiB Buffer
 * limit load), and the checksum is verified before the schema version is believed.
 *
 * The file is written with {@link writeFileAtomic}, so it is either complete and verifiable or
 * not there at all.
 */
import * as E from 'fp-ts/lib/Either.js';
import { isJson, type Json } from '../../state/Json.js';
import {
  MAX_HEADER_BYTES,
  encodeSafetensorsParts,
  setOwn,
  type Tensor,
} from '../../state/formats/safetensors.js';
import { writeAt, writeFileAtomicWith, type FileHandleLike } from '../storage/atomic.js';
import type { CheckpointError, CheckpointPayload } from './checkpointTypes.js';
import { partStateFailed } from './checkpointTypes.js';
import {
  STATE_IN_HEADER_BYTES,
  STATE_TENSOR,
  CHECKPOINT_FORMAT,
  corrupt,
  crc32,
  CHECKSUM_KEY,
  CHECKSUM_PLACEHOLDER,
  MARKER,
  indexOfBytes,
  hex8,
  tooLarge,
  PIECE,
  type CheckpointFileOptions,
} from './checkpointFormat.js';

export type {
  StateDict,
  Stateful,
  CheckpointPayload,
  LoadedCheckpoint,
  CheckpointNotFound,
  CheckpointTruncated,
  CheckpointChecksumMismatch,
  CheckpointCorrupt,
  FileNotACheckpoint,
  CheckpointSchemaTooNew,
  CheckpointTooLarge,
  CheckpointNotAFile,
  PartProblem,
  CheckpointPartMismatch,
  PartStateFailed,
  CheckpointError,
} from './checkpointTypes.js';
export {
  collectStateDicts,
  comparePart,
  checkParts,
  restoreParts,
  type RestorePartsOptions,
} from './checkpointParts.js';

// ---------------------------------------------------------------- encode

const PART_NAME_RE = /^[^/]+$/;

/** The bytes of a checkpoint file, as a header and the tensors' buffers (no copy of tensor data). */
export interface EncodedCheckpoint {
  readonly chunks: readonly Uint8Array[];
  readonly byteLength: number;
  /** `crc32:xxxxxxxx`. */
  readonly checksum: string;
}

interface PreparedCheckpoint {
  /** The header with `crc32:00000000` as its checksum. */
  readonly header: Uint8Array;
  readonly chunks: readonly Uint8Array[];
  readonly byteLength: number;
  /** Where the 8 checksum hex digits start in the header. */
  readonly at: number;
}

/** `{ epoch, step }` of a state's `progress`, for {@link peekCheckpointProgress}. */
const progressOf = (state: Json): Json => {
  const progress =
    typeof state === 'object' && state !== null && !Array.isArray(state)
      ? (state as Record<string, Json>).progress
      : undefined;
  if (typeof progress !== 'object' || progress === null || Array.isArray(progress)) return null;
  const { epoch, step } = progress as Record<string, Json>;
  return { epoch: epoch ?? null, step: step ?? null };
};

const prepareCheckpoint = (
  payload: CheckpointPayload,
  path: string,
): E.Either<CheckpointError, PreparedCheckpoint> => {
  if (!isJson(payload.state))
    return E.left(corrupt(path, 'danling.state', 'the runner state is not JSON data'));
  const tensors: Record<string, Tensor> = {};
  const parts: Record<string, { json: Json; tensors: string[] }> = {};
  for (const [part, sd] of Object.entries(payload.parts)) {
    if (!PART_NAME_RE.test(part))
      return E.left(
        partStateFailed(
          path,
          part,
          `save part ${JSON.stringify(part)} to ${path}: a part name must be non-empty and contain no "/"`,
        ),
      );
    const json = sd.json ?? null;
    if (!isJson(json))
      return E.left(
        partStateFailed(
          path,
          part,
          `save part ${part} to ${path}: its stateDict().json is not JSON data (NaN, Infinity, -0, a class instance or a function)`,
        ),
      );
    const own = sd.tensors ?? {};
    const names = Object.keys(own);
    // Own properties, so that a part or tensor named `__proto__` is kept like any other name.
    for (const name of names) setOwn(tensors, `${part}/${name}`, own[name] as Tensor);
    setOwn(parts, part, { json, tensors: names });
  }
  let stateText: string;
  let partsText: string;
  try {
    stateText = JSON.stringify(payload.state);
    partsText = JSON.stringify(parts);
  } catch (cause) {
    // V8 strings hold at most 2^29 - 24 UTF-16 units (about 512 MiB).
    return E.left(
      tooLarge(
        path,
        'danling.state',
        -1,
        2 ** 29 - 24,
        `cannot save ${path}: the runner state or the parts' stateDict().json is too large to serialise as one JavaScript string (${cause instanceof Error ? cause.message : String(cause)}); keep large data in tensors, and fewer results in the state`,
      ),
    );
  }
  const stateBytes = Buffer.byteLength(stateText, 'utf8');
  const inHeader = stateBytes <= STATE_IN_HEADER_BYTES;
  if (!inHeader)
    setOwn(tensors, STATE_TENSOR, {
      dtype: 'U8',
      shape: [stateBytes],
      data: new Uint8Array(Buffer.from(stateText, 'utf8')),
    });
  const metadata: Record<string, string> = {
    'danling.format': CHECKPOINT_FORMAT,
    'danling.schema': inHeader ? '1' : '2',
    ...(inHeader
      ? { 'danling.state': stateText }
      : { 'danling.progress': JSON.stringify(progressOf(payload.state)) }),
    'danling.parts': partsText,
    [CHECKSUM_KEY]: CHECKSUM_PLACEHOLDER,
  };
  const encoded = encodeSafetensorsParts(tensors, metadata);
  if (E.isLeft(encoded)) {
    const e = encoded.left;
    const slash = e.tensor?.indexOf('/') ?? -1;
    return E.left(
      partStateFailed(
        path,
        e.tensor !== undefined && slash > 0 ? e.tensor.slice(0, slash) : '',
        `save ${path}: ${e.message}`,
      ),
    );
  }
  const { header, chunks, byteLength } = encoded.right;
  const headerLength = header.byteLength - 8;
  if (headerLength > MAX_HEADER_BYTES)
    return E.left(
      tooLarge(
        path,
        'header',
        headerLength,
        MAX_HEADER_BYTES,
        `cannot save ${path}: its header would be ${headerLength} bytes, over the ${MAX_HEADER_BYTES}-byte limit of safetensors headers (the parts' stateDict().json is ${Buffer.byteLength(partsText, 'utf8')} bytes); keep large data in tensors, not in stateDict().json`,
      ),
    );
  const at = indexOfBytes(header, MARKER) + MARKER.byteLength;
  return E.right({ header, chunks, byteLength, at });
};

/**
 * Encodes a checkpoint payload as a safetensors file with the danling metadata and its checksum.
 * `path` is only used in error messages.
 */
export const encodeCheckpoint = (
  payload: CheckpointPayload,
  path = '<checkpoint>',
): E.Either<CheckpointError, EncodedCheckpoint> => {
  const prepared = prepareCheckpoint(payload, path);
  if (E.isLeft(prepared)) return prepared;
  const { header, chunks, byteLength, at } = prepared.right;
  let c = crc32(header);
  for (const chunk of chunks) c = crc32(chunk, c);
  const checksum = hex8(c);
  header.set(new TextEncoder().encode(checksum), at);
  return E.right({ chunks: [header, ...chunks], byteLength, checksum: `crc32:${checksum}` });
};

/**
 * Writes a prepared checkpoint: tensor data first, then the header with the final checksum at
 * position 0. Each piece's write is started (handed to the thread pool) before its checksum is
 * computed on the main thread, and awaited before the next piece starts: exactly one write is in
 * flight and every write promise is awaited, so a failed write (a full disk) rejects this call
 * and nothing else. (The earlier version chained the next write on the previous one and left it
 * unawaited when the previous one failed: an unhandled rejection.)
 */
const writePrepared = async (handle: FileHandleLike, p: PreparedCheckpoint): Promise<void> => {
  let c = crc32(p.header);
  let position = p.header.byteLength;
  // Small tensors (an Iris model's, Adam's slots) go out together, one write per PIECE bytes:
  // each write is a round trip through the thread pool, which a busy training loop serves one
  // per batch (issue 13: 16 writes per Iris save before, 2 now).
  let batch: Uint8Array[] = [];
  let batched = 0;
  const flush = async (): Promise<void> => {
    if (batched === 0) return;
    const bytes = batch.length === 1 ? (batch[0] ?? new Uint8Array(0)) : Buffer.concat(batch);
    batch = [];
    const at = position;
    position += batched;
    batched = 0;
    await writeAt(handle, bytes, at);
  };
  for (const chunk of p.chunks) {
    for (let from = 0; from < chunk.byteLength; from += PIECE) {
      const piece = chunk.subarray(from, Math.min(chunk.byteLength, from + PIECE));
      if (batched + piece.byteLength > PIECE) await flush();
      if (piece.byteLength < PIECE) {
        c = crc32(piece, c);
        batch.push(piece);
        batched += piece.byteLength;
        continue;
      }
      const writing = writeAt(handle, piece, position);
      try {
        c = crc32(piece, c);
      } finally {
        await writing;
      }
      position += piece.byteLength;
    }
  }
  await flush();
  const header = p.header.slice();
  header.set(new TextEncoder().encode(hex8(c)), p.at);
  await writeAt(handle, header, 0);
};

/**
 * Saves one checkpoint file atomically and durably (temporary file, fsync, rename, fsync of the
 * folder). On failure the previous file at `path` is intact and the temporary file is removed; a
 * full disk is a `DiskFull` naming `path` (never a throw or an unhandled rejection). Resolves to
 * the path.
 */
export const saveCheckpointFile = async (
  path: string,
  payload: CheckpointPayload,
  options: CheckpointFileOptions = {},
): Promise<E.Either<CheckpointError, string>> => {
  const prepared = prepareCheckpoint(payload, path);
  if (E.isLeft(prepared)) return prepared;
  return writeFileAtomicWith(path, (handle) => writePrepared(handle, prepared.right), options);
};

export {
  CHECKPOINT_SCHEMA,
  CHECKPOINT_FORMAT,
  STATE_IN_HEADER_BYTES,
  type CheckpointFileOptions,
} from './checkpointFormat.js';
export {
  decodeCheckpoint,
  loadCheckpointFile,
  peekCheckpointProgress,
  type CheckpointProgress,
} from './checkpointRead.js';
