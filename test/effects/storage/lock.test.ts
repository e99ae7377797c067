import { spawn, type ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import * as E from 'fp-ts/lib/Either.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodeFs, type FileSystem } from '../../../src/effects/storage/atomic.js';
import { acquireRunLock, LOCK_NAME } from '../../../src/effects/storage/lock.js';
import { buildFixtures, type BuiltFixtures } from '../../fixtures/build.js';

let fixtures: BuiltFixtures;
let dir: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  fixtures = await buildFixtures();
});
afterAll(async () => {
  await fixtures.remove();
});
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-lock-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await fsp.rm(dir, { recursive: true, force: true });
});

interface ChildLine {
  pid: number;
  error?: { _tag: string; message: string; holder: { pid: number } };
  warnings?: string[];
}

/** Starts a lock holder child and resolves to its first line and the process. */
const holder = (...args: string[]): Promise<{ line: ChildLine; child: ChildProcess }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixtures.script('lockHolder'), dir, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    child.on('error', reject);
    createInterface({ input: child.stdout }).once('line', (text) => {
      resolve({ line: JSON.parse(text) as ChildLine, child });
    });
  });

const exited = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else
      child.once('exit', () => {
        resolve();
      });
  });

describe('acquireRunLock', () => {
  it('a second process fails fast naming the holder pid; a dead holder is taken over', async () => {
    const first = await holder();
    expect(first.line.warnings).toEqual([]);
    const second = await holder();
    expect(second.line.error?._tag).toBe('LockHeld');
    expect(second.line.error?.holder.pid).toBe(first.line.pid);
    expect(second.line.error?.message).toContain(
      `is in use by pid ${first.line.pid} on ${hostname()}`,
    );
    await exited(second.child);
    expect(second.child.exitCode).toBe(3);

    // This process is a third contender, in-process.
    const here = await acquireRunLock(dir);
    expect(E.isLeft(here) && here.left.message).toContain(`pid ${first.line.pid}`);

    first.child.kill('SIGKILL');
    await exited(first.child);
    const third = await holder();
    expect(third.line.error).toBeUndefined();
    expect(third.line.warnings).toEqual([
      `took over the stale lock ${path.join(dir, LOCK_NAME)} of pid ${first.line.pid} (no longer running)`,
    ]);
  });

  it('release removes the lock so the next process takes it without a warning', async () => {
    const first = await holder('release');
    await exited(first.child);
    await expect(fsp.stat(path.join(dir, LOCK_NAME))).rejects.toThrow();
    const lock = await acquireRunLock(dir);
    expect(E.isRight(lock) && lock.right.warnings).toEqual([]);
    if (E.isRight(lock)) {
      const again = await acquireRunLock(dir);
      expect(E.isLeft(again) && again.left._tag).toBe('LockHeld');
      expect(await lock.right.release()).toEqual(E.right(undefined));
    }
  });

  it('a lock held on another host with a fresh heartbeat is held; the message gives the lease', async () => {
    const other = {
      pid: 1,
      hostname: `not-${hostname()}`,
      startedAt: '2020-01-01T00:00:00.000Z',
      token: 'x',
    };
    const file = path.join(dir, LOCK_NAME);
    await fsp.writeFile(file, JSON.stringify(other));
    const lock = await acquireRunLock(dir);
    expect(E.isLeft(lock) && lock.left._tag).toBe('LockHeld');
    const message = E.isLeft(lock) ? lock.left.message : '';
    expect(message).toContain(
      `run dir ${dir} is in use by pid 1 on not-${hostname()} (since 2020-01-01T00:00:00.000Z)`,
    );
    expect(message).toMatch(/its lease expires in (4 min 5\d|5 min 0) s/);
    expect(message).toContain(`delete ${file}`);
    expect(await fsp.readFile(file, 'utf8')).toBe(JSON.stringify(other));
  });

  it('garbage in the lock of a live holder is LockUnreadable and is never taken over', async () => {
    const first = await holder();
    const file = path.join(dir, LOCK_NAME);
    await fsp.writeFile(file, 'garbage\n');
    const lock = await acquireRunLock(dir);
    expect(E.isLeft(lock) && lock.left._tag).toBe('LockUnreadable');
    expect(E.isLeft(lock) && lock.left.message).toBe(
      `run lock ${file} cannot be read (not a lock record), so its holder is unknown: check that no run is live on ${dir} (ps, squeue), then delete ${file}`,
    );
    expect(await fsp.readFile(file, 'utf8')).toBe('garbage\n');
    const second = await holder();
    expect(second.line.error?._tag).toBe('LockUnreadable');
    expect(first.child.exitCode).toBeNull();
  });

  it('an empty lock file is unreadable too (the lock is created whole, never empty)', async () => {
    await fsp.writeFile(path.join(dir, LOCK_NAME), '');
    const lock = await acquireRunLock(dir);
    expect(E.isLeft(lock) && lock.left._tag).toBe('LockUnreadable');
  });

  it('records the holder process start time and boot id from /proc', async () => {
    const first = await holder();
    const stat = await fsp.readFile(`/proc/${first.line.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const record = JSON.parse(await fsp.readFile(path.join(dir, LOCK_NAME), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(record).toMatchObject({
      pid: first.line.pid,
      hostname: hostname(),
      procStart: fields[19],
      bootId: (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim(),
    });
    expect(record.token).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a live pid that started after the lock was written (pid reused) is stale', async () => {
    const other = await fsp.mkdtemp(path.join(tmpdir(), 'danling-lock-other-'));
    try {
      // A live child takes the lock; its record is then rewritten with another start time: the pid
      // is a live process that is not the holder.
      await holder();
      const file = path.join(dir, LOCK_NAME);
      const record = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>;
      await fsp.rm(file);
      const bootId = (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
      const stale = { ...record, procStart: '1', bootId, token: 'dead' };
      await fsp.writeFile(file, JSON.stringify(stale));
      const held = await acquireRunLock(dir, { procDir: path.join(other, 'no-proc') });
      expect(E.isLeft(held) && held.left._tag).toBe('LockHeld');
      const lock = await acquireRunLock(dir);
      expect(E.isRight(lock) && lock.right.warnings.map((w) => w._tag)).toEqual([
        'StaleLockTakenOver',
      ]);
      expect(E.isRight(lock) && lock.right.warnings[0]?.message).toBe(
        `took over the stale lock ${file} of pid ${String(record.pid)}: that pid is now another process (it started after the lock was taken)`,
      );
      if (E.isRight(lock)) await lock.right.release();
      await fsp.writeFile(
        file,
        JSON.stringify({ ...stale, procStart: record.procStart, bootId: 'x' }),
      );
      const rebooted = await acquireRunLock(dir);
      expect(E.isRight(rebooted) && rebooted.right.warnings[0]?.message).toBe(
        `took over the stale lock ${file} of pid ${String(record.pid)}: it was taken before this machine rebooted`,
      );
      if (E.isRight(rebooted)) await rebooted.right.release();
    } finally {
      await fsp.rm(other, { recursive: true, force: true });
    }
  });

  it("another host's lock whose heartbeat is older than the lease is taken over, naming host and age", async () => {
    const file = path.join(dir, LOCK_NAME);
    const other = { pid: 1, hostname: 'node-a', startedAt: '2020-01-01T00:00:00.000Z', token: 'x' };
    await fsp.writeFile(file, JSON.stringify(other));
    const old = (Date.now() - 10 * 60_000) / 1000;
    await fsp.utimes(file, old, old);
    const lock = await acquireRunLock(dir);
    expect(E.isRight(lock) && lock.right.warnings.map((w) => w.message)).toEqual([
      `took over the lock ${file} of pid 1 on node-a: its last heartbeat is 10 min 0 s old, past the 5 min 0 s lease (that run is gone)`,
    ]);
    if (E.isRight(lock)) await lock.right.release();
  });

  it('a holder on another host keeps its lease by heartbeat; once it stops, the lock is taken over', async () => {
    const file = path.join(dir, LOCK_NAME);
    const first = await holder('hold', JSON.stringify({ hostname: 'node-a', heartbeatMs: 20 }));
    expect(first.line.error).toBeUndefined();
    const held = await acquireRunLock(dir);
    expect(E.isLeft(held) && held.left.message).toContain(`on node-a`);
    // Age the lock by hand: the holder's heartbeat makes it fresh again.
    const old = (Date.now() - 10 * 60_000) / 1000;
    await fsp.utimes(file, old, old);
    while ((await fsp.stat(file)).mtimeMs <= old * 1000 + 1000)
      await new Promise((r) => setTimeout(r, 10));
    expect(E.isLeft(await acquireRunLock(dir))).toBe(true);
    first.child.kill('SIGKILL');
    await exited(first.child);
    await fsp.utimes(file, old, old);
    const lock = await acquireRunLock(dir);
    expect(E.isRight(lock) && lock.right.warnings[0]?._tag).toBe('StaleLockTakenOver');
    if (E.isRight(lock)) await lock.right.release();
  });

  it('release stops the heartbeat', async () => {
    let beats = 0;
    const fs: FileSystem = {
      ...nodeFs,
      utimes: (file, atime, mtime) => {
        beats++;
        return nodeFs.utimes(file, atime, mtime);
      },
    };
    const lock = await acquireRunLock(dir, { fs, heartbeatMs: 5 });
    if (E.isLeft(lock)) throw new Error(lock.left.message);
    while (beats < 2) await new Promise((r) => setTimeout(r, 5));
    await lock.right.release();
    const after = beats;
    await new Promise((r) => setTimeout(r, 50));
    expect(beats).toBe(after);
  });
});
