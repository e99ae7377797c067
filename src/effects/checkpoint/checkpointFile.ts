/**
 * One checkpoint = one safetensors file. Tensors are named `<part>/<name>` (so a model's weights
 * open in Python's `safetensors` as they are); the `__metadata__` map holds the danling payload:
 *
 * | key                | value                                                            |
 * | ------------------ | ---------------------------------------------------------------- |
 * | `danling.format`   | `danling-checkpoint`                                             |
 * | `danling.schema`   | the schema version, `1`                                          |
 * | `danling.state`    | the runner state as JSON                                         |
 * | `danling.parts`    | `{ part: { json, tensors: [name, ...] } }` as JSON               |
 * | `danling.checksum` | `crc32:xxxxxxxx`: CRC-32 of the whole file with these 8 hex digits read as `00000000` |
 *
 * The file is written with {@link writeFileAtomic}, so it is either complete and verifiable or
 * not there at all.
 */
import * as zlib from 'node:zlib';
import * as E from 'fp-ts/lib/Either.js';
import { isJson, type Json } from '../../state/Json.js';
import {
  MAX_HEADER_BYTES,
  decodeSafetensors,
  encodeSafetensorsParts,
  readSafetensorsHeader,
  type SafetensorsError,
  type Tensor,
} from '../../state/formats/safetensors.js';
import {
  fsError,
  nodeFs,
  writeAt,
  writeFileAtomicWith,
  type FileHandleLike,
  type FileSystem,
} from '../storage/atomic.js';
import type {
  CheckpointCorrupt,
  CheckpointError,
  CheckpointPayload,
  LoadedCheckpoint,
  StateDict,
} from './checkpointTypes.js';
import { partStateFailed } from './checkpointTypes.js';

/** The checkpoint schema version this danling writes, and the newest it reads. */
export const CHECKPOINT_SCHEMA = 1;

/** The value of `danling.format` in a checkpoint's `__metadata__`. */
export const CHECKPOINT_FORMAT = 'danling-checkpoint';

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

const corrupt = (path: string, field: string, what: string): CheckpointCorrupt => ({
  _tag: 'CheckpointCorrupt',
  path,
  field,
  message: `checkpoint ${path} is corrupt: ${what}`,
});

const fromSafetensors = (path: string, e: SafetensorsError): CheckpointCorrupt =>
  corrupt(path, e.tensor ?? 'header', e.message);

// ---------------------------------------------------------------- checksum

