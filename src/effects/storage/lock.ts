/**
 * One writer per run dir: `<dir>/.lock`, created with `O_EXCL`, holds the owner's pid, host, start
 * time and a random token. A second process fails fast naming the holder; a lock whose pid is dead
 * on this host is taken over with a warning.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import {
  fsError,
  fsyncDir,
  isPidAlive,
  nodeFs,
  tryFs,
  writeAll,
  type FileSystem,
  type FsError,
} from './atomic.js';

/** The name of the lock file in a run dir. */
export const LOCK_NAME = '.lock';

/** What a lock file says about its holder. */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When the holder took the lock, ISO 8601. */
  readonly startedAt: string;
  readonly token: string;
}

/** Another live process holds the lock. */
export interface LockHeld {
  readonly _tag: 'LockHeld';
  readonly path: string;
  readonly holder: LockHolder;
  readonly message: string;
}

/** A stale lock (dead pid on this host) was taken over. */
export interface StaleLockTakenOver {
  readonly _tag: 'StaleLockTakenOver';
  readonly path: string;
  readonly previous: LockHolder | null;
  readonly message: string;
}

/** A held run lock. */
export interface RunLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Set when a stale lock had to be taken over. */
  readonly warnings: readonly StaleLockTakenOver[];
  /** Removes the lock file if it is still this one. */
  readonly release: () => Promise<E.Either<FsError, void>>;
}

/** Options of {@link acquireRunLock}. */
export interface LockOptions {
  readonly fs?: FileSystem;
  /** The clock for `startedAt` (default `Date.now`). */
  readonly now?: () => number;
}

const parseHolder = (bytes: Uint8Array): LockHolder | null => {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Partial<LockHolder>;
    return typeof v.pid === 'number' &&
      typeof v.hostname === 'string' &&
      typeof v.startedAt === 'string' &&
      typeof v.token === 'string'
      ? (v as LockHolder)
      : null;
  } catch {
    return null;
  }
};

/**
 * Whether a holder is gone: same host and its pid is not alive (or is ours but the lock predates
 * this process). A holder on another host is never stale (its pid cannot be checked from here).
 * An unreadable lock file (a crash between create and write) counts as stale.
 */
const isStale = (holder: LockHolder | null): boolean => {
  if (holder === null) return true;
  if (holder.hostname !== hostname()) return false;
  if (holder.pid === process.pid) {
    // Our own pid: either this process already holds it (not stale), or a previous process that
    // had the same pid (pid reuse, e.g. pid 1 in a container) left it before we started.
    const started = Date.now() - process.uptime() * 1000;
    return Date.parse(holder.startedAt) < started - 1000;
  }
  return !isPidAlive(holder.pid);
};

const heldError = (file: string, holder: LockHolder): LockHeld => ({
  _tag: 'LockHeld',
  path: file,
  holder,
  message:
    `run dir ${path.dirname(file)} is in use by pid ${holder.pid} on ${holder.hostname} ` +
    `(since ${holder.startedAt}); stop that process, or use another dir` +
    (holder.hostname === hostname() ? '' : `; if it is gone, remove ${file}`),
});

/**
 * Takes the run lock of `dir` (creating `dir` if needed). Fails fast with `LockHeld` naming the
 * holder's pid when a live process has it; takes over a stale lock (dead pid on this host) with a
 * `StaleLockTakenOver` warning. Take-over renames the stale file aside and checks it is still the
 * stale one, so two processes racing for a stale lock cannot both win.
 *
 * @example
 * ```ts
 * const lock = await acquireRunLock(runDir);
 * if (E.isLeft(lock)) throw new Error(lock.left.message);
 * try { ... } finally { await lock.right.release(); }
 * ```
 */
export const acquireRunLock = async (
  dir: string,
  options: LockOptions = {},
): Promise<E.Either<LockHeld | FsError, RunLock>> => {
  const fs = options.fs ?? nodeFs;
  const file = path.join(dir, LOCK_NAME);
  const made = await tryFs('create the folder', dir, () => fs.mkdir(dir));
  if (E.isLeft(made)) return made;
  const holder: LockHolder = {
    pid: process.pid,
    hostname: hostname(),
    startedAt: new Date((options.now ?? Date.now)()).toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const warnings: StaleLockTakenOver[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await fs.open(file, 'wx', 0o644);
      try {
        await writeAll(handle, [Buffer.from(`${JSON.stringify(holder)}\n`)]);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fsyncDir(fs, dir);
      return E.right({
        path: file,
        holder,
        warnings,
        release: () => releaseLock(fs, file, holder),
      });
    } catch (cause) {
      const e = fsError('create', file, cause);
      if (e.code !== 'EEXIST') return E.left(e);
    }
    let current: LockHolder | null;
    try {
      current = parseHolder(await fs.readFile(file));
    } catch (cause) {
      const e = fsError('read', file, cause);
      if (e._tag === 'FileNotFound') continue;
      return E.left(e);
    }
    if (!isStale(current) && current !== null) return E.left(heldError(file, current));
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fs.rename(file, aside);
    } catch (cause) {
      if (fsError('rename', file, cause)._tag === 'FileNotFound') continue;
      return E.left(fsError('rename', file, cause));
    }
    const moved = await fs.readFile(aside).then(parseHolder, () => null);
    if (current !== null && moved?.token !== current.token && moved !== null) {
      // Another process replaced the stale lock between our read and our rename: put it back.
      await fs.link(aside, file).catch(() => undefined);
      await fs.unlink(aside).catch(() => undefined);
      return E.left(heldError(file, moved));
    }
    await fs.unlink(aside).catch(() => undefined);
    warnings.push({
      _tag: 'StaleLockTakenOver',
      path: file,
      previous: current,
      message:
        current === null
          ? `took over the unreadable lock ${file}`
          : `took over the stale lock ${file} of pid ${current.pid} (no longer running)`,
    });
  }
  return E.left(fsError('create', file, new Error('the lock kept changing; try again')));
};

const releaseLock = async (
  fs: FileSystem,
  file: string,
  holder: LockHolder,
): Promise<E.Either<FsError, void>> => {
  let current: LockHolder | null;
  try {
    current = parseHolder(await fs.readFile(file));
  } catch (cause) {
    const e = fsError('read', file, cause);
    return e._tag === 'FileNotFound' ? E.right(undefined) : E.left(e);
  }
  if (current?.token !== holder.token) return E.right(undefined);
  return tryFs('remove', file, () => fs.unlink(file));
};
