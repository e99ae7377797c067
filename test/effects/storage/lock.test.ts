import { spawn, type ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import * as E from 'fp-ts/lib/Either.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
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

  it('an unreadable lock file (crash between create and write) is taken over', async () => {
    await fsp.writeFile(path.join(dir, LOCK_NAME), '');
    const lock = await acquireRunLock(dir);
    expect(E.isRight(lock) && lock.right.warnings.map((w) => w.message)).toEqual([
      `took over the unreadable lock ${path.join(dir, LOCK_NAME)}`,
    ]);
  });

  it('a lock held on another host is never taken over', async () => {
    const other = {
      pid: 1,
      hostname: `not-${hostname()}`,
      startedAt: '2020-01-01T00:00:00.000Z',
      token: 'x',
    };
    await fsp.writeFile(path.join(dir, LOCK_NAME), JSON.stringify(other));
    const lock = await acquireRunLock(dir);
    expect(E.isLeft(lock) && lock.left.message).toBe(
      `run dir ${dir} is in use by pid 1 on not-${hostname()} (since 2020-01-01T00:00:00.000Z); stop that process, or use another dir; if it is gone, remove ${path.join(dir, LOCK_NAME)}`,
    );
  });
});
