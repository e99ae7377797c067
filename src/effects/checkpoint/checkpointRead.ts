/**
 * Reading a checkpoint file: the header checked against the file size before any data is read,
 * the checksum before the schema, tensors read piece by piece (each into its own buffer, so files
 * over 4 GiB load), the state and parts decoded; and a cheap peek at the progress in the header.
 * Writing is in `checkpointFile.ts`; the format's constants and checksum in `checkpointFormat.ts`.
 */
import * as E from 'fp-ts/lib/Either.js';
import { isJson, type Json } from '../../state/Json.js';
import {
  MAX_HEADER_BYTES,
  readSafetensorsHeader,
  safetensorsLayout,
  DTYPE_SIZE,
  setOwn,
  tensorOfBuffer,
  tensorOfBytes,
  toHostOrder,
  type SafetensorsLayout,
  type Tensor,
  type TensorSpan,
} from '../../state/formats/safetensors.js';
import { fsError, nodeFs, type FileHandleLike } from '../storage/atomic.js';
import type { CheckpointError, LoadedCheckpoint, StateDict } from './checkpointTypes.js';
import {
  CHECKPOINT_SCHEMA,
  STATE_TENSOR,
  CHECKPOINT_FORMAT,
  corrupt,
  fromSafetensors,
  crc32,
  CHECKSUM_KEY,
  CHECKSUM_RE,
  MARKER,
  ZEROS,
  indexOfBytes,
  hex8,
  fileCrc,
  tooLarge,
  PIECE,
  type CheckpointFileOptions,
} from './checkpointFormat.js';

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

/** A checkpoint header checked against the file's size, before any tensor data is read. */
interface CheckedHead {
  readonly headerLength: number;
  readonly meta: Readonly<Record<string, unknown>>;
  /** Where the 8 checksum hex digits start. */
  readonly at: number;
  readonly stored: string;
  readonly layout: SafetensorsLayout;
}

/** The header length N from the first 8 bytes; `undefined` when there are fewer. */
const headerLengthOf = (bytes: Uint8Array): bigint | undefined =>
  bytes.byteLength < 8
    ? undefined
    : new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);

/**
 * Checks a checkpoint's header against a file of `size` bytes: `head` holds at least the first 8
 * bytes, and the whole header when its length fits the file and the limit. Truncation, trailing
 * bytes, the header limit, the format, the checksum field and the tensor layout are all checked
 * here, so that no data is read for a file whose header and size disagree.
 */
const checkHead = (
  path: string,
  head: Uint8Array,
  size: number,
): E.Either<CheckpointError, CheckedHead> => {
  const n = headerLengthOf(head);
  if (n !== undefined && n > BigInt(size - 8) && n <= BigInt(MAX_HEADER_BYTES))
    return E.left({
      _tag: 'CheckpointTruncated',
      path,
      expectedBytes: 8 + Number(n),
      actualBytes: size,
      message: `checkpoint ${path} is truncated: its header alone needs ${8 + Number(n)} bytes but the file has ${size}; use an older checkpoint`,
    });
  if (n !== undefined && n > BigInt(MAX_HEADER_BYTES) && n <= BigInt(size - 8))
    return E.left(
      tooLarge(
        path,
        'header',
        Number(n),
        MAX_HEADER_BYTES,
        `checkpoint ${path} cannot be loaded: its header is ${n} bytes, over the ${MAX_HEADER_BYTES}-byte limit of safetensors headers (a runner state too large for the header, written by a danling before 0.2); load it with that danling and save it again with this one, or use an older checkpoint`,
      ),
    );
  const parsed = readSafetensorsHeader(head);
  if (E.isLeft(parsed)) return E.left(fromSafetensors(path, parsed.left));
  const { headerLength, value } = parsed.right;
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
  const expectedBytes = 8 + headerLength + maxDataEnd(value);
  if (expectedBytes > size)
    return E.left({
      _tag: 'CheckpointTruncated',
      path,
      expectedBytes,
      actualBytes: size,
      message: `checkpoint ${path} is truncated: its header describes ${expectedBytes} bytes but the file has ${size}; use an older checkpoint`,
    });
  if (expectedBytes < size)
    return E.left(
      corrupt(
        path,
        'header',
        `its header describes ${expectedBytes} bytes but the file has ${size} (trailing bytes); use an older checkpoint`,
      ),
    );
  const stored = m[CHECKSUM_KEY];
  if (typeof stored !== 'string' || !CHECKSUM_RE.test(stored))
    return E.left(
      corrupt(
        path,
        CHECKSUM_KEY,
        `${CHECKSUM_KEY} must be "crc32:" and 8 lowercase hex digits, got ${JSON.stringify(stored)}`,
      ),
    );
  const header = head.subarray(0, 8 + headerLength);
  const at = indexOfBytes(header, MARKER) + MARKER.byteLength;
  if (at < MARKER.byteLength || indexOfBytes(header, MARKER, at) !== -1)
    return E.left(
      corrupt(path, CHECKSUM_KEY, `the header must contain ${CHECKSUM_KEY} exactly once`),
    );
  const layout = safetensorsLayout(value, size - 8 - headerLength);
  if (E.isLeft(layout)) return E.left(fromSafetensors(path, layout.left));
  return E.right({ headerLength, meta: m, at, stored, layout: layout.right });
};

