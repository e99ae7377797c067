/**
 * Checkpoints at and past the limits (issue 11, items 3 and 15): files over 4 GiB, runner states
 * over the 100 MB header limit, sparse files whose size disagrees with the header, FIFOs, flipped
 * schema bytes, `__proto__` names, and a checkpoint dir that is a file. Real files in temp dirs;
 * the big files are sparse (`truncate`), so they cost no disk.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { freemem, tmpdir } from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadCheckpointFile,
  peekCheckpointProgress,
  saveCheckpointFile,
  type CheckpointError,
} from '../../../src/effects/checkpoint/checkpointFile.js';
import { saveCheckpointFiles } from '../../../src/effects/checkpoint/checkpointStore.js';
import { nodeFs, type FileSystem } from '../../../src/effects/storage/atomic.js';
import type { Json } from '../../../src/state/Json.js';
import { MAX_HEADER_BYTES } from '../../../src/state/formats/safetensors.js';
import { payloadFor } from '../../helpers/checkpointHelpers.js';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-limits-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const leftOf = (r: E.Either<CheckpointError, unknown>): CheckpointError => {
  if (E.isRight(r)) throw new Error('expected a Left');
  return r.left;
};

/** A file system that counts the bytes read through open file handles. */
const countingReads = (): { fs: FileSystem; read: () => number } => {
  let total = 0;
  const fs: FileSystem = {
    ...nodeFs,
    open: async (file, flags, mode) => {
      const h = await nodeFs.open(file, flags, mode);
      return {
        write: h.write.bind(h),
        sync: h.sync.bind(h),
        truncate: h.truncate.bind(h),
        stat: h.stat.bind(h),
        close: h.close.bind(h),
        read: async (buffer, offset, length, position) => {
          const r = await h.read(buffer, offset, length, position);
          total += r.bytesRead;
          return r;
        },
      };
    },
  };
  return { fs, read: () => total };
};

const MARKER = Buffer.from('"danling.checksum":"crc32:');

/**
 * Writes a checkpoint by hand whose part `model` has a small F32 tensor and a tensor `big` of
 * `bigBytes` zero bytes, the zeros left as a hole (sparse file). The checksum is correct.
 */
