import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  cleanupTemp,
  fsError,
  isTempName,
  linkOrCopyAtomic,
  tempPathFor,
  writeFileAtomic,
  writeJsonAtomic,
} from '../../../src/effects/storage/atomic.js';
import { NO_TMPFS, canMountTmpfs, mountTmpfs } from '../../fixtures/tmpfs.js';
import { errno, faultyFs } from '../../helpers/faultyFs.js';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-atomic-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const tempsIn = async (d: string): Promise<string[]> =>
  (await fsp.readdir(d)).filter((n) => isTempName(n));

/** A pid that certainly belonged to a process that has exited. */
const deadPid = (): number =>
  Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']));

describe('writeFileAtomic', () => {
  it('writes, replaces, and leaves no temporary file', async () => {
    const file = path.join(dir, 'sub', 'a.json');
    expect(await writeFileAtomic(file, 'one')).toEqual(E.right(file));
    expect(await fsp.readFile(file, 'utf8')).toBe('one');
    const parts = [new Uint8Array([116, 119]), new Uint8Array([111])];
    expect(await writeFileAtomic(file, parts)).toEqual(E.right(file));
    expect(await fsp.readFile(file, 'utf8')).toBe('two');
    expect(await tempsIn(path.join(dir, 'sub'))).toEqual([]);
  });

  it.each([
    ['ENOSPC', 'DiskFull', 'disk full (ENOSPC); free space or change projectRoot'],
    ['EACCES', 'PermissionDenied', 'permission denied (EACCES)'],
    ['EIO', 'FileSystemFailed', 'EIO: injected write'],
  ])('a write failing with %s half way keeps the previous file', async (code, tag, text) => {
    const file = path.join(dir, 'latest.bin');
    await fsp.writeFile(file, 'previous');
    const fs = faultyFs({ failWriteAfter: { bytes: 100, code } });
    const result = await writeFileAtomic(file, new Uint8Array(1000).fill(7), { fs });
    expect(E.isLeft(result)).toBe(true);
    if (E.isRight(result)) return;
    expect(result.left._tag).toBe(tag);
    expect(result.left.path).toBe(file);
    expect(result.left.message).toContain(file);
    expect(result.left.message).toContain(text);
    expect(await fsp.readFile(file, 'utf8')).toBe('previous');
    expect(await tempsIn(dir)).toEqual([]);
  });

  it('a failing rename keeps the previous file and removes the temporary one', async () => {
    const file = path.join(dir, 'x.txt');
    await fsp.writeFile(file, 'previous');
    const result = await writeFileAtomic(file, 'next', {
      fs: faultyFs({ fail: { rename: 'EROFS' } }),
    });
    expect(E.isLeft(result) && result.left._tag).toBe('PermissionDenied');
    expect(await fsp.readFile(file, 'utf8')).toBe('previous');
    expect(await tempsIn(dir)).toEqual([]);
  });

  it('a real ENOTDIR (a folder path through a regular file) names the path', async () => {
    await fsp.writeFile(path.join(dir, 'plain'), 'I am a file');
    const file = path.join(dir, 'plain', 'checkpoints', 'latest.safetensors');
    const result = await writeFileAtomic(file, 'x');
    expect(E.isLeft(result)).toBe(true);
    if (E.isRight(result)) return;
    expect(result.left._tag).toBe('PathNotADirectory');
    expect(result.left.message).toContain(path.join(dir, 'plain', 'checkpoints'));
  });

  it('writeJsonAtomic writes indented JSON with a final newline', async () => {
    const file = path.join(dir, 'r.json');
    await writeJsonAtomic(file, { a: [1] });
    expect(await fsp.readFile(file, 'utf8')).toBe('{\n  "a": [\n    1\n  ]\n}\n');
  });
});

