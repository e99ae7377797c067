/**
 * Issue 11 item 4: a full disk while a checkpoint is written. The save is a `DiskFull` naming the
 * file, the temporary file is removed, the previous checkpoint stays loadable, and no rejected
 * write promise escapes (the writer overlaps piece writes with checksum work).
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadCheckpointFile,
  saveCheckpointFile,
  type CheckpointPayload,
} from '../../../src/effects/checkpoint/checkpointFile.js';
import { isTempName } from '../../../src/effects/storage/atomic.js';
import { faultyFs } from '../../helpers/faultyFs.js';
import { payloadFor } from '../../helpers/checkpointHelpers.js';
import { NO_TMPFS, canMountTmpfs, mountTmpfs, type Tmpfs } from '../../fixtures/tmpfs.js';

const MiB = 1 << 20;

/** A checkpoint of about `mib` MiB: several 8 MiB pieces, so that a non-final write can fail. */
const bigPayload = (mib: number): CheckpointPayload => ({
  state: { epoch: 99 },
  parts: {
    model: {
      tensors: {
        w: {
          dtype: 'F32',
          shape: [mib * (MiB / 4)],
          data: new Float32Array(mib * (MiB / 4)).fill(1),
        },
      },
    },
  },
});

/** Collects unhandled rejections while `run` runs and for a few turns of the event loop after. */
const unhandledDuring = async (run: () => Promise<void>): Promise<unknown[]> => {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(reason);
  };
  process.on('unhandledRejection', onRejection);
  try {
    await run();
    // Unhandled rejections are reported after the microtask queue drains: let it, a few times.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  return seen;
};

const tempsIn = async (d: string): Promise<string[]> =>
  (await fsp.readdir(d)).filter((n) => isTempName(n));

describe('a failed write in the checkpoint writer (injected faults)', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-ckfull-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  // The writer writes the tensor data in 8 MiB pieces, then the header: fail the 1st, 2nd, 3rd
  // piece (non-final writes, overlapped with checksumming) and the last data piece.
  it.each([
    ['the first piece', 0],
    ['the first piece, part way', MiB],
    ['the second piece', 8 * MiB + 10],
    ['the third (last data) piece', 16 * MiB + 10],
  ])(
    '%s: a DiskFull naming the file, no temp file, the previous one intact, nothing unhandled',
    async (_, bytes) => {
      const file = path.join(dir, 'latest.safetensors');
      const first = await saveCheckpointFile(file, payloadFor(1));
      expect(E.isRight(first)).toBe(true);
      let result: Awaited<ReturnType<typeof saveCheckpointFile>> | undefined;
      const unhandled = await unhandledDuring(async () => {
        result = await saveCheckpointFile(file, bigPayload(20), {
          fs: faultyFs({ failWriteAfter: { bytes, code: 'ENOSPC' }, only: '.tmp-' }),
        });
      });
      expect(unhandled).toEqual([]);
      expect(result !== undefined && E.isLeft(result) ? result.left : undefined).toMatchObject({
        _tag: 'DiskFull',
        path: file,
      });
      expect(await tempsIn(dir)).toEqual([]);
      const loaded = await loadCheckpointFile(file);
      expect(E.isRight(loaded) ? loaded.right.state : loaded.left.message).toEqual(
        payloadFor(1).state,
      );
    },
  );
});

describe.skipIf(!canMountTmpfs)(
  canMountTmpfs
    ? 'a full disk under the checkpoint (a 12 MiB tmpfs)'
    : `a full disk: skipped, ${NO_TMPFS}`,
  () => {
    let disk: Tmpfs | undefined;
    beforeEach(() => {
      disk = mountTmpfs('12m');
    });
    afterEach(() => {
      disk?.unmount();
      disk = undefined;
    });

    it('a 20 MiB checkpoint on 12 MiB: DiskFull naming the file; the previous latest still loads', async () => {
      if (disk === undefined) throw new Error('no tmpfs');
      const file = path.join(disk.dir, 'checkpoints', 'latest.safetensors');
      const first = await saveCheckpointFile(file, payloadFor(1));
      expect(E.isRight(first)).toBe(true);
      let message = '';
      const unhandled = await unhandledDuring(async () => {
        const saved = await saveCheckpointFile(file, bigPayload(20));
        expect(E.isLeft(saved) ? saved.left._tag : 'saved').toBe('DiskFull');
        if (E.isLeft(saved)) message = saved.left.message;
      });
      expect(unhandled).toEqual([]);
      expect(message).toContain(file);
      expect(message).toContain('free space');
      expect(await tempsIn(path.dirname(file))).toEqual([]);
      const loaded = await loadCheckpointFile(file);
      expect(E.isRight(loaded) ? loaded.right.state : loaded.left.message).toEqual(
        payloadFor(1).state,
      );
      // The space the failed save took is back: a checkpoint that fits saves.
      const again = await saveCheckpointFile(file, bigPayload(8));
      expect(E.isRight(again) ? 'saved' : again.left.message).toBe('saved');
    });
  },
);