const writeSparseCheckpoint = async (
  file: string,
  bigBytes: number,
  dtype: 'U8' | 'F32',
): Promise<void> => {
  const small = new Float32Array([1, 2, 3, 4]);
  const header = {
    __metadata__: {
      'danling.format': 'danling-checkpoint',
      'danling.schema': '1',
      'danling.state': JSON.stringify({ progress: { epoch: 1, step: 2 } }),
      'danling.parts': JSON.stringify({ model: { json: null, tensors: ['small', 'big'] } }),
      'danling.checksum': 'crc32:00000000',
    },
    'model/small': { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    'model/big': {
      dtype,
      shape: [dtype === 'U8' ? bigBytes : bigBytes / 4],
      data_offsets: [16, 16 + bigBytes],
    },
  };
  const json = Buffer.from(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  const smallBytes = Buffer.from(small.buffer);
  let c = zlib.crc32(head);
  c = zlib.crc32(smallBytes, c);
  const zeros = Buffer.alloc(64 << 20);
  for (let left = bigBytes; left > 0; left -= zeros.length)
    c = zlib.crc32(left >= zeros.length ? zeros : zeros.subarray(0, left), c);
  head.write(c.toString(16).padStart(8, '0'), head.indexOf(MARKER) + MARKER.length, 'latin1');
  await fsp.writeFile(file, Buffer.concat([head, smallBytes]));
  await fsp.truncate(file, head.length + 16 + bigBytes);
};

describe('checkpoint limits', () => {
  // It holds 4 GiB in memory while it runs: skipped on a machine with less than 6 GiB free.
  it.skipIf(freemem() < 6 * 2 ** 30)(
    'a checkpoint over 4 GiB loads, each tensor in its own buffer',
    async () => {
      const file = path.join(dir, 'big.safetensors');
      const big = 4 * 2 ** 30 + 4096;
      await writeSparseCheckpoint(file, big, 'F32');
      const loaded = await loadCheckpointFile(file);
      if (E.isLeft(loaded)) throw new Error(loaded.left.message);
      const tensors = loaded.right.parts.model?.tensors ?? {};
      expect(tensors.big?.data.byteLength).toBe(big);
      expect(Array.from(tensors.small?.data as Float32Array)).toEqual([1, 2, 3, 4]);
      expect(loaded.right.bytes).toBeGreaterThan(2 ** 32);
    },
    180_000,
  );

  it('a tensor longer than a typed array can be here is refused by name before data is read', async () => {
    const file = path.join(dir, 'big.safetensors');
    const big = 4 * 2 ** 30 + 4096;
    await writeSparseCheckpoint(file, big, 'U8');
    let elements = true;
    try {
      new Uint8Array(new ArrayBuffer(big), 0, big);
    } catch {
      elements = false;
    }
    if (elements) return; // a runtime whose typed arrays hold 2^32 + 4096 elements loads it
    const { fs, read } = countingReads();
    const e = leftOf(await loadCheckpointFile(file, { fs }));
    expect(e._tag).toBe('CheckpointTooLarge');
    expect(e.message).toMatch(
      new RegExp(
        `^cannot load ${file}: tensor model/big \\(U8 \\[${big}\\], ${big} bytes\\) does not fit in one typed array here \\(.*\\); load it with Node 22 or later, or with more memory$`,
      ),
    );
    expect(read()).toBeLessThan(1 << 20);
  });

  it('a sparse file bigger than its header says is refused before its data is read', async () => {
    const file = path.join(dir, 'latest.safetensors');
    expect(E.isRight(await saveCheckpointFile(file, payloadFor(1)))).toBe(true);
    const real = (await fsp.stat(file)).size;
    await fsp.truncate(file, 3e9);
    const { fs, read } = countingReads();
    const e = leftOf(await loadCheckpointFile(file, { fs }));
    expect(e._tag).toBe('CheckpointCorrupt');
    expect(e.message).toBe(
      `checkpoint ${file} is corrupt: its header describes ${real} bytes but the file has 3000000000 (trailing bytes); use an older checkpoint`,
    );
    expect(read()).toBeLessThan(1 << 20);
  });

  it('a header over the 100 MB limit (an older danling wrote it) says which limit, not "corrupt"', async () => {
    const file = path.join(dir, 'latest.safetensors');
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(150_000_000), 0);
    await fsp.writeFile(file, head);
    await fsp.truncate(file, 8 + 150_000_000 + 64);
    const { fs, read } = countingReads();
    const e = leftOf(await loadCheckpointFile(file, { fs }));
    expect(e._tag).toBe('CheckpointTooLarge');
    expect(e.message).toBe(
      `checkpoint ${file} cannot be loaded: its header is 150000000 bytes, over the ${MAX_HEADER_BYTES}-byte limit of safetensors headers (a runner state too large for the header, written by a danling before 0.2); load it with that danling and save it again with this one, or use an older checkpoint`,
    );
    expect(read()).toBeLessThan(1 << 20);
  });

  it('a runner state over the header limit (600k results) is stored outside the header and loads', async () => {
    const file = path.join(dir, 'latest.safetensors');
    const results: Record<string, Json> = {};
    for (let i = 0; i < 600_000; i++)
      results[String(i)] = {
        train: { loss: 1 / (i + 1), accuracy: i / (i + 7), lr: 1 / (i + 13) },
        val: { loss: 2 / (i + 3), accuracy: i / (i + 11) },
      };
    const state = { progress: { epoch: 599_999, step: 7 }, results };
    const text = JSON.stringify(state);
    expect(text.length).toBeGreaterThan(MAX_HEADER_BYTES);
    const payload = { ...payloadFor(1), state };
    expect(await saveCheckpointFile(file, payload)).toEqual(E.right(file));
    const loaded = await loadCheckpointFile(file);
    if (E.isLeft(loaded)) throw new Error(loaded.left.message);
    expect(JSON.stringify(loaded.right.state)).toBe(text);
    expect(loaded.right.schema).toBe(2);
    expect(Object.keys(loaded.right.parts).sort()).toEqual(['model', 'optimizer', 'scheduler']);
    expect(await peekCheckpointProgress(file)).toEqual({ epoch: 599_999, step: 7 });
  }, 120_000);

  it('a header that would be over the limit is refused at save time, naming limit and size', async () => {
    const file = path.join(dir, 'latest.safetensors');
    const payload = payloadFor(1);
    const huge = {
      ...payload,
      parts: { ...payload.parts, scheduler: { json: { blob: 'x'.repeat(MAX_HEADER_BYTES) } } },
    };
    const e = leftOf(await saveCheckpointFile(file, huge));
    expect(e._tag).toBe('CheckpointTooLarge');
    expect(e.message).toMatch(
      new RegExp(
        `^cannot save ${file}: its header would be 1000\\d{5} bytes, over the ${MAX_HEADER_BYTES}-byte limit of safetensors headers \\(the parts' stateDict\\(\\)\\.json is \\d+ bytes\\); keep large data in tensors, not in stateDict\\(\\)\\.json$`,
      ),
    );
    await expect(fsp.stat(file)).rejects.toThrow();
    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it('a FIFO given as a checkpoint is refused, never waited on', async () => {
    const fifo = path.join(dir, 'latest.safetensors');
    execFileSync('mkfifo', [fifo]);
    const result = await Promise.race([
      loadCheckpointFile(fifo),
      new Promise<'hung'>((resolve) =>
        setTimeout(() => {
          resolve('hung');
        }, 5000),
      ),
    ]);
    if (result === 'hung') {
      // Unblock the reader so that the test can end: a writer opens the FIFO and closes it.
      spawn('sh', ['-c', `: > '${fifo}'`]);
      throw new Error('loadCheckpointFile waited on a FIFO');
    }
    const e = leftOf(result);
    expect(e._tag).toBe('CheckpointNotAFile');
    expect(e.message).toBe(
      `checkpoint ${fifo} is not a regular file (a FIFO, device, socket or folder); give the path of a .safetensors file`,
    );
  });

  it('a flipped byte in danling.schema is a checksum mismatch, not "upgrade danling"', async () => {
    const file = path.join(dir, 'latest.safetensors');
    await saveCheckpointFile(file, payloadFor(1));
    const bytes = await fsp.readFile(file);
    const at = bytes.indexOf('"danling.schema":"1"') + '"danling.schema":"'.length;
    bytes[at] = '9'.charCodeAt(0);
    await fsp.writeFile(file, bytes);
    const e = leftOf(await loadCheckpointFile(file));
    expect(e._tag).toBe('CheckpointChecksumMismatch');
  });

  it('a part and a tensor named __proto__ are saved and loaded as own names (no pollution)', async () => {
    const file = path.join(dir, 'latest.safetensors');
    const model = { dtype: 'F32' as const, shape: [2], data: new Float32Array([5, 6]) };
    const modelTensors = {};
    Object.defineProperty(modelTensors, '__proto__', { value: model, enumerable: true });
    const parts = {};
    Object.defineProperty(parts, '__proto__', {
      value: { json: { a: 1 }, tensors: modelTensors },
      enumerable: true,
    });
    expect(await saveCheckpointFile(file, { state: { epoch: 1 }, parts })).toEqual(E.right(file));
    const loaded = await loadCheckpointFile(file);
    if (E.isLeft(loaded)) throw new Error(loaded.left.message);
    expect(Object.keys(loaded.right.parts)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(loaded.right.parts)).toBe(Object.prototype);
    const part = Object.getOwnPropertyDescriptor(loaded.right.parts, '__proto__')?.value as {
      json: unknown;
      tensors: Record<string, { data: Float32Array }>;
    };
    expect(part.json).toEqual({ a: 1 });
    expect(Object.keys(part.tensors)).toEqual(['__proto__']);
    expect(
      Array.from(
        (
          Object.getOwnPropertyDescriptor(part.tensors, '__proto__')?.value as {
            data: Float32Array;
          }
        ).data,
      ),
    ).toEqual([5, 6]);
    expect(({} as Record<string, unknown>).json).toBeUndefined();
  });

  it('a checkpoint dir that is a file is PathNotADirectory with the fix', async () => {
    const file = path.join(dir, 'checkpoints');
    await fsp.writeFile(file, 'not a folder');
    const e = leftOf(await saveCheckpointFiles(file, payloadFor(1), ['latest']));
    expect(e._tag).toBe('PathNotADirectory');
    expect(e.message).toBe(
      `cannot create the folder ${file}: a file of that name is in the way (EEXIST); remove or rename it, or point checkpointDir / dir elsewhere`,
    );
  });
});
