/**
 * TensorBoard event files written in TypeScript: TFRecord framing with masked CRC32C, and the
 * Event / Summary protobuf messages with `simple_value` scalars. No TensorFlow needed.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { fsError, type FsError } from '../storage/atomic.js';

// --- CRC32C (Castagnoli), table-driven ---------------------------------------------------------

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `bytes` (the checksum TFRecord uses). `crc32c("123456789") === 0xe3069283`. */
export const crc32c = (bytes: Uint8Array): number => {
  let c = 0xffffffff;
  for (const b of bytes) c = (TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

/** TFRecord's masked CRC: rotate right by 15 and add 0xa282ead8. */
export const maskedCrc32c = (bytes: Uint8Array): number => {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
};

/** One TFRecord: length (u64 LE), masked CRC of the length, data, masked CRC of the data. */
export const tfRecord = (data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
};

// --- protobuf, just what Event needs ------------------------------------------------------------

const varint = (n: bigint): number[] => {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
};
const key = (field: number, wire: number): number[] => varint(BigInt((field << 3) | wire));
const bytesField = (field: number, bytes: Uint8Array | number[]): number[] => [
  ...key(field, 2),
  ...varint(BigInt(bytes.length)),
  ...bytes,
];
const utf8 = new TextEncoder();

/**
 * An Event message: wall time, step, and either a file version, scalars or a session log.
 * Field numbers as tensorflow/core/util/event.proto: wall_time 1, step 2, file_version 3,
 * summary 5, session_log 7 (6 is the deprecated log_message); SessionLog.status 1, START = 1.
 */
export const encodeEvent = (event: {
  readonly wallTime: number;
  readonly step: number;
  readonly fileVersion?: string;
  readonly scalars?: readonly (readonly [string, number])[];
  readonly sessionStart?: boolean;
}): Uint8Array => {
  const out: number[] = [];
  const wall = new Uint8Array(8);
  new DataView(wall.buffer).setFloat64(0, event.wallTime, true);
  out.push(...key(1, 1), ...wall);
  out.push(...key(2, 0), ...varint(BigInt(Math.trunc(event.step))));
  if (event.fileVersion !== undefined) out.push(...bytesField(3, utf8.encode(event.fileVersion)));
  if (event.scalars !== undefined) {
    const summary: number[] = [];
    for (const [tag, value] of event.scalars) {
      const f = new Uint8Array(4);
      new DataView(f.buffer).setFloat32(0, value, true);
      summary.push(...bytesField(1, [...bytesField(1, utf8.encode(tag)), ...key(2, 5), ...f]));
    }
    out.push(...bytesField(5, summary));
  }
  if (event.sessionStart === true) out.push(...bytesField(7, [...key(1, 0), 1]));
  return Uint8Array.from(out);
};

// --- the writer ---------------------------------------------------------------------------------

/** An open TensorBoard event file. */
export interface EventWriter {
  readonly path: string;
  /** Appends a scalar `value` under `tag` at `step`. */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void;
  /**
   * Marks a restart at `step` (a SessionLog START event): TensorBoard then drops the events of
   * earlier sessions with a step at or after it, so resumed curves never double back.
   */
  purgeFrom(step: number, wallTime?: number): void;
  /** fsyncs what was written. */
  flush(): void;
  close(): void;
  /**
   * The first write error (a full disk, an I/O error), naming the file, or `undefined`. After it
   * the writer writes nothing more (a torn record would hide every later one from TensorBoard),
   * and no method throws.
   */
  error(): FsError | undefined;
}

/** Options of {@link openEventWriter}. */
export interface EventWriterOptions {
  /** The clock, in seconds (default `Date.now() / 1000`). */
  readonly now?: () => number;
  /** The host name in the file name (default `os.hostname()`). */
  readonly host?: string;
}

/**
 * Opens a new event file `events.out.tfevents.<unix seconds>.<host>` in `dir` (created if
 * missing) and writes the file-version event TensorBoard expects first. Writes are synchronous
 * appends: each record is complete on disk order, and `flush` fsyncs. A failed write (a full
 * disk) never throws: it stops the file and is kept for {@link EventWriter.error}. Opening the
 * file may throw (a path problem at start-up); {@link tryOpenEventWriter} returns it instead.
 */
export const openEventWriter = (dir: string, options: EventWriterOptions = {}): EventWriter => {
  const now = options.now ?? (() => Date.now() / 1000);
  mkdirSync(dir, { recursive: true });
  const start = now();
  const path = join(dir, `events.out.tfevents.${Math.floor(start)}.${options.host ?? hostname()}`);
  const fd = openSync(path, 'a');
  let size = fstatSync(fd).size;
  let failed: FsError | undefined;
  let open = true;
  const fail = (op: string, cause: unknown): void => {
    failed ??= fsError(op, path, cause);
    if (!open) return;
    open = false;
    try {
      ftruncateSync(fd, size); // whole records only
    } catch {
      // a bad descriptor: nothing more to do
    }
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  };
  const write = (event: Parameters<typeof encodeEvent>[0]): void => {
    if (!open) return;
    const record = tfRecord(encodeEvent(event));
    try {
      let done = 0;
      while (done < record.byteLength) {
        const n = writeSync(fd, record, done, record.byteLength - done);
        if (n <= 0) throw new Error('write made no progress');
        done += n;
      }
      size += record.byteLength;
    } catch (cause) {
      fail('write to', cause);
    }
  };
  write({ wallTime: start, step: 0, fileVersion: 'brain.Event:2' });
  return {
    path,
    addScalar: (tag, value, step, wallTime) => {
      write({ wallTime: wallTime ?? now(), step, scalars: [[tag, value]] });
    },
    purgeFrom: (step, wallTime) => {
      write({ wallTime: wallTime ?? now(), step, sessionStart: true });
    },
    flush: () => {
      if (!open) return;
      try {
        fsyncSync(fd);
      } catch (cause) {
        fail('fsync', cause);
      }
    },
    close: () => {
      if (!open) return;
      try {
        fsyncSync(fd);
      } catch (cause) {
        fail('fsync', cause);
        return;
      }
      open = false;
      try {
        closeSync(fd);
      } catch (cause) {
        failed ??= fsError('close', path, cause);
      }
    },
    error: () => failed,
  };
};

/**
 * {@link openEventWriter} as an `Either`: a folder that cannot be created or a file that cannot be
 * opened is a `Left` naming the path (the shell's start-up error), never a throw.
 */
export const tryOpenEventWriter = (
  dir: string,
  options: EventWriterOptions = {},
): E.Either<FsError, EventWriter> => {
  try {
    return E.right(openEventWriter(dir, options));
  } catch (cause) {
    return E.left(fsError('open the TensorBoard event file in', dir, cause));
  }
};

/**
 * The spec's init_tensorboard: an event writer in the run dir, on the main process only
 * (`undefined` elsewhere).
 */
export const initTensorboard = (
  runDir: string,
  isMain: boolean,
  options: EventWriterOptions = {},
): EventWriter | undefined => (isMain ? openEventWriter(runDir, options) : undefined);
