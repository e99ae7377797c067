/**
 * Issue 11 item 4, end to end: seeded full-disk fills of a small tmpfs under a child process that
 * logs, writes metrics, TensorBoard scalars and checkpoints until the disk is full. Every fill
 * must end with exit 0 and a `DiskFull` naming a file from every writer, and the last checkpoint
 * saved before the disk filled must still load.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { loadCheckpointFile } from '../../../src/effects/checkpoint/checkpointFile.js';
import { NO_TMPFS, canMountTmpfs, mountTmpfs } from '../../fixtures/tmpfs.js';

const CHILD = fileURLToPath(new URL('../../fixtures/fullDiskWriter.ts', import.meta.url));
/** Fills in CI; `DANLING_FULL_DISK_FILLS` runs a longer campaign. */
const FILLS = Number(process.env['DANLING_FULL_DISK_FILLS'] ?? '4');

interface Outcome {
  readonly _tag: string;
  readonly path: string;
  readonly message: string;
}

describe.skipIf(!canMountTmpfs)(
  canMountTmpfs
    ? 'full-disk fills (tmpfs, child processes)'
    : `full-disk fills: skipped, ${NO_TMPFS}`,
  () => {
    it(`${FILLS} seeded fills: every writer ends in a DiskFull naming its file; no crash`, async () => {
      let clean = 0;
      for (let seed = 1; seed <= FILLS; seed++) {
        const disk = mountTmpfs('1m');
        if (disk === undefined) throw new Error('no tmpfs');
        try {
          const dir = join(disk.dir, 'run');
          mkdirSync(dir);
          // Leave a different amount of room each time.
          try {
            writeFileSync(join(disk.dir, 'filler'), Buffer.alloc(seed * 97 * 1024));
          } catch {
            // the filler itself hit the limit
          }
          const out = execFileSync(
            process.execPath,
            ['--import', 'tsx', CHILD, dir, String(seed)],
            {
              encoding: 'utf8',
            },
          );
          const result = JSON.parse(out.trim()) as Record<string, Outcome | null> & {
            lastCheckpoint: number;
          };
          for (const writer of ['log', 'metrics', 'events', 'checkpoint'] as const) {
            const e = result[writer];
            expect(e?._tag, `${writer}, seed ${String(seed)}`).toBe('DiskFull');
            expect(e?.path.startsWith(dir)).toBe(true);
            expect(e?.message).toContain(e?.path);
          }
          if (result.lastCheckpoint >= 0) {
            const loaded = await loadCheckpointFile(join(dir, 'checkpoints', 'latest.safetensors'));
            expect(E.isRight(loaded) ? loaded.right.state : loaded.left.message).toEqual({
              step: result.lastCheckpoint,
            });
          }
          clean++;
        } finally {
          disk.unmount();
        }
      }
      expect(clean).toBe(FILLS);
    });
  },
);