const checkCrc = (path: string, stored: string, crc: number): E.Either<CheckpointError, void> => {
  const actual = `crc32:${hex8(crc)}`;
  return actual === stored
    ? E.right(undefined)
    : E.left({
        _tag: 'CheckpointChecksumMismatch',
        path,
        expected: stored,
        actual,
        message: `checkpoint ${path} is corrupt: checksum mismatch (stored ${stored}, computed ${actual}); a byte changed after it was written, use an older checkpoint`,
      });
};

/** The schema version, once the checksum has shown the header is what was written. */
const checkSchema = (
  path: string,
  meta: Readonly<Record<string, unknown>>,
): E.Either<CheckpointError, number> => {
  const schemaText = meta['danling.schema'];
  const schema =
    typeof schemaText === 'string' && /^\d+$/.test(schemaText) ? Number(schemaText) : NaN;
  if (!Number.isSafeInteger(schema) || schema < 1)
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
  return E.right(schema);
};

/** Builds the loaded checkpoint from a verified header and each tensor's data. */
const assemble = (
  path: string,
  head: CheckedHead,
  schema: number,
  size: number,
  tensorOf: (span: TensorSpan) => Tensor,
): E.Either<CheckpointError, LoadedCheckpoint> => {
  const { metadata, spans } = head.layout;
  const all: Record<string, Tensor> = {};
  for (const span of spans) setOwn(all, span.name, tensorOf(span));
  let stateText = metadata['danling.state'] ?? '';
  const claimed = new Set<string>();
  if (schema >= 2) {
    const t = Object.hasOwn(all, STATE_TENSOR) ? all[STATE_TENSOR] : undefined;
    if (t?.dtype !== 'U8' || t.shape.length !== 1)
      return E.left(
        corrupt(
          path,
          STATE_TENSOR,
          `schema ${schema} needs the runner state as U8 tensor ${STATE_TENSOR}`,
        ),
      );
    try {
      stateText = new TextDecoder('utf-8', { fatal: true }).decode(t.data);
    } catch (cause) {
      return E.left(
        corrupt(
          path,
          STATE_TENSOR,
          `tensor ${STATE_TENSOR} is not the runner state's UTF-8 JSON (${cause instanceof Error ? cause.message : String(cause)})`,
        ),
      );
    }
    claimed.add(STATE_TENSOR);
  }
  const state = parseJsonField(path, 'danling.state', stateText);
  if (E.isLeft(state)) return state;
  const partsJson = parseJsonField(path, 'danling.parts', metadata['danling.parts'] ?? '');
  if (E.isLeft(partsJson)) return partsJson;
  const entries = partsJson.right;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries))
    return E.left(corrupt(path, 'danling.parts', 'danling.parts must be an object of parts'));
  const parts: Record<string, StateDict> = {};
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
      const t = Object.hasOwn(all, full) ? all[full] : undefined;
      if (t === undefined)
        return E.left(
          corrupt(
            path,
            full,
            `danling.parts.${part} lists tensor ${full}, which is not in the file`,
          ),
        );
      setOwn(tensors, name, t);
      claimed.add(full);
    }
    setOwn(parts, part, { tensors, json: entry.json ?? null });
  }
  for (const name of Object.keys(all))
    if (!claimed.has(name))
      return E.left(corrupt(path, name, `tensor ${name} belongs to no part in danling.parts`));
  return E.right({ path, schema, bytes: size, state: state.right, parts });
};

/**
 * Decodes and fully verifies checkpoint bytes: header, format, length (truncation, trailing
 * bytes), checksum, then the schema version, the safetensors layout, the state and parts JSON.
 * `path` is used in error messages. Tensors are views of `bytes` where aligned.
 */
