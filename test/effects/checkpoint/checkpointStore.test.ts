import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTempName } from '../../../src/effects/storage/atomic.js';
import {
  checkParts,
  loadCheckpointFile,
  type CheckpointPayload,
} from '../../../src/effects/checkpoint/checkpointFile.js';
import {
  checkDir,
  checkpointPath,
  findLatestValid,
  listCheckpoints,
  saveCheckpointFiles,
} from '../../../src/effects/checkpoint/checkpointStore.js';
import { planCheckpoint } from '../../../src/state/runner/checkpointPlan.js';
import { faultyFs } from '../../helpers/faultyFs.js';
import { FakeModel, payloadFor, reseal } from '../../helpers/checkpointHelpers.js';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-store-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const epochOf = async (file: string): Promise<unknown> => {
  const loaded = await loadCheckpointFile(file);
  if (E.isLeft(loaded)) throw new Error(loaded.left.message);
  return (loaded.right.state as { epoch: number }).epoch;
};

const save = async (k: number, saveInterval = 1, isBest = false, maxToKeep?: number) => {
  const plan = planCheckpoint({ epoch: k, saveInterval, isBest });
  const r = await saveCheckpointFiles(
    dir,
    payloadFor(k),
    plan,
    maxToKeep === undefined ? {} : { maxToKeep },
  );
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

describe('saveCheckpointFiles', () => {
  it('writes latest and links best / epoch-N to the committed latest', async () => {
    const saved = await save(4, 5, true);
    const [latest, epoch4, best] = ['latest', 'epoch-4', 'best'].map((n) => checkpointPath(dir, n));
    expect(saved).toEqual({ written: true, paths: [latest, epoch4, best], removed: [] });
    const ino = (await fsp.stat(latest!)).ino;
    expect((await fsp.stat(best!)).ino).toBe(ino);
    expect((await fsp.stat(epoch4!)).ino).toBe(ino);
    await save(5, 5, false);
    expect(await epochOf(latest!)).toBe(5);
    expect(await epochOf(best!)).toBe(4);
    expect((await fsp.readdir(dir)).filter(isTempName)).toEqual([]);
  });

  it('keeps maxToKeep epoch-N files (highest N), and always latest and best', async () => {
    for (let k = 0; k < 6; k++) await save(k, 1, k === 1, 2);
    expect((await fsp.readdir(dir)).sort()).toEqual(
      ['best', 'epoch-4', 'epoch-5', 'latest'].map((n) => `${n}.safetensors`),
    );
    expect(await epochOf(checkpointPath(dir, 'best'))).toBe(1);
  });

  it.each([
    ['ENOSPC', 'DiskFull', 'disk full (ENOSPC); free space or change projectRoot'],
    ['EACCES', 'PermissionDenied', 'permission denied (EACCES)'],
  ])(
    'an injected %s mid-file names the path and keeps the previous checkpoint',
    async (code, tag, text) => {
      await save(1);
      const fs = faultyFs({ failWriteAfter: { bytes: 200, code } });
      const r = await saveCheckpointFiles(dir, payloadFor(2), ['latest', 'best'], { fs });
      const latest = checkpointPath(dir, 'latest');
      expect(E.isLeft(r) && r.left).toMatchObject({ _tag: tag, path: latest });
      expect(E.isLeft(r) && r.left.message).toBe(
        `cannot write ${latest}: ${text}${code === 'EACCES' ? '; make the folder writable or change projectRoot' : ''}`,
      );
      expect(await epochOf(latest)).toBe(1);
      expect((await fsp.readdir(dir)).filter(isTempName)).toEqual([]);
    },
  );

  it('a real ENOTDIR (the checkpoint dir lies under a regular file) names the path', async () => {
    await fsp.writeFile(path.join(dir, 'run'), 'a file, not a folder');
    const ck = path.join(dir, 'run', 'checkpoints');
    const r = await saveCheckpointFiles(ck, payloadFor(1), ['latest']);
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: 'PathNotADirectory', path: ck });
  });
});

