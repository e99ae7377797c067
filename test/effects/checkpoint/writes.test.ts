/**
 * How many writes a checkpoint file takes (issue 13): each is a round trip through the thread
 * pool, which a busy training loop serves once per batch, so small tensors go out together.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import {
  loadCheckpointFile,
  saveCheckpointFile,
} from '../../../src/effects/checkpoint/checkpointFile.js';
import { nodeFs, type FileSystem } from '../../../src/effects/storage/atomic.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-ckpt-writes-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The real file system, counting the writes made through the handles it opens. */
const counting = () => {
  const writes: number[] = [];
  const fs: FileSystem = {
    ...nodeFs,
    open: async (file, flags, mode) => {
      const h = await nodeFs.open(file, flags, mode);
      return {
        ...h,
        write: (buffer, offset, length, position) => {
          writes.push(length);
          return h.write(buffer, offset, length, position);
        },
        read: (b, o, l, p) => h.read(b, o, l, p),
        stat: () => h.stat(),
        sync: () => h.sync(),
        truncate: (len) => h.truncate(len),
        close: () => h.close(),
      };
    },
  };
  return { fs, writes };
};

describe('checkpoint writes', () => {
  it('a model of 12 small tensors is written in 2 writes (its data, then its header), and loads', async () => {
    const tensors = Object.fromEntries(
      Array.from({ length: 12 }, (_, i) => [
        `t${String(i)}`,
        { dtype: 'F32' as const, shape: [4, 4], data: new Float32Array(16).fill(i) },
      ]),
    );
    const { fs, writes } = counting();
    const path = join(root, 'latest.safetensors');
    const saved = await saveCheckpointFile(
      path,
      { state: { k: 1 }, parts: { model: { tensors } } },
      { fs },
    );
    expect(saved).toEqual(E.right(path));
    // Before: one write per tensor and one for the header (13).
    expect(writes.length).toBe(2);
    const loaded = await loadCheckpointFile(path);
    expect(E.isRight(loaded) && loaded.right.parts['model']?.tensors?.['t7']?.data).toEqual(
      new Float32Array(16).fill(7),
    );
  });
});