/** CRC-32 (IEEE), the same as `zlib.crc32`; a table-driven fallback for Node < 20.15. */
const crc32: (data: Uint8Array, value?: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (data, value) => zlib.crc32(data, value)
    : (() => {
        const table = new Uint32Array(256);
        for (let n = 0; n < 256; n++) {
          let c = n;
          for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
          table[n] = c >>> 0;
        }
        return (data: Uint8Array, value = 0): number => {
          let c = ~value >>> 0;
          for (const byte of data) c = (table[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
          return ~c >>> 0;
        };
      })();

const CHECKSUM_KEY = 'danling.checksum';
const CHECKSUM_PLACEHOLDER = 'crc32:00000000';
const CHECKSUM_RE = /^crc32:[0-9a-f]{8}$/;
/** The bytes `"danling.checksum":"crc32:` that precede the 8 hex digits in the header. */
const MARKER = new TextEncoder().encode(`${JSON.stringify(CHECKSUM_KEY)}:"crc32:`);
const ZEROS = new TextEncoder().encode('00000000');

const indexOfBytes = (haystack: Uint8Array, needle: Uint8Array, from = 0): number =>
  Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle, from);

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** The CRC-32 of a whole checkpoint file with the 8 checksum digits at `at` read as zeros. */
const fileCrc = (bytes: Uint8Array, at: number): number => {
  let c = crc32(bytes.subarray(0, at));
  c = crc32(ZEROS, c);
  return crc32(bytes.subarray(at + 8), c);
};

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
    const names = Object.keys(sd.tensors ?? {});
    for (const name of names) tensors[`${part}/${name}`] = (sd.tensors ?? {})[name] as Tensor;
    parts[part] = { json, tensors: names };
  }
  const metadata: Record<string, string> = {
    'danling.format': CHECKPOINT_FORMAT,
    'danling.schema': String(CHECKPOINT_SCHEMA),
    'danling.state': JSON.stringify(payload.state),
    'danling.parts': JSON.stringify(parts),
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

/** Bytes per write / read in the overlapped save and load: the checksum of one piece is computed
 * on the main thread while the next piece is written or read by the thread pool. */
const PIECE = 8 << 20;

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
  for (const chunk of p.chunks) {
    for (let from = 0; from < chunk.byteLength; from += PIECE) {
      const piece = chunk.subarray(from, Math.min(chunk.byteLength, from + PIECE));
      const writing = writeAt(handle, piece, position);
      try {
        c = crc32(piece, c);
      } finally {
        await writing;
      }
      position += piece.byteLength;
    }
  }
  const header = p.header.slice();
  header.set(new TextEncoder().encode(hex8(c)), p.at);
  await writeAt(handle, header, 0);
};

/** Options of the checkpoint file effects. */
export interface CheckpointFileOptions {
  /** The file system; the real one when left out. */
  readonly fs?: FileSystem;
  /** fsync file and folder on save (default `true`). */
  readonly fsync?: boolean;
}

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

// ---------------------------------------------------------------- decode

interface PartEntry {
  readonly json: Json;
  readonly tensors: readonly string[];
}

const parseJsonField = (
  path: string,
  field: string,
  text: string,
): E.Either<CheckpointError, Json> => {
  try {
    const value: unknown = JSON.parse(text);
    return isJson(value)
      ? E.right(value)
      : E.left(corrupt(path, field, `${field} is not JSON data`));
  } catch (cause) {
    return E.left(
      corrupt(
        path,
        field,
        `${field} is not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`,
      ),
    );
  }
};

const maxDataEnd = (header: Readonly<Record<string, unknown>>): number => {
  let end = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__' || typeof entry !== 'object' || entry === null) continue;
    const offsets = (entry as { data_offsets?: unknown }).data_offsets;
    if (
      Array.isArray(offsets) &&
      typeof offsets[1] === 'number' &&
      Number.isSafeInteger(offsets[1])
    )
      end = Math.max(end, offsets[1]);
  }
  return end;
};

/**
 * Decodes and fully verifies checkpoint bytes: header, format, schema version, length (truncation),
 * checksum, safetensors layout, the state and parts JSON. `path` is used in error messages.
 */