describe('listCheckpoints and findLatestValid', () => {
  it('lists newest first and never lists temporary files', async () => {
    await save(0, 1, true);
    await new Promise((r) => setTimeout(r, 20));
    await save(1, 1, false);
    await fsp.writeFile(path.join(dir, `.latest.safetensors.tmp-999999-0123abcd`), 'partial');
    const listed = await listCheckpoints(dir);
    if (E.isLeft(listed)) throw new Error(listed.left.message);
    expect(listed.right.map((e) => e.name)).toEqual(['latest', 'epoch-1', 'epoch-0', 'best']);
  });

  it('an empty or missing folder has no valid checkpoint', async () => {
    expect(await findLatestValid(path.join(dir, 'none'))).toEqual(
      E.right({ checkpoint: null, skipped: [], passedOver: [] }),
    );
  });

  const damage: [string, (b: Buffer) => Uint8Array, string][] = [
    ['truncated', (b) => b.subarray(0, b.length - 7), 'CheckpointTruncated'],
    [
      'a flipped byte',
      (b) => {
        b[b.length - 1]! ^= 1;
        return b;
      },
      'CheckpointChecksumMismatch',
    ],
    ['broken JSON', (b) => reseal(b, (m) => ({ ...m, 'danling.parts': '{' })), 'CheckpointCorrupt'],
    [
      'a newer schema',
      (b) => reseal(b, (m) => ({ ...m, 'danling.schema': '99' })),
      'CheckpointSchemaTooNew',
    ],
    ['an empty file', () => new Uint8Array(0), 'CheckpointCorrupt'],
  ];
  it.each(damage)(
    'a latest that is %s is skipped with a warning; the previous one loads',
    async (_, hurt, tag) => {
      await save(3, 1, true);
      await new Promise((r) => setTimeout(r, 20));
      await save(4, 1, true);
      // latest, best and epoch-4 share one inode: damage it through a fresh file for latest only
      const latest = checkpointPath(dir, 'latest');
      const bytes = Buffer.from(await fsp.readFile(latest));
      await fsp.unlink(latest);
      await fsp.writeFile(latest, hurt(bytes));
      const found = await findLatestValid(dir);
      if (E.isLeft(found)) throw new Error(found.left.message);
      expect(found.right.checkpoint?.path).toBe(checkpointPath(dir, 'epoch-4'));
      expect(found.right.skipped.map((s) => [s.path, s.reason._tag])).toEqual([[latest, tag]]);
      expect(found.right.skipped[0]?.message).toMatch(new RegExp(`^checkpoint ${latest}: `));
    },
  );

  it('skips every name of a damaged inode and falls back further', async () => {
    await save(3, 1, false);
    await new Promise((r) => setTimeout(r, 20));
    await save(4, 1, true);
    const latest = checkpointPath(dir, 'latest');
    const fh = await fsp.open(latest, 'r+');
    await fh.write(Buffer.from([0xff]), 0, 1, 60);
    await fh.close();
    const found = await findLatestValid(dir);
    if (E.isLeft(found)) throw new Error(found.left.message);
    expect(found.right.checkpoint?.path).toBe(checkpointPath(dir, 'epoch-3'));
    expect(found.right.skipped.map((s) => path.basename(s.path))).toEqual(
      ['latest', 'epoch-4', 'best'].map((n) => `${n}.safetensors`),
    );
  });

  it('with a parts check, a checkpoint whose tensors do not fit is skipped too', async () => {
    await save(3);
    await new Promise((r) => setTimeout(r, 20));
    const wide = payloadFor(4, 32);
    const r = await saveCheckpointFiles(dir, wide, ['latest']);
    expect(E.isRight(r)).toBe(true);
    const model = new FakeModel(payloadFor(0).parts.model!.tensors!);
    const found = await findLatestValid(dir, { check: (c) => checkParts({ model }, c) });
    if (E.isLeft(found)) throw new Error(found.left.message);
    expect(found.right.checkpoint?.path).toBe(checkpointPath(dir, 'epoch-3'));
    expect(found.right.skipped[0]?.message).toContain(
      'model/dense/kernel: expected shape [4,4], got [4,8]',
    );
  });
});

describe('checkDir', () => {
  it.each([
    ['warn', E.right({ empty: false, warnings: [{ _tag: 'DirNotEmpty' }] })],
    ['ignore', E.right({ empty: false, warnings: [] })],
    ['raise', E.left({ _tag: 'DirNotEmpty' })],
  ] as const)('a non-empty dir with %s', async (action, expected) => {
    await fsp.writeFile(path.join(dir, 'x'), '');
    expect(await checkDir(dir, action)).toMatchObject(expected);
    const r = await checkDir(dir, 'raise');
    expect(E.isLeft(r) && r.left.message).toBe(
      `Directory ${dir} is not empty; choose another dir or projectRoot, or resume with autoResume`,
    );
  });

  it('an empty or missing dir is empty', async () => {
    expect(await checkDir(dir, 'raise')).toEqual(E.right({ empty: true, warnings: [] }));
    expect(await checkDir(path.join(dir, 'no'), 'raise')).toEqual(
      E.right({ empty: true, warnings: [] }),
    );
  });

  it('an unknown action is an error', async () => {
    const r = await checkDir(dir, 'shout' as 'warn');
    expect(E.isLeft(r) && r.left.message).toBe(
      'checkDir: action should be one of warn, raise or ignore, but got "shout"',
    );
  });
});

describe('resume candidates are ranked by the progress inside them', () => {
  it('after a copy that reset file times, latest (more steps) wins over a newer-looking best', async () => {
    const at = (epoch: number, step: number): CheckpointPayload => ({
      state: { progress: { epoch, step } },
      parts: {},
    });
    expect(E.isRight(await saveCheckpointFiles(dir, at(17, 170), ['latest', 'best']))).toBe(true);
    // A later epoch that is not best: latest is rewritten (a new inode), best stays at 17.
    expect(E.isRight(await saveCheckpointFiles(dir, at(22, 220), ['latest']))).toBe(true);
    // What `cp -r` without -p does: every file gets the copy time, in any order.
    await fsp.utimes(checkpointPath(dir, 'latest'), 1000, 1000);
    await fsp.utimes(checkpointPath(dir, 'best'), 2000, 2000);
    const found = await findLatestValid(dir);
    if (E.isLeft(found)) throw new Error(found.left.message);
    expect(found.right.checkpoint?.path).toBe(checkpointPath(dir, 'latest'));
    expect(found.right.passedOver).toEqual([
      { path: checkpointPath(dir, 'best'), epoch: 17, step: 170, mtimeMs: 2_000_000 },
    ]);
  });
});
