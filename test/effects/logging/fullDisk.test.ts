/**
 * Issue 11 item 4: a full disk under the run log, the metric files and the TensorBoard event file
 * is an error value naming the file, never a throw out of `logger.info` or an unhandled rejection.
 * A real full disk: a small tmpfs.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openMetricsFiles, writeResult } from '../../../src/effects/logging/metrics.js';
import { createRunLogger, openRunLogFile } from '../../../src/effects/logging/runLogger.js';
import { openEventWriter } from '../../../src/effects/logging/tensorboard.js';
import type { FsError } from '../../../src/effects/storage/atomic.js';
import { NO_TMPFS, canMountTmpfs, mountTmpfs, type Tmpfs } from '../../fixtures/tmpfs.js';

/** An in-memory stdout that is not a TTY: counts the JSON lines it gets. */
const memory = () => {
  let lines = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines += chunk.toString().split('\n').length - 1;
      done();
    },
  });
  return { stream, lines: () => lines };
};

const PAD = 'x'.repeat(200);

let disk: Tmpfs | undefined;
beforeEach(() => {
  disk = canMountTmpfs ? mountTmpfs('256k') : undefined;
});
afterEach(() => {
  disk?.unmount();
  disk = undefined;
});
const full = (): string => {
  if (disk === undefined) throw new Error('no tmpfs');
  return disk.dir;
};

describe.skipIf(!canMountTmpfs)(
  canMountTmpfs ? 'a full disk (a 256 KiB tmpfs)' : `a full disk: skipped, ${NO_TMPFS}`,
  () => {
    it('run.log: logger.info never throws; the first error is a DiskFull naming the file; stdout goes on', () => {
      const file = join(full(), 'run', 'run.log');
      const out = memory();
      const reported: FsError[] = [];
      const logger = createRunLogger({
        logPath: file,
        stdout: out.stream,
        onFileError: (e) => reported.push(e),
      });
      const lines = 4000; // 4000 * ~260 bytes: about 1 MB into 256 KiB
      for (let i = 0; i < lines; i++) logger.info({ i, pad: PAD }, 'line');
      // Every line reached stdout, plus the one error line naming the file.
      expect(out.lines()).toBe(lines + 1);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({ _tag: 'DiskFull', code: 'ENOSPC', path: file });
      expect(reported[0]?.message).toContain(file);
      expect(reported[0]?.message).toContain('free space');
      // Whole lines only: every line the file kept parses.
      const kept = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '');
      expect(kept.length).toBeGreaterThan(0);
      for (const l of kept) expect(() => JSON.parse(l) as unknown).not.toThrow();
    });

    it('run.log opened first: fileError() gives the same error, and logging after it is a no-op on the file', () => {
      const file = join(full(), 'run.log');
      const opened = openRunLogFile(file);
      if (E.isLeft(opened)) throw new Error(opened.left.message);
      const out = memory();
      const logger = createRunLogger({ file: opened.right, stdout: out.stream });
      expect(opened.right.fileError()).toBeUndefined();
      for (let i = 0; i < 4000; i++) logger.info({ i, pad: PAD }, 'line');
      const error = opened.right.fileError();
      expect(error).toMatchObject({ _tag: 'DiskFull', path: file });
      logger.warn('after the error');
      expect(out.lines()).toBe(4002); // 4000 lines, the error line, the warning
      expect(opened.right.fileError()).toBe(error);
    });

    it('metric files: a full disk is a Left naming the file; no torn row survives it', async () => {
      const dir = join(full(), 'run');
      mkdirSync(dir);
      const files = openMetricsFiles(dir);
      const writers = { files, now: () => 100 };
      let error: FsError | undefined;
      let ok = 0;
      for (let step = 1; step < 5000 && error === undefined; step++) {
        const r = await writeResult(writers, { loss: step, note: step }, `train-${PAD}`, step);
        if (E.isLeft(r)) error = r.left as FsError;
        else ok++;
      }
      expect(error?._tag).toBe('DiskFull');
      expect(error?.message).toContain(dir);
      expect([files.jsonl, files.csv]).toContain(error?.path);
      expect(ok).toBeGreaterThan(0);
    });

    it('metric files: after a failed append and freed space, no written row is lost', async () => {
      const dir = join(full(), 'run');
      const filler = join(full(), 'filler');
      mkdirSync(dir);
      const files = openMetricsFiles(dir);
      const writers = { files, now: () => 100 };
      await writeResult(writers, { loss: 0 }, 'train', 0);
      // Fill the disk so that the next rows fail part way.
      try {
        writeFileSync(filler, Buffer.alloc(1 << 20));
      } catch {
        // ENOSPC: the filler took what it could
      }
      const written: number[] = [0];
      let failed = 0;
      for (let step = 1; step < 200; step++) {
        const r = await writeResult(writers, { loss: step }, `train-${PAD}`, step);
        if (E.isRight(r)) written.push(step);
        else failed++;
      }
      expect(failed).toBeGreaterThan(0);
      writeFileSync(filler, '');
      for (let step = 200; step < 203; step++) {
        const r = await writeResult(writers, { loss: step }, `train-${PAD}`, step);
        expect(E.isLeft(r) ? r.left.message : 'ok').toBe('ok');
        written.push(step);
      }
      const steps = readFileSync(files.jsonl, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as { step: number }).step);
      expect(steps).toEqual(written);
    });

    it('TensorBoard: a full disk never throws; error() names the event file', () => {
      const writer = openEventWriter(join(full(), 'tb'), { now: () => 1, host: 'h' });
      for (let step = 0; step < 20000; step++) writer.addScalar(`train/${PAD}`, step, step);
      writer.flush();
      const error = writer.error();
      expect(error).toMatchObject({ _tag: 'DiskFull', path: writer.path });
      expect(error?.message).toContain(writer.path);
      writer.close();
    });

    it('TensorBoard through writeResult: the full disk is a Left, not a rejection', async () => {
      const events = openEventWriter(join(full(), 'tb'), { now: () => 1, host: 'h' });
      let error: FsError | undefined;
      for (let step = 0; step < 20000 && error === undefined; step++) {
        const r = await writeResult({ events, now: () => 1 }, { [PAD]: step }, 'train', step);
        if (E.isLeft(r)) error = r.left as FsError;
      }
      expect(error).toMatchObject({ _tag: 'DiskFull', path: events.path });
      events.close();
    });
  },
);
