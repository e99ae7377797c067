/**
 * Crash-safe file writes: write under a temporary name in the same folder, fsync the file, rename
 * it into place, fsync the folder. A reader sees the old file or the new one, never a mix; after a
 * crash only a hidden temporary file can be left over, and {@link cleanupTemp} removes it at the
 * next start.
 */
import { randomBytes } from 'node:crypto';
import * as fss from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';

/** The part of an open file that the writers use (a subset of `fs.promises.FileHandle`). */
export interface FileHandleLike {
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
  ): Promise<{ bytesWritten: number }>;
  read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  sync(): Promise<void>;
  truncate(len?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file-system calls the effects make, passed in so that tests can inject faults (a write that
 * fails with `ENOSPC` half way through a file, a rename that fails). {@link nodeFs} is the real one.
 */
export interface FileSystem {
  open(file: string, flags: string, mode?: number): Promise<FileHandleLike>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  copyFile(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  mkdir(dir: string): Promise<void>;
  readFile(file: string): Promise<Uint8Array>;
  stat(file: string): Promise<{ size: number; mtimeMs: number; ino: number; isFile(): boolean }>;
  /** Sets a file's access and modification times (seconds since the epoch); the lock's heartbeat. */
  utimes(file: string, atime: number, mtime: number): Promise<void>;
}

/** The real file system (`node:fs/promises`). */
export const nodeFs: FileSystem = {
  open: (file, flags, mode) => fsp.open(file, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
  link: (existing, newPath) => fsp.link(existing, newPath),
  copyFile: (from, to) => fsp.copyFile(from, to),
  unlink: (file) => fsp.unlink(file),
  readdir: (dir) => fsp.readdir(dir),
  mkdir: async (dir) => {
    await fsp.mkdir(dir, { recursive: true });
  },
  readFile: (file) => fsp.readFile(file),
  stat: (file) => fsp.stat(file),
  utimes: (file, atime, mtime) => fsp.utimes(file, atime, mtime),
};

/** Runs a synchronous call as a settled promise: its value, or a rejection with what it threw. */
const settled = <A>(call: () => A): Promise<A> => {
  try {
    return Promise.resolve(call());
  } catch (cause) {
    return Promise.reject(cause instanceof Error ? cause : new Error(String(cause)));
  }
};

const syncHandle = (fd: number): FileHandleLike => ({
  write: (buffer, offset, length, position) =>
    settled(() => ({ bytesWritten: fss.writeSync(fd, buffer, offset, length, position) })),
  read: (buffer, offset, length, position) =>
    settled(() => ({ bytesRead: fss.readSync(fd, buffer, offset, length, position) })),
  stat: () => settled(() => fss.fstatSync(fd)),
  sync: () =>
    settled(() => {
      fss.fsyncSync(fd);
    }),
  truncate: (len) =>
    settled(() => {
      fss.ftruncateSync(fd, len);
    }),
  close: () =>
    settled(() => {
      fss.closeSync(fd);
    }),
});

/**
 * The same calls as {@link nodeFs}, made synchronously (each returns a settled promise): for the
 * checkpoint writer thread, whose event loop has nothing else to do, so a call's trip through the
 * thread pool (a request, a wake-up, a completion) would only cost CPU. Never use it on the main
 * thread: each call blocks it.
 */
export const syncFs: FileSystem = {
  open: (file, flags, mode) => settled(() => syncHandle(fss.openSync(file, flags, mode))),
  rename: (from, to) =>
    settled(() => {
      fss.renameSync(from, to);
    }),
  link: (existing, newPath) =>
    settled(() => {
      fss.linkSync(existing, newPath);
    }),
  copyFile: (from, to) =>
    settled(() => {
      fss.copyFileSync(from, to);
    }),
  unlink: (file) =>
    settled(() => {
      fss.unlinkSync(file);
    }),
  readdir: (dir) => settled(() => fss.readdirSync(dir)),
  mkdir: (dir) => settled(() => void fss.mkdirSync(dir, { recursive: true })),
  readFile: (file) => settled(() => fss.readFileSync(file)),
  stat: (file) => settled(() => fss.statSync(file)),
  utimes: (file, atime, mtime) =>
    settled(() => {
      fss.utimesSync(file, atime, mtime);
    }),
};

/** What went wrong with a file-system call, by cause. */
export type FsErrorTag =
  'DiskFull' | 'PermissionDenied' | 'FileNotFound' | 'PathNotADirectory' | 'FileSystemFailed';

/** A failed file-system call: the operation, the path, the errno code and a message with the fix. */
export interface FsError {
  readonly _tag: FsErrorTag;
  /** What was being done: `write`, `rename`, `read`, ... */
  readonly op: string;
  readonly path: string;
  /** The errno code (`ENOSPC`, `EACCES`, ...), when there is one. */
  readonly code: string | undefined;
  readonly message: string;
}

const errnoCode = (cause: unknown): string | undefined => {
  if (typeof cause === 'object' && cause !== null && 'code' in cause) {
    const code: unknown = cause.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
};

const causeText = (cause: unknown): string =>
  cause instanceof Error ? cause.message : String(cause);

/**
 * Classifies an error thrown by a file-system call into an {@link FsError} whose message names the
 * path and says what to do.
 *
 * @example
 * ```ts
 * fsError('write', '/runs/a/checkpoints/latest.safetensors', Object.assign(new Error('x'), { code: 'ENOSPC' }))
 * // { _tag: 'DiskFull', message: 'cannot write /runs/a/...: disk full (ENOSPC); free space or change projectRoot', ... }
 * ```
 */
export const fsError = (op: string, file: string, cause: unknown): FsError => {
  const code = errnoCode(cause);
  const base = { op, path: file, code };
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return {
        ...base,
        _tag: 'DiskFull',
        message: `cannot ${op} ${file}: disk full (${code}); free space or change projectRoot`,
      };
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return {
        ...base,
        _tag: 'PermissionDenied',
        message: `cannot ${op} ${file}: permission denied (${code}); make the folder writable or change projectRoot`,
      };
    case 'ENOENT':
      return {
        ...base,
        _tag: 'FileNotFound',
        message: `cannot ${op} ${file}: no such file or folder (ENOENT)`,
      };
    case 'ENOTDIR':
      return {
        ...base,
        _tag: 'PathNotADirectory',
        message: `cannot ${op} ${file}: a part of the path is a file, not a folder (ENOTDIR); change projectRoot or dir`,
      };
    case 'EEXIST':
      if (op === 'create the folder')
        return {
          ...base,
          _tag: 'PathNotADirectory',
          message: `cannot create the folder ${file}: a file of that name is in the way (EEXIST); remove or rename it, or point checkpointDir / dir elsewhere`,
        };
      return {
        ...base,
        _tag: 'FileSystemFailed',
        message: `cannot ${op} ${file}: ${causeText(cause)}`,
      };
    default:
      return {
        ...base,
        _tag: 'FileSystemFailed',
        message: `cannot ${op} ${file}: ${causeText(cause)}`,
      };
  }
};

/** Runs a file-system call, turning a rejection into a `Left` {@link FsError}. */
export const tryFs = async <A>(
  op: string,
  file: string,
  run: () => Promise<A>,
): Promise<E.Either<FsError, A>> => {
  try {
    return E.right(await run());
  } catch (cause) {
    return E.left(fsError(op, file, cause));
  }
};

/** Bytes to write: one buffer, a string (UTF-8), or several buffers written one after another. */
export type FileData = string | Uint8Array | readonly Uint8Array[];

/** Options of {@link writeFileAtomic}. */
export interface WriteOptions {
  /** The file system; {@link nodeFs} when left out. */
  readonly fs?: FileSystem;
  /** fsync the file and its folder (default `true`). `false` keeps atomicity but not durability. */
  readonly fsync?: boolean;
  /** Create the folder (and its parents) first (default `true`). */
  readonly mkdir?: boolean;
  /**
   * Leave the folder fsync to this batch: the file's data is still fsynced before its rename,
   * and `group.commit()` fsyncs its folder once for every file of the batch.
   */
  readonly group?: DurableGroup;
}

/**
 * A batch of renames made durable together (issue 13: the files of one epoch). Each file's data
 * is fsynced before its rename, as always; the writers given this group note their folder
 * instead of fsyncing it, and {@link DurableGroup.commit} fsyncs each distinct folder once. Until
 * the commit resolves, a power loss may undo any rename of the batch (each file is then its old
 * version or its new one, never a mix): publish what depends on them after the commit.
 *
 * @example
 * ```ts
 * const group = durableGroup();
 * await writeJsonAtomic('run/latest.json', latest, { group });
 * await writeJsonAtomic('run/best.json', best, { group });
 * await group.commit(); // one fsync of run/ for both
 * ```
 */
export interface DurableGroup {
  /** Notes that a name in `dir` was created, renamed or removed. */
  readonly touched: (dir: string) => void;
  /** The folders noted since the last commit. */
  readonly pending: () => readonly string[];
  /** fsyncs each folder noted since the last commit once (concurrently); resolves to them. */
  readonly commit: () => Promise<E.Either<FsError, readonly string[]>>;
}

/** A new, empty {@link DurableGroup} over `fs` ({@link nodeFs} when left out). */
export const durableGroup = (fs: FileSystem = nodeFs): DurableGroup => {
  let dirs = new Set<string>();
  return {
    touched: (dir) => {
      dirs.add(path.resolve(dir));
    },
    pending: () => [...dirs],
    commit: async () => {
      const todo = [...dirs];
      dirs = new Set();
      const synced = await Promise.all(
        todo.map((dir) => tryFs('fsync the folder', dir, () => fsyncDir(fs, dir))),
      );
      const failed = synced.find(E.isLeft);
      return failed ?? E.right(todo);
    },
  };
};

const TEMP_RE = /^\.(.+)\.tmp-(\d+)-[0-9a-f]{8}$/;

/** The temporary name used while writing `file`: `.name.tmp-<pid>-<random>` in the same folder. */
export const tempPathFor = (file: string): string =>
  path.join(
    path.dirname(file),
    `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );

/** Whether a file name is one of the temporary names of {@link tempPathFor}. */
export const isTempName = (name: string): boolean => TEMP_RE.test(name);

const toChunks = (data: FileData): readonly Uint8Array[] =>
  typeof data === 'string'
    ? [Buffer.from(data, 'utf8')]
    : data instanceof Uint8Array
      ? [data]
      : data;

const MAX_WRITE = 1 << 30;

/** Writes every byte of `chunks` to `handle` (a write may be short; large ones are split). */
export const writeAll = async (
  handle: FileHandleLike,
  chunks: readonly Uint8Array[],
): Promise<number> => {
  let total = 0;
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const length = Math.min(chunk.byteLength - offset, MAX_WRITE);
      const { bytesWritten } = await handle.write(chunk, offset, length, null);
      if (bytesWritten <= 0) throw new Error('write made no progress');
      offset += bytesWritten;
    }
    total += chunk.byteLength;
  }
  return total;
};

/** Writes every byte of `bytes` to `handle` at `position` (positional writes, split when large). */
export const writeAt = async (
  handle: FileHandleLike,
  bytes: Uint8Array,
  position: number,
): Promise<void> => {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const length = Math.min(bytes.byteLength - offset, MAX_WRITE);
    const { bytesWritten } = await handle.write(bytes, offset, length, position + offset);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    offset += bytesWritten;
  }
};

/** fsyncs a folder so that a rename or a new name in it survives a power loss. */
export const fsyncDir = async (fs: FileSystem, dir: string): Promise<void> => {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/**
 * Writes `data` to `file` atomically and durably: a temporary file in the same folder, fsync,
 * rename over `file`, fsync of the folder. On any failure the temporary file is removed, `file` is
 * left as it was, and the result is a `Left` naming the path and the cause. Resolves to the path.
 *
 * @example
 * ```ts
 * const written = await writeFileAtomic('runs/a/latest.json', JSON.stringify(result));
 * if (E.isLeft(written)) logger.error(written.left.message);
 * ```
 */
export const writeFileAtomic = (
  file: string,
  data: FileData,
  options: WriteOptions = {},
): Promise<E.Either<FsError, string>> =>
  writeFileAtomicWith(file, (handle) => writeAll(handle, toChunks(data)), options);

/**
 * {@link writeFileAtomic} with the bytes written by `write` on the open temporary file (for
 * writers that write out of order, e.g. data first and a header with its checksum last).
 */
export const writeFileAtomicWith = async (
  file: string,
  write: (handle: FileHandleLike) => Promise<unknown>,
  options: WriteOptions = {},
): Promise<E.Either<FsError, string>> => {
  const fs = options.fs ?? nodeFs;
  const durable = options.fsync ?? true;
  const dir = path.dirname(file);
  if (options.mkdir ?? true) {
    const made = await tryFs('create the folder', dir, () => fs.mkdir(dir));
    if (E.isLeft(made)) return made;
  }
  const temp = tempPathFor(file);
  const opened = await tryFs('create', file, () => fs.open(temp, 'wx', 0o644));
  if (E.isLeft(opened)) return opened;
  const handle = opened.right;
  const body = await tryFs('write', file, async () => {
    try {
      await write(handle);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
  });
  const committed = E.isLeft(body)
    ? body
    : await tryFs('rename into place', file, () => fs.rename(temp, file));
  if (E.isLeft(committed)) {
    await fs.unlink(temp).catch(() => undefined);
    return committed;
  }
  if (durable) {
    if (options.group !== undefined) options.group.touched(dir);
    else {
      const synced = await tryFs('fsync the folder of', file, () => fsyncDir(fs, dir));
      if (E.isLeft(synced)) return synced;
    }
  }
  return E.right(file);
};

/**
 * Gives `existing` a second name `target` atomically: a hard link under a temporary name, renamed
 * over `target` (so an old `target` is replaced in one step), then an fsync of the folder. Where
 * hard links are not supported it falls back to copy + fsync + rename. Never re-serialises.
 */
export const linkOrCopyAtomic = async (
  existing: string,
  target: string,
  options: Pick<WriteOptions, 'fs' | 'fsync' | 'group'> = {},
): Promise<E.Either<FsError, string>> => {
  const fs = options.fs ?? nodeFs;
  const durable = options.fsync ?? true;
  const temp = tempPathFor(target);
  const linked = await tryFs('link', target, () => fs.link(existing, temp));
  if (E.isLeft(linked)) {
    if (linked.left.code === 'ENOENT') return linked;
    const copied = await tryFs('copy to', target, async () => {
      await fs.copyFile(existing, temp);
      if (durable) {
        const handle = await fs.open(temp, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
    });
    if (E.isLeft(copied)) {
      await fs.unlink(temp).catch(() => undefined);
      return copied;
    }
  }
  const renamed = await tryFs('rename into place', target, () => fs.rename(temp, target));
  if (E.isLeft(renamed)) {
    await fs.unlink(temp).catch(() => undefined);
    return renamed;
  }
  if (durable) {
    const dir = path.dirname(target);
    if (options.group !== undefined) options.group.touched(dir);
    else {
      const synced = await tryFs('fsync the folder of', target, () => fsyncDir(fs, dir));
      if (E.isLeft(synced)) return synced;
    }
  }
  return E.right(target);
};

/** Whether a process with this pid is alive on this host (`kill(pid, 0)`). */
export const isPidAlive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (cause) {
    return errnoCode(cause) === 'EPERM';
  }
};

/** The names in a folder, or `null` when the folder does not exist; other errors name it. */
export const listDir = async (
  fs: FileSystem,
  dir: string,
): Promise<E.Either<FsError, string[] | null>> => {
  try {
    return E.right(await fs.readdir(dir));
  } catch (cause) {
    return errnoCode(cause) === 'ENOENT' ? E.right(null) : E.left(fsError('list', dir, cause));
  }
};

/**
 * Removes the temporary files that a crashed writer left in `dir` (names made by
 * {@link tempPathFor} whose writer pid is no longer alive; a writer that is still running keeps
 * its file). A missing folder has nothing to clean. Resolves to the paths removed.
 */
export const cleanupTemp = async (
  dir: string,
  options: Pick<WriteOptions, 'fs'> = {},
): Promise<E.Either<FsError, string[]>> => {
  const fs = options.fs ?? nodeFs;
  const listed = await listDir(fs, dir);
  if (E.isLeft(listed)) return listed;
  const names = listed.right ?? [];
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMP_RE.exec(name);
    if (match === null || isPidAlive(Number(match[2]))) continue;
    const file = path.join(dir, name);
    try {
      await fs.unlink(file);
      removed.push(file);
    } catch (cause) {
      if (errnoCode(cause) !== 'ENOENT') return E.left(fsError('remove', file, cause));
    }
  }
  return E.right(removed);
};

/**
 * Writes `value` as JSON (2-space indent and a final newline by default) with
 * {@link writeFileAtomic}.
 */
export const writeJsonAtomic = (
  file: string,
  value: unknown,
  options: WriteOptions & { readonly indent?: number } = {},
): Promise<E.Either<FsError, string>> =>
  writeFileAtomic(file, `${JSON.stringify(value, null, options.indent ?? 2)}\n`, options);
