/**
 * One writer per run dir: `<dir>/.lock` holds the owner's pid, host, start time, a random token
 * and (on Linux) the holder process's start time in clock ticks since boot and the boot id. The
 * record is written whole under a temporary name and hard-linked into place (`link` fails when the
 * lock exists), so a lock file is never empty or half written by danling.
 *
 * Whether a lock is stale:
 * - on this host: its pid is dead, or the pid is alive but is another process (its start time or
 *   the boot id differs from the record: pid reuse, a reboot). Without `/proc` only a dead pid is
 *   stale.
 * - on another host: its heartbeat is older than the lease. The holder refreshes the lock file's
 *   mtime every `heartbeatMs` (default 30 s); a lock whose mtime is more than `leaseMs` old
 *   (default 5 min, ten missed heartbeats) belongs to a run that is gone (SIGKILLed, its node
 *   lost). The hosts' clocks must agree to well within the lease.
 * - a lock that cannot be read is never taken over (`LockUnreadable`): its holder is unknown.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import {
  fsError,
  fsyncDir,
  isPidAlive,
  nodeFs,
  tempPathFor,
  tryFs,
  writeAll,
  type FileSystem,
  type FsError,
} from './atomic.js';

/** The name of the lock file in a run dir. */
export const LOCK_NAME = '.lock';

/** How often a holder refreshes its lock's mtime, by default: 30 s. */
export const DEFAULT_HEARTBEAT_MS = 30_000;

/** How old another host's heartbeat may be before its lock is stale, by default: 5 min. */
export const DEFAULT_LEASE_MS = 5 * 60_000;

/** What a lock file says about its holder. */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When the holder took the lock, ISO 8601. */
  readonly startedAt: string;
  readonly token: string;
  /** The holder process's start time, clock ticks since boot (field 22 of `/proc/<pid>/stat`). */
  readonly procStart?: string;
  /** `/proc/sys/kernel/random/boot_id` when the lock was taken. */
  readonly bootId?: string;
}

/** Another live process holds the lock. */
export interface LockHeld {
  readonly _tag: 'LockHeld';
  readonly path: string;
  readonly holder: LockHolder;
  readonly message: string;
}

/** The lock file exists but is not a lock record: its holder is unknown, so it is not taken over. */
export interface LockUnreadable {
  readonly _tag: 'LockUnreadable';
  readonly path: string;
  readonly message: string;
}

/** Why a run lock was not taken. */
export type LockError = LockHeld | LockUnreadable;

/** A stale lock (dead or reused pid on this host, expired lease on another) was taken over. */
export interface StaleLockTakenOver {
  readonly _tag: 'StaleLockTakenOver';
  readonly path: string;
  readonly previous: LockHolder;
  readonly message: string;
}

/** A held run lock. */
export interface RunLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Set when a stale lock had to be taken over. */
  readonly warnings: readonly StaleLockTakenOver[];
  /** Stops the heartbeat and removes the lock file if it is still this one. */
  readonly release: () => Promise<E.Either<FsError, void>>;
}

/** Options of {@link acquireRunLock}. */
export interface LockOptions {
  readonly fs?: FileSystem;
  /** The clock for `startedAt` and lease ages (default `Date.now`). */
  readonly now?: () => number;
  /** How often the holder refreshes the lock's mtime (default {@link DEFAULT_HEARTBEAT_MS}). */
  readonly heartbeatMs?: number;
  /** Another host's lock with an older heartbeat is stale (default {@link DEFAULT_LEASE_MS}). */
  readonly leaseMs?: number;
  /** The host name recorded and compared (default `os.hostname()`). */
  readonly hostname?: string;
  /** Where `/proc` is (default `/proc`); a missing one falls back to pid liveness alone. */
  readonly procDir?: string;
}

