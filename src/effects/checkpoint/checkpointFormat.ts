/**
 * The checkpoint format shared by the writer (`checkpointFile.ts`) and the reader
 * (`checkpointRead.ts`): its constants, the CRC-32 over the whole file with the checksum field
 * zeroed, the error constructors, the options.
 */
import * as zlib from 'node:zlib';
import { type SafetensorsError } from '../../state/formats/safetensors.js';
import { type FileSystem } from '../storage/atomic.js';
import type { CheckpointCorrupt, CheckpointTooLarge } from './checkpointTypes.js';

/**
 * The newest checkpoint schema version this danling reads. It writes 1 (the state in the header)
 * unless the state is over {@link STATE_IN_HEADER_BYTES}, then 2 (the state as a tensor): older
 * danling versions read every file they can and say "upgrade danling" for the others.
 */
export const CHECKPOINT_SCHEMA = 2;

/** A runner state whose JSON is over this many bytes (16 MiB) is stored as a tensor. */
export const STATE_IN_HEADER_BYTES = 16 * 1024 * 1024;

/** The name of the tensor that holds the runner state in a schema-2 checkpoint. */
export const STATE_TENSOR = 'danling.state';

/** The value of `danling.format` in a checkpoint's `__metadata__`. */
export const CHECKPOINT_FORMAT = 'danling-checkpoint';
export const corrupt = (path: string, field: string, what: string): CheckpointCorrupt => ({
  _tag: 'CheckpointCorrupt',
  path,
  field,
  message: `checkpoint ${path} is corrupt: ${what}`,
});

export const fromSafetensors = (path: string, e: SafetensorsError): CheckpointCorrupt =>
  corrupt(path, e.tensor ?? 'header', e.message);

// ---------------------------------------------------------------- checksum

/** CRC-32 (IEEE), the same as `zlib.crc32`; a table-driven fallback for Node < 20.15. */
export const crc32: (data: Uint8Array, value?: number) => number =
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

export const CHECKSUM_KEY = 'danling.checksum';
export const CHECKSUM_PLACEHOLDER = 'crc32:00000000';
export const CHECKSUM_RE = /^crc32:[0-9a-f]{8}$/;
/** The bytes `"danling.checksum":"crc32:` that precede the 8 hex digits in the header. */
export const MARKER = new TextEncoder().encode(`${JSON.stringify(CHECKSUM_KEY)}:"crc32:`);
export const ZEROS = new TextEncoder().encode('00000000');

export const indexOfBytes = (haystack: Uint8Array, needle: Uint8Array, from = 0): number =>
  Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle, from);

export const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** The CRC-32 of a whole checkpoint file with the 8 checksum digits at `at` read as zeros. */
export const fileCrc = (bytes: Uint8Array, at: number): number => {
  let c = crc32(bytes.subarray(0, at));
  c = crc32(ZEROS, c);
  return crc32(bytes.subarray(at + 8), c);
};

export const tooLarge = (
  path: string,
  field: string,
  bytes: number,
  limit: number,
  message: string,
): CheckpointTooLarge => ({ _tag: 'CheckpointTooLarge', path, field, bytes, limit, message });

/** Bytes per write / read in the overlapped save and load: the checksum of one piece is computed
 * on the main thread while the next piece is written or read by the thread pool. */
export const PIECE = 8 << 20;

/** Options of the checkpoint file effects. */
export interface CheckpointFileOptions {
  /** The file system; the real one when left out. */
  readonly fs?: FileSystem;
  /** fsync file and folder on save (default `true`). */
  readonly fsync?: boolean;
}