export const decodeCheckpoint = (
  bytes: Uint8Array,
  path: string,
  precomputed?: { readonly at: number; readonly crc: number },
): E.Either<CheckpointError, LoadedCheckpoint> => {
  const size = bytes.byteLength;
  if (size >= 8) {
    const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    if (n > BigInt(size - 8) && n <= 100_000_000n)
      return E.left({
        _tag: 'CheckpointTruncated',
        path,
        expectedBytes: 8 + Number(n),
        actualBytes: size,
        message: `checkpoint ${path} is truncated: its header alone needs ${8 + Number(n)} bytes but the file has ${size}; use an older checkpoint`,
      });
  }
  const head = readSafetensorsHeader(bytes);
  if (E.isLeft(head)) return E.left(fromSafetensors(path, head.left));
  const { headerLength, value } = head.right;
  const meta = value.__metadata__;
  const format =
    typeof meta === 'object' && meta !== null
      ? (meta as Record<string, unknown>)['danling.format']
      : undefined;
  if (format !== CHECKPOINT_FORMAT)
    return E.left({
      _tag: 'FileNotACheckpoint',
      path,
      message: `${path} is a safetensors file but not a danling checkpoint (no "danling.format": "${CHECKPOINT_FORMAT}" in __metadata__)`,
    });
  const m = meta as Record<string, unknown>;
  const schemaText = m['danling.schema'];
  const schema =
    typeof schemaText === 'string' && /^\d+$/.test(schemaText) ? Number(schemaText) : NaN;
  if (!Number.isSafeInteger(schema))
    return E.left(
      corrupt(
        path,
        'danling.schema',
        `danling.schema must be a version number, got ${JSON.stringify(schemaText)}`,
      ),
    );
  if (schema > CHECKPOINT_SCHEMA)
    return E.left({
      _tag: 'CheckpointSchemaTooNew',
      path,
      schema,
      supported: CHECKPOINT_SCHEMA,
      message: `checkpoint ${path} has schema version ${schema}, but this danling reads versions up to ${CHECKPOINT_SCHEMA}: upgrade danling to load it`,
    });
  const expectedBytes = 8 + headerLength + maxDataEnd(value);
  if (expectedBytes > size)
    return E.left({
      _tag: 'CheckpointTruncated',
      path,
      expectedBytes,
      actualBytes: size,
      message: `checkpoint ${path} is truncated: its header describes ${expectedBytes} bytes but the file has ${size}; use an older checkpoint`,
    });
  const stored = m[CHECKSUM_KEY];
  if (typeof stored !== 'string' || !CHECKSUM_RE.test(stored))
    return E.left(
      corrupt(
        path,
        CHECKSUM_KEY,
        `${CHECKSUM_KEY} must be "crc32:" and 8 lowercase hex digits, got ${JSON.stringify(stored)}`,
      ),
    );
  const at = indexOfBytes(bytes.subarray(0, 8 + headerLength), MARKER) + MARKER.byteLength;
  if (
    at < MARKER.byteLength ||
    indexOfBytes(bytes.subarray(0, 8 + headerLength), MARKER, at) !== -1
  )
    return E.left(
      corrupt(path, CHECKSUM_KEY, `the header must contain ${CHECKSUM_KEY} exactly once`),
    );
  const crc = precomputed?.at === at ? precomputed.crc : fileCrc(bytes, at);
  const actual = `crc32:${hex8(crc)}`;
  if (actual !== stored)
    return E.left({
      _tag: 'CheckpointChecksumMismatch',
      path,
      expected: stored,
      actual,
      message: `checkpoint ${path} is corrupt: checksum mismatch (stored ${stored}, computed ${actual}); a byte changed after it was written, use an older checkpoint`,
    });
  const file = decodeSafetensors(bytes);
  if (E.isLeft(file)) return E.left(fromSafetensors(path, file.left));
  const state = parseJsonField(path, 'danling.state', file.right.metadata['danling.state'] ?? '');
  if (E.isLeft(state)) return state;
  const partsJson = parseJsonField(
    path,
    'danling.parts',
    file.right.metadata['danling.parts'] ?? '',
  );
  if (E.isLeft(partsJson)) return partsJson;
  const entries = partsJson.right;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries))
    return E.left(corrupt(path, 'danling.parts', 'danling.parts must be an object of parts'));
  const parts: Record<string, StateDict> = {};
  const claimed = new Set<string>();
  for (const [part, raw] of Object.entries(entries as Record<string, unknown>)) {
    const entry = raw as Partial<PartEntry> | null;
    if (
      typeof entry !== 'object' ||
      entry === null ||
      !Array.isArray(entry.tensors) ||
      !entry.tensors.every((t) => typeof t === 'string')
    )
      return E.left(
        corrupt(
          path,
          `danling.parts.${part}`,
          `danling.parts.${part} must be { json, tensors: [names] }`,
        ),
      );
    const tensors: Record<string, Tensor> = {};
    for (const name of entry.tensors) {
      const full = `${part}/${name}`;
      const t = file.right.tensors[full];
      if (t === undefined)
        return E.left(
          corrupt(
            path,
            full,
            `danling.parts.${part} lists tensor ${full}, which is not in the file`,
          ),
        );
      tensors[name] = t;
      claimed.add(full);
    }
    parts[part] = { tensors, json: entry.json ?? null };
  }
  for (const name of Object.keys(file.right.tensors))
    if (!claimed.has(name))
      return E.left(corrupt(path, name, `tensor ${name} belongs to no part in danling.parts`));
  return E.right({ path, schema, bytes: size, state: state.right, parts });
};

/** CRC-32 of `bytes[from, to)` continuing `c`, with the 8 bytes at `at` read as ASCII zeros. */
const crcRange = (bytes: Uint8Array, from: number, to: number, at: number, c: number): number => {
  const zFrom = Math.max(from, at);
  const zTo = Math.min(to, at + 8);
  if (zFrom >= zTo) return crc32(bytes.subarray(from, to), c);
  c = crc32(bytes.subarray(from, zFrom), c);
  c = crc32(ZEROS.subarray(0, zTo - zFrom), c);
  return crc32(bytes.subarray(zTo, to), c);
};