const parseHolder = (bytes: Uint8Array): LockHolder | null => {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Partial<LockHolder> | null;
    return typeof v === 'object' &&
      v !== null &&
      typeof v.pid === 'number' &&
      typeof v.hostname === 'string' &&
      typeof v.startedAt === 'string' &&
      typeof v.token === 'string' &&
      (v.procStart === undefined || typeof v.procStart === 'string') &&
      (v.bootId === undefined || typeof v.bootId === 'string')
      ? (v as LockHolder)
      : null;
  } catch {
    return null;
  }
};

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), or undefined. */
const procStartOf = async (procDir: string, pid: number): Promise<string | undefined> => {
  try {
    const text = await fsp.readFile(path.join(procDir, String(pid), 'stat'), 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const start = fields[19];
    return start !== undefined && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
};

const bootIdOf = async (procDir: string): Promise<string | undefined> => {
  try {
    const id = (await fsp.readFile(path.join(procDir, 'sys/kernel/random/boot_id'), 'utf8')).trim();
    return id === '' ? undefined : id;
  } catch {
    return undefined;
  }
};

/** `4 min 59 s`. */
const duration = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)} min ${s % 60} s`;
};

interface Context {
  readonly file: string;
  readonly host: string;
  readonly procDir: string;
  readonly leaseMs: number;
  readonly now: () => number;
  readonly self: LockHolder;
}

/** Why `holder` is stale (the warning's reason), or `undefined` when it is live. */
const staleReason = async (
  ctx: Context,
  holder: LockHolder,
  mtimeMs: number,
): Promise<string | undefined> => {
  if (holder.hostname !== ctx.host) {
    const age = ctx.now() - mtimeMs;
    return age > ctx.leaseMs
      ? `took over the lock ${ctx.file} of pid ${holder.pid} on ${holder.hostname}: its last heartbeat is ${duration(age)} old, past the ${duration(ctx.leaseMs)} lease (that run is gone)`
      : undefined;
  }
  const taken = `took over the stale lock ${ctx.file} of pid ${holder.pid}`;
  if (holder.bootId !== undefined && ctx.self.bootId !== undefined) {
    if (holder.bootId !== ctx.self.bootId)
      return `${taken}: it was taken before this machine rebooted`;
  }
  if (holder.pid === process.pid) {
    if (holder.procStart !== undefined && ctx.self.procStart !== undefined)
      return holder.procStart === ctx.self.procStart && holder.bootId === ctx.self.bootId
        ? undefined
        : `${taken}: that pid is now this process (it started after the lock was taken)`;
    // Without /proc: a lock that predates this process is a previous process's (pid reuse).
    const started = Date.now() - process.uptime() * 1000;
    return Date.parse(holder.startedAt) < started - 1000
      ? `${taken}: that pid is now this process (it started after the lock was taken)`
      : undefined;
  }
  if (!isPidAlive(holder.pid)) return `${taken} (no longer running)`;
  if (holder.procStart === undefined || holder.bootId !== ctx.self.bootId) return undefined;
  const now = await procStartOf(ctx.procDir, holder.pid);
  return now !== undefined && now !== holder.procStart
    ? `${taken}: that pid is now another process (it started after the lock was taken)`
    : undefined;
};

const heldError = (ctx: Context, holder: LockHolder, mtimeMs: number): LockHeld => {
  const { file } = ctx;
  const base =
    `run dir ${path.dirname(file)} is in use by pid ${holder.pid} on ${holder.hostname} ` +
    `(since ${holder.startedAt}); stop that process, or use another dir`;
  if (holder.hostname === ctx.host) return { _tag: 'LockHeld', path: file, holder, message: base };
  const left = ctx.leaseMs - (ctx.now() - mtimeMs);
  return {
    _tag: 'LockHeld',
    path: file,
    holder,
    message:
      `${base}; its lease expires in ${duration(left)} if its heartbeat stops (the run was killed), ` +
      `and then the lock is taken over; to clear it now, check that no run is live on ${holder.hostname}, then delete ${file}`,
  };
};

const unreadable = (file: string): LockUnreadable => ({
  _tag: 'LockUnreadable',
  path: file,
  message: `run lock ${file} cannot be read (not a lock record), so its holder is unknown: check that no run is live on ${path.dirname(file)} (ps, squeue), then delete ${file}`,
});

/** Creates `file` holding `bytes`, failing with EEXIST when it exists; never leaves it partial. */
const createWhole = async (fs: FileSystem, file: string, bytes: Uint8Array): Promise<void> => {
  const temp = tempPathFor(file);
  const handle = await fs.open(temp, 'wx', 0o644);
  try {
    await writeAll(handle, [bytes]);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(temp, file);
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    if (code === 'EEXIST') throw cause;
    // No hard links here (some network or FUSE file systems): O_EXCL create and write.
    const direct = await fs.open(file, 'wx', 0o644);
    try {
      await writeAll(direct, [bytes]);
      await direct.sync();
    } finally {
      await direct.close();
    }
  } finally {
    await fs.unlink(temp).catch(() => undefined);
  }
};

/**
 * Takes the run lock of `dir` (creating `dir` if needed). Fails fast with `LockHeld` naming the
 * holder when a live process has it (for another host's lock: when its lease expires and how to
 * clear it by hand), with `LockUnreadable` when the lock file is not a lock record. Takes over a
 * stale lock (see the module comment) with a `StaleLockTakenOver` warning. Take-over renames the
 * stale file aside and checks it is still the stale one, so two processes racing for a stale lock
 * cannot both win. While held, an `unref()`ed timer refreshes the lock's mtime (the heartbeat).
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
): Promise<E.Either<LockError | FsError, RunLock>> => {
  const fs = options.fs ?? nodeFs;
  const now = options.now ?? Date.now;
  const file = path.join(dir, LOCK_NAME);
  const made = await tryFs('create the folder', dir, () => fs.mkdir(dir));
  if (E.isLeft(made)) return made;
  const procDir = options.procDir ?? '/proc';
  const host = options.hostname ?? osHostname();
  const [procStart, bootId] = await Promise.all([
    procStartOf(procDir, process.pid),
    bootIdOf(procDir),
  ]);
  const holder: LockHolder = {
    pid: process.pid,
    hostname: host,
    startedAt: new Date(now()).toISOString(),
    token: randomBytes(16).toString('hex'),
    ...(procStart === undefined ? {} : { procStart }),
    ...(bootId === undefined ? {} : { bootId }),
  };
  const ctx: Context = {
    file,
    host,
    procDir,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    now,
    self: holder,
  };
  const warnings: StaleLockTakenOver[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await createWhole(fs, file, Buffer.from(`${JSON.stringify(holder)}\n`));
      await fsyncDir(fs, dir);
      return E.right(
        heldLock(fs, file, holder, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, now, warnings),
      );
    } catch (cause) {
      const e = fsError('create', file, cause);
      if (e.code !== 'EEXIST') return E.left(e);
    }
    let current: LockHolder | null;
    let mtimeMs: number;
    try {
      const info = await fs.stat(file);
      mtimeMs = info.mtimeMs;
      current = parseHolder(await fs.readFile(file));
    } catch (cause) {
      const e = fsError('read', file, cause);
      if (e._tag === 'FileNotFound') continue;
      return E.left(e);
    }
    if (current === null) return E.left(unreadable(file));
    const reason = await staleReason(ctx, current, mtimeMs);
    if (reason === undefined) return E.left(heldError(ctx, current, mtimeMs));
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fs.rename(file, aside);
    } catch (cause) {
      if (fsError('rename', file, cause)._tag === 'FileNotFound') continue;
      return E.left(fsError('rename', file, cause));
    }
    const moved = await fs.readFile(aside).then(parseHolder, () => null);
    // A heartbeat between our stat and our rename means the holder is alive after all.
    const beat = await fs.stat(aside).then(
      (info) => info.mtimeMs !== mtimeMs,
      () => false,
    );
    if (moved?.token !== current.token || beat) {
      // Another process replaced the stale lock between our read and our rename: put it back.
      await fs.link(aside, file).catch(() => undefined);
      await fs.unlink(aside).catch(() => undefined);
      return E.left(moved === null ? unreadable(file) : heldError(ctx, moved, now()));
    }
    await fs.unlink(aside).catch(() => undefined);
    warnings.push({ _tag: 'StaleLockTakenOver', path: file, previous: current, message: reason });
  }
  return E.left(fsError('create', file, new Error('the lock kept changing; try again')));
};

const heldLock = (
  fs: FileSystem,
  file: string,
  holder: LockHolder,
  heartbeatMs: number,
  now: () => number,
  warnings: readonly StaleLockTakenOver[],
): RunLock => {
  let beating = false;
  const timer = setInterval(() => {
    if (beating) return;
    beating = true;
    const t = now() / 1000;
    // A failed heartbeat is retried at the next tick; the lease allows ten to be missed.
    fs.utimes(file, t, t)
      .catch(() => undefined)
      .finally(() => {
        beating = false;
      });
  }, heartbeatMs);
  timer.unref();
  return {
    path: file,
    holder,
    warnings,
    release: () => {
      clearInterval(timer);
      return releaseLock(fs, file, holder);
    },
  };
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