export const decodeCheckpoint = (
  bytes: Uint8Array,
  path: string,
  precomputed?: { readonly at: number; readonly crc: number },
): E.Either<CheckpointError, LoadedCheckpoint> => {
  const size = bytes.byteLength;
  const head = checkHead(path, bytes, size);
  if (E.isLeft(head)) return head;
  const { at, stored, meta, headerLength } = head.right;
  const crc = precomputed?.at === at ? precomputed.crc : fileCrc(bytes, at);
  const verified = checkCrc(path, stored, crc);
  if (E.isLeft(verified)) return verified;
  const schema = checkSchema(path, meta);
  if (E.isLeft(schema)) return schema;
  const data = 8 + headerLength;
  return assemble(path, head.right, schema.right, size, (span) =>
    tensorOfBytes(span, bytes.subarray(data + span.begin, data + span.end)),
  );
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

/** Reads `length` bytes at `position` into `buffer[offset..]`; resolves to the bytes read. */
const readFully = async (
  handle: FileHandleLike,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<number> => {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(
      buffer,
      offset + got,
      Math.min(length - got, PIECE),
      position + got,
    );
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
};

const changedWhileRead = (
  path: string,
  expectedBytes: number,
  actualBytes: number,
): CheckpointError => ({
  _tag: 'CheckpointTruncated',
  path,
  expectedBytes,
  actualBytes,
  message: `checkpoint ${path} is truncated: it shrank to ${actualBytes} bytes while being read (its header describes ${expectedBytes}); use an older checkpoint`,
});

/**
 * Reads and verifies an open checkpoint: the 8-byte length and the header first (every size in it
 * checked against the file's size before any data is read), then each tensor into its own
 * buffer, in pieces: the CRC of one piece is computed on the main thread while the thread pool
 * reads the next one.
 */
const readCheckpoint = async (
  handle: FileHandleLike,
  path: string,
): Promise<E.Either<CheckpointError, LoadedCheckpoint>> => {
  const { size } = await handle.stat();
  const first = new Uint8Array(Math.min(8, size));
  if ((await readFully(handle, first, 0, first.byteLength, 0)) < first.byteLength)
    return E.left(changedWhileRead(path, size, 0));
  const n = headerLengthOf(first);
  let head = first;
  if (n !== undefined && n <= BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
    head = new Uint8Array(8 + Number(n));
    if ((await readFully(handle, head, 0, head.byteLength, 0)) < head.byteLength)
      return E.left(changedWhileRead(path, size, 0));
  }
  const checked = checkHead(path, head, size);
  if (E.isLeft(checked)) return checked;
  const { at, stored, meta, headerLength, layout } = checked.right;
  let c = crcRange(head, 0, head.byteLength, at, 0);
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, Tensor>();
  const pieces: { bytes: Uint8Array; position: number; size: number }[] = [];
  for (const span of layout.spans) {
    const length = span.end - span.begin;
    try {
      // Each tensor its own buffer: no single allocation holds the file (Node 20 caps a Buffer
      // at 4 GiB), and a tensor is refused before any data is read when it cannot be made here.
      const buffer = new ArrayBuffer(length);
      tensors.set(span.name, tensorOfBuffer(span, buffer));
      for (let offset = 0; offset < length; offset += PIECE) {
        const n = Math.min(PIECE, length - offset);
        pieces.push({
          bytes: new Uint8Array(buffer, offset, n),
          position: dataStart + span.begin + offset,
          size: DTYPE_SIZE[span.dtype],
        });
      }
    } catch (cause) {
      return E.left(
        tooLarge(
          path,
          span.name,
          length,
          2 ** 32 * DTYPE_SIZE[span.dtype],
          `cannot load ${path}: tensor ${span.name} (${span.dtype} [${span.shape.join(',')}], ${length} bytes) does not fit in one typed array here (${cause instanceof Error ? cause.message : String(cause)}); load it with Node 22 or later, or with more memory`,
        ),
      );
    }
  }
  const start = (i: number): Promise<number> | undefined => {
    const p = pieces[i];
    return p === undefined
      ? undefined
      : readFully(handle, p.bytes, 0, p.bytes.byteLength, p.position);
  };
  let pending = start(0);
  for (let i = 0; pending !== undefined; i++) {
    const got = await pending;
    const piece = pieces[i] as (typeof pieces)[number];
    if (got < piece.bytes.byteLength)
      return E.left(changedWhileRead(path, size, piece.position + got));
    pending = start(i + 1);
    c = crc32(piece.bytes, c);
    toHostOrder(piece.bytes, piece.size);
  }
  const verified = checkCrc(path, stored, c);
  if (E.isLeft(verified)) return verified;
  const schema = checkSchema(path, meta);
  if (E.isLeft(schema)) return schema;
  return assemble(
    path,
    checked.right,
    schema.right,
    size,
    (span) => tensors.get(span.name) as Tensor,
  );
};

/**
 * Reads and fully verifies a checkpoint file (see {@link decodeCheckpoint}), one tensor at a time
 * (files over 4 GiB load). A missing file is a `CheckpointNotFound` naming the path; a FIFO,
 * device or folder is a `CheckpointNotAFile` (never opened, so never waited on).
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
  try {
    if (!(await fs.stat(path)).isFile())
      return E.left({
        _tag: 'CheckpointNotAFile',
        path,
        message: `checkpoint ${path} is not a regular file (a FIFO, device, socket or folder); give the path of a .safetensors file`,
      });
    const handle = await fs.open(path, 'r');
    try {
      return await readCheckpoint(handle, path);
    } finally {
      await handle.close();
    }
  } catch (cause) {
    const e = fsError('read', path, cause);
    return E.left(
      e._tag === 'FileNotFound'
        ? { _tag: 'CheckpointNotFound', path, message: `checkpoint ${path} does not exist` }
        : e,
    );
  }
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
      const meta = header.__metadata__;
      const stored = meta?.['danling.progress'];
      const text = meta?.['danling.state'];
      const progress =
        typeof stored === 'string'
          ? (JSON.parse(stored) as { epoch?: unknown; step?: unknown } | null)
          : typeof text === 'string'
            ? (JSON.parse(text) as { progress?: { epoch?: unknown; step?: unknown } }).progress
            : undefined;
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