describe('linkOrCopyAtomic', () => {
  it('hard-links the committed file over the target', async () => {
    const a = path.join(dir, 'latest');
    const b = path.join(dir, 'best');
    await fsp.writeFile(a, 'new');
    await fsp.writeFile(b, 'old');
    expect(await linkOrCopyAtomic(a, b)).toEqual(E.right(b));
    expect(await fsp.readFile(b, 'utf8')).toBe('new');
    expect((await fsp.stat(b)).ino).toBe((await fsp.stat(a)).ino);
    expect(await tempsIn(dir)).toEqual([]);
  });

  it('falls back to a copy where links are not supported', async () => {
    const a = path.join(dir, 'latest');
    const b = path.join(dir, 'best');
    await fsp.writeFile(a, 'bytes');
    const fs = faultyFs({ fail: { link: 'EPERM' } });
    expect(await linkOrCopyAtomic(a, b, { fs })).toEqual(E.right(b));
    expect(await fsp.readFile(b, 'utf8')).toBe('bytes');
    expect((await fsp.stat(b)).ino).not.toBe((await fsp.stat(a)).ino);
  });

  it('a missing source is a FileNotFound naming the target', async () => {
    const result = await linkOrCopyAtomic(path.join(dir, 'nope'), path.join(dir, 'best'));
    expect(E.isLeft(result) && result.left._tag).toBe('FileNotFound');
  });
});

describe('cleanupTemp', () => {
  it('removes temporary files of dead writers only', async () => {
    const dead = path.join(dir, `.latest.safetensors.tmp-${deadPid()}-0123abcd`);
    const mine = tempPathFor(path.join(dir, 'latest.safetensors'));
    await fsp.writeFile(dead, 'partial');
    await fsp.writeFile(mine, 'in progress');
    await fsp.writeFile(path.join(dir, 'latest.safetensors'), 'kept');
    expect(await cleanupTemp(dir)).toEqual(E.right([dead]));
    expect((await fsp.readdir(dir)).sort()).toEqual(
      [path.basename(mine), 'latest.safetensors'].sort(),
    );
  });

  it('a missing folder has nothing to clean', async () => {
    expect(await cleanupTemp(path.join(dir, 'nope'))).toEqual(E.right([]));
  });
});

describe('fsError', () => {
  it.each([
    [
      'ENOSPC',
      'DiskFull',
      'cannot write /r/a: disk full (ENOSPC); free space or change projectRoot',
    ],
    [
      'EDQUOT',
      'DiskFull',
      'cannot write /r/a: disk full (EDQUOT); free space or change projectRoot',
    ],
    [
      'EACCES',
      'PermissionDenied',
      'cannot write /r/a: permission denied (EACCES); make the folder writable or change projectRoot',
    ],
    [
      'EROFS',
      'PermissionDenied',
      'cannot write /r/a: permission denied (EROFS); make the folder writable or change projectRoot',
    ],
    ['ENOENT', 'FileNotFound', 'cannot write /r/a: no such file or folder (ENOENT)'],
    [
      'ENOTDIR',
      'PathNotADirectory',
      'cannot write /r/a: a part of the path is a file, not a folder (ENOTDIR); change projectRoot or dir',
    ],
    ['EIO', 'FileSystemFailed', 'cannot write /r/a: boom'],
  ])('%s -> %s', (code, tag, message) => {
    expect(fsError('write', '/r/a', errno(code, 'boom'))).toEqual({
      _tag: tag,
      op: 'write',
      path: '/r/a',
      code,
      message,
    });
  });
});

describe.skipIf(!canMountTmpfs)(
  canMountTmpfs
    ? 'writeFileAtomic on a full disk (a 256 KiB tmpfs)'
    : `full disk: skipped, ${NO_TMPFS}`,
  () => {
    it('a file larger than the free space: DiskFull naming it, no temp file, the old file kept', async () => {
      const disk = mountTmpfs('256k');
      if (disk === undefined) throw new Error('no tmpfs');
      try {
        const file = path.join(disk.dir, 'results.json');
        expect(E.isRight(await writeFileAtomic(file, 'old\n'))).toBe(true);
        const r = await writeFileAtomic(file, Buffer.alloc(1 << 20, 1));
        expect(E.isLeft(r) ? r.left : 'written').toMatchObject({
          _tag: 'DiskFull',
          op: 'write',
          path: file,
          code: 'ENOSPC',
          message: `cannot write ${file}: disk full (ENOSPC); free space or change projectRoot`,
        });
        expect(await tempsIn(disk.dir)).toEqual([]);
        expect(await fsp.readFile(file, 'utf8')).toBe('old\n');
      } finally {
        disk.unmount();
      }
    });
  },
);