/** Where the checksum digits are, once the header is in `bytes[0, have)`; -1 if not yet, -2 never. */
const checksumAt = (bytes: Uint8Array, have: number): number => {
  if (have < 8) return -1;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) return -2;
  const end = 8 + Number(n);
  if (have < end) return -1;
  const i = indexOfBytes(bytes.subarray(0, end), MARKER);
  return i < 0 ? -2 : i + MARKER.byteLength;
};

/**
 * Reads a whole file in pieces, computing the checkpoint CRC of each piece on the main thread
 * while the thread pool reads the next one. Without a recognisable header there is no CRC.
 */
const readChecksummed = async (
  fs: FileSystem,
  file: string,
): Promise<{ bytes: Uint8Array; crc?: { at: number; crc: number } }> => {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const bytes = Buffer.allocUnsafeSlow(size);
    const readPiece = async (from: number): Promise<number> => {
      const length = Math.min(PIECE, size - from);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(bytes, from + got, length - got, from + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got;
    };
    let have = 0;
    let done = 0;
    let at = -1;
    let c = 0;
    let pending: Promise<number> | undefined = size > 0 ? readPiece(0) : undefined;
    while (pending !== undefined) {
      const got = await pending;
      const expected = Math.min(PIECE, size - have);
      have += got;
      pending = got === expected && have < size ? readPiece(have) : undefined;
      if (at === -1) at = checksumAt(bytes, have);
      if (at >= 0) {
        c = crcRange(bytes, done, have, at, c);
        done = have;
      }
    }
    const view = bytes.subarray(0, have);
    return at >= 0 && done === have ? { bytes: view, crc: { at, crc: c } } : { bytes: view };
  } finally {
    await handle.close();
  }
};

/**
 * Reads and fully verifies a checkpoint file (see {@link decodeCheckpoint}). A missing file is a
 * `CheckpointNotFound` naming the path.
 *
 * @example
 * ```ts
 * const loaded = await loadCheckpointFile('runs/a/checkpoints/latest.safetensors');
 * if (E.isLeft(loaded)) console.error(loaded.left.message);
 * ```
 */
export const loadCheckpointFile = async (
  path: string,
  options: Pick<CheckpointFileOptions, 'fs'> = {},
): Promise<E.Either<CheckpointError, LoadedCheckpoint>> => {
  const fs = options.fs ?? nodeFs;
  let read: { bytes: Uint8Array; crc?: { at: number; crc: number } };
  try {
    read = await readChecksummed(fs, path);
  } catch (cause) {
    const e = fsError('read', path, cause);
    return E.left(
      e._tag === 'FileNotFound'
        ? { _tag: 'CheckpointNotFound', path, message: `checkpoint ${path} does not exist` }
        : e,
    );
  }
  return decodeCheckpoint(read.bytes, path, read.crc);
};

/** The progress a checkpoint's header says it holds (unverified: for ranking only). */
export interface CheckpointProgress {
  readonly epoch: number;
  readonly step: number;
}

/**
 * Reads only the header of a checkpoint file and returns the progress (`epoch`, `step`) of the
 * runner state in its metadata, or `undefined` when the header cannot be read. Nothing is
 * verified: this ranks resume candidates by what they hold (never by file times), and each is
 * fully verified by {@link loadCheckpointFile} before use.
 */
export const peekCheckpointProgress = async (
  file: string,
  options: Pick<CheckpointFileOptions, 'fs'> = {},
): Promise<CheckpointProgress | undefined> => {
  const fs = options.fs ?? nodeFs;
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const head = new Uint8Array(8);
      if (size < 8 || (await handle.read(head, 0, 8, 0)).bytesRead < 8) return undefined;
      const n = new DataView(head.buffer).getBigUint64(0, true);
      if (n > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) return undefined;
      const json = new Uint8Array(Number(n));
      if ((await handle.read(json, 0, json.length, 8)).bytesRead < json.length) return undefined;
      const header = JSON.parse(new TextDecoder().decode(json)) as {
        __metadata__?: Record<string, unknown>;
      };
      const text = header.__metadata__?.['danling.state'];
      if (typeof text !== 'string') return undefined;
      const progress = (JSON.parse(text) as { progress?: { epoch?: unknown; step?: unknown } })
        .progress;
      const { epoch, step } = progress ?? {};
      return Number.isSafeInteger(epoch) && Number.isSafeInteger(step)
        ? { epoch: epoch as number, step: step as number }
        : undefined;
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
};
