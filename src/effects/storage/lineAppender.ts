/**
 * The action log's hot path: batched synchronous appends of text lines (one `writeSync` per
 * batch, a bounded crash loss) and streamed reads of a line file from its bytes (`scanLines`,
 * `findLastLine`). The JSON Lines writer and reader of other files are in `jsonl.ts`.
 */
import * as E from 'fp-ts/lib/Either.js';
import * as fsSync from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fsError, tryFs, type FsError } from './atomic.js';
import { NEWLINE, type FsyncPolicy, type JsonlTornLine } from './jsonl.js';

// Batched synchronous appends and streamed reads (the action log's hot path).

/**
 * When a {@link LineAppender} hands its buffered lines to the kernel: as soon as `maxLines`
 * lines or `maxBytes` bytes are buffered, or a line is pushed `maxMs` after the oldest buffered
 * one (also an unref'd timer writes them when the event loop is free). A process crash loses
 * at most the lines still buffered: fewer than `maxLines`, and none older than `maxMs` at the
 * time of a later push.
 */
export interface BatchOptions {
  /** Default 256. */
  readonly maxLines?: number;
  /** Default 100. */
  readonly maxMs?: number;
  /** Default 1 MiB. */
  readonly maxBytes?: number;
  /**
   * fsync of written batches (default `{ every: 100 }` lines, checked once per batch). `'always'`
   * fsyncs each batch before `push` returns; `{ every: N }` starts the fsync on the thread pool
   * (the loop does not wait for the disk; lines written while it runs wait for the next one).
   */
  readonly fsync?: FsyncPolicy;
  /** Milliseconds clock (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * An append-only line file written in synchronous batches: one `writeSync` per batch, so what
 * was written survives a process crash even when the caller never yields to the event loop.
 */
export interface LineAppender {
  readonly path: string;
  /** Buffers one line (text without its newline); writes the batch when a bound is reached. */
  readonly push: (line: string) => void;
  /** Writes the buffered lines now (no fsync beyond the policy). */
  readonly flush: () => E.Either<FsError, void>;
  /** Writes the buffered lines and fsyncs. */
  readonly sync: () => E.Either<FsError, void>;
  /**
   * Writes the buffered lines now and fsyncs them on the thread pool: the loop does not wait
   * for the disk. Resolves when what was written so far is durable.
   */
  readonly syncInBackground: () => Promise<E.Either<FsError, void>>;
  /** Writes, fsyncs and closes; later pushes are dropped. */
  readonly close: () => E.Either<FsError, void>;
  /** The first failed write, kept until {@link LineAppender.flush} reports it. */
  readonly failed: () => FsError | undefined;
}

/** An opened {@link LineAppender}: its size before appending and the torn line it cut off. */
export interface OpenedAppender {
  readonly appender: LineAppender;
  /** Bytes in the file when opened (after cutting a torn line). */
  readonly size: number;
  readonly warnings: readonly JsonlTornLine[];
}

const CHUNK = 1 << 20;

const syncTry = <A>(op: string, file: string, run: () => A): E.Either<FsError, A> => {
  try {
    return E.right(run());
  } catch (cause) {
    return E.left(fsError(op, file, cause));
  }
};

/** Offset just after the last newline at or before `end` (0 when none), read backwards. */
const lastNewlineEnd = (fd: number, end: number): number => {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, end)));
  let pos = end;
  while (pos > 0) {
    const from = Math.max(0, pos - buf.byteLength);
    const n = fsSync.readSync(fd, buf, 0, pos - from, from);
    const i = buf.subarray(0, n).lastIndexOf(NEWLINE);
    if (i >= 0) return from + i + 1;
    pos = from;
  }
  return 0;
};

/**
 * Opens (creating if needed) a line file for batched synchronous appends. A torn last line (a
 * crash mid-write) is cut off first, with a warning, reading only the file's tail.
 *
 * @example
 * ```ts
 * const opened = await openLineAppender('runs/a/history.jsonl', { maxLines: 256 });
 * if (E.isRight(opened)) opened.right.appender.push('{"action":{"type":"resetMeters"}}');
 * ```
 */
export const openLineAppender = (
  file: string,
  options: BatchOptions = {},
): Promise<E.Either<FsError, OpenedAppender>> =>
  Promise.resolve(openLineAppenderSync(file, options));

const openLineAppenderSync = (
  file: string,
  options: BatchOptions,
): E.Either<FsError, OpenedAppender> => {
  const maxLines = Math.max(1, options.maxLines ?? 256);
  const maxMs = Math.max(0, options.maxMs ?? 100);
  const maxBytes = Math.max(1, options.maxBytes ?? 1 << 20);
  const now = options.now ?? Date.now;
  const policy = options.fsync ?? { every: 100 };
  const every = policy === 'always' ? 1 : policy === 'never' ? Infinity : Math.max(1, policy.every);
  const dir = path.dirname(file);
  const made = syncTry('create the folder', dir, () => fsSync.mkdirSync(dir, { recursive: true }));
  if (E.isLeft(made)) return made;
  const opened = syncTry('open', file, () => fsSync.openSync(file, 'a+', 0o644));
  if (E.isLeft(opened)) return opened;
  const fd = opened.right;
  const warnings: JsonlTornLine[] = [];
  const prepared = syncTry('read the end of', file, () => {
    let size = fsSync.fstatSync(fd).size;
    if (size === 0) {
      try {
        const d = fsSync.openSync(dir, 'r');
        try {
          fsSync.fsyncSync(d);
        } finally {
          fsSync.closeSync(d);
        }
      } catch {
        // Some platforms cannot fsync a folder; the file's own fsync still runs.
      }
      return size;
    }
    const last = Buffer.alloc(1);
    fsSync.readSync(fd, last, 0, 1, size - 1);
    if (last[0] !== NEWLINE) {
      const keep = lastNewlineEnd(fd, size);
      fsSync.ftruncateSync(fd, keep);
      fsSync.fsyncSync(fd);
      warnings.push({
        _tag: 'JsonlTornLine',
        path: file,
        line: 0,
        message: `${file}: the last line (from byte ${keep}) is incomplete (a write torn by a crash); cut off before appending`,
      });
      size = keep;
    }
    return size;
  });
  if (E.isLeft(prepared)) {
    fsSync.closeSync(fd);
    return prepared;
  }
  // The unwritten lines, each followed by its newline, as one string (V8 concatenates in
  // place; `writeSync` encodes it once, without a join or an intermediate Buffer).
  let pending = '';
  let pendingLines = 0;
  let oldest = 0;
  let unsynced = 0;
  let error: FsError | undefined;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight = 0; // fsyncs on the thread pool (the periodic one, syncInBackground calls)
  let closeWhenSynced = false; // close the fd when it returns (close() came first)
  // The timer stays armed after a batch is written (a no-op when it fires with nothing
  // buffered) and is restarted with `refresh` when a new batch begins, not re-created.
  const write = (): E.Either<FsError, void> => {
    if (pendingLines === 0 || closed) return E.right(undefined);
    const lines = pendingLines;
    const text = pending;
    pending = '';
    pendingLines = 0;
    const done = syncTry('append to', file, () => {
      const wrote = fsSync.writeSync(fd, text);
      // `wrote` counts bytes, `text.length` UTF-16 units: a short write is told by the byte
      // length (a non-ASCII metric name makes them differ).
      if (wrote < Buffer.byteLength(text)) {
        // A short write (rare): the rest from the bytes.
        const bytes = Buffer.from(text, 'utf8');
        let off = wrote;
        while (off < bytes.byteLength) off += fsSync.writeSync(fd, bytes, off);
      }
      unsynced += lines;
      if (every === 1) {
        fsSync.fsyncSync(fd);
        unsynced = 0;
      } else if (unsynced >= every && inflight === 0) {
        // The policy's periodic fsync runs on the thread pool, so the loop does not wait for the
        // disk (a failure is kept and reported like a failed write); `sync` and `close` still
        // fsync synchronously.
        unsynced = 0;
        inflight += 1;
        fsSync.fsync(fd, (cause) => {
          inflight -= 1;
          if (cause !== null && !closed) error ??= fsError('fsync', file, cause);
          if (closeWhenSynced && inflight === 0) fsSync.close(fd, () => undefined);
        });
      }
    });
    if (E.isLeft(done)) error ??= done.left;
    return done;
  };
  const onTimer = (): void => {
    timer = undefined;
    write();
  };
  const appender: LineAppender = {
    path: file,
    push: (line) => {
      if (closed || error !== undefined) return;
      if (pendingLines === 0) {
        oldest = now();
        if (maxMs > 0) {
          if (timer === undefined) {
            timer = setTimeout(onTimer, maxMs);
            timer.unref();
          } else timer.refresh();
        }
      }
      pending += line;
      pending += '\n';
      pendingLines += 1;
      // The clock is read on every 16th line only (the bound is then maxMs plus 15 lines).
      if (
        pendingLines >= maxLines ||
        pending.length >= maxBytes ||
        ((pendingLines & 15) === 0 && now() - oldest >= maxMs)
      )
        write();
    },
    flush: () => {
      write();
      return error === undefined ? E.right(undefined) : E.left(error);
    },
    sync: () => {
      write();
      if (error !== undefined) return E.left(error);
      if (closed) return E.right(undefined);
      return syncTry('fsync', file, () => {
        fsSync.fsyncSync(fd);
        unsynced = 0;
      });
    },
    syncInBackground: () => {
      write();
      if (error !== undefined) return Promise.resolve(E.left(error));
      if (closed) return Promise.resolve(E.right(undefined));
      unsynced = 0;
      inflight += 1;
      return new Promise((resolve) => {
        fsSync.fsync(fd, (cause) => {
          inflight -= 1;
          if (closeWhenSynced && inflight === 0) fsSync.close(fd, () => undefined);
          resolve(cause === null ? E.right(undefined) : E.left(fsError('fsync', file, cause)));
        });
      });
    },
    close: () => {
      if (closed) return E.right(undefined);
      write();
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      const done = syncTry('close', file, () => {
        try {
          fsSync.fsyncSync(fd);
        } finally {
          // An fsync still on the thread pool holds the fd: it is closed when that returns.
          if (inflight > 0) closeWhenSynced = true;
          else fsSync.closeSync(fd);
        }
      });
      closed = true;
      if (error !== undefined) return E.left(error);
      return done;
    },
    failed: () => error,
  };
  return E.right({ appender, size: prepared.right, warnings });
};

/** What {@link scanLines} found: lines seen, bytes read and a torn last line, if any. */
export interface ScannedLines {
  /** Complete lines scanned (counted from `start`). */
  readonly lines: number;
  /** Offset where scanning stopped (the end, or after the line that said stop). */
  readonly end: number;
  readonly torn?: JsonlTornLine;
}

/**
 * Reads a line file from byte `start` in 1 MiB chunks and calls `onLine(bytes, from, to, n)` for
 * each complete line (`bytes[from..to)` without its newline; `n` is 1-based from `start`) until
 * it returns `false`. Memory is one chunk plus the longest line. A last line without a newline is
 * torn: reported, never passed on. Lines are never decoded into one string.
 */
export const scanLines = async (
  file: string,
  onLine: (bytes: Buffer, from: number, to: number, n: number) => boolean,
  start = 0,
): Promise<E.Either<FsError, ScannedLines>> => {
  const opened = await tryFs('open', file, () => fsp.open(file, 'r'));
  if (E.isLeft(opened)) return opened;
  const handle = opened.right;
  try {
    let buf = Buffer.allocUnsafe(CHUNK);
    let have = 0; // bytes in buf
    let pos = start; // file offset of buf[have]
    let n = 0;
    let lineStart = start;
    for (;;) {
      if (have === buf.byteLength) {
        const bigger = Buffer.allocUnsafe(buf.byteLength * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const r = await tryFs('read', file, () => handle.read(buf, have, buf.byteLength - have, pos));
      if (E.isLeft(r)) return r;
      const got = r.right.bytesRead;
      if (got === 0) {
        const torn =
          have > 0
            ? {
                _tag: 'JsonlTornLine' as const,
                path: file,
                line: n + 1,
                message: `${file}:${n + 1}: the last line is incomplete (a write torn by a crash); skipped`,
              }
            : undefined;
        return E.right(torn === undefined ? { lines: n, end: pos } : { lines: n, end: pos, torn });
      }
      pos += got;
      const end = have + got;
      let from = 0;
      let nl = buf.indexOf(NEWLINE, have);
      while (nl !== -1 && nl < end) {
        n += 1;
        lineStart += nl + 1 - from;
        if (!onLine(buf, from, nl, n)) return E.right({ lines: n, end: lineStart });
        from = nl + 1;
        nl = buf.indexOf(NEWLINE, from);
      }
      if (from > 0) buf.copy(buf, 0, from, end);
      have = end - from;
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
};

/**
 * The offset of the last line of `file` that starts with one of `prefixes` (read backwards in
 * chunks from the end; only the tail after it is read), or `undefined` when no line does.
 */
export const findLastLine = (
  file: string,
  prefixes: readonly string[],
): Promise<E.Either<FsError, number | undefined>> =>
  Promise.resolve(
    syncTry('read', file, () => {
      const fd = fsSync.openSync(file, 'r');
      try {
        const size = fsSync.fstatSync(fd).size;
        const needles = prefixes.map((p) => Buffer.from(`\n${p}`, 'utf8'));
        const overlap = Math.max(...needles.map((b) => b.byteLength));
        const buf = Buffer.allocUnsafe(CHUNK + overlap);
        let hi = size;
        while (hi > 0) {
          const lo = Math.max(0, hi - CHUNK);
          const len = Math.min(size, hi + overlap) - lo;
          const got = fsSync.readSync(fd, buf, 0, len, lo);
          const view = buf.subarray(0, got);
          let best = -1;
          for (const b of needles) best = Math.max(best, view.lastIndexOf(b));
          if (best !== -1) return lo + best + 1;
          hi = lo;
        }
        const head = Buffer.alloc(overlap);
        const got = fsSync.readSync(fd, head, 0, overlap, 0);
        const first = head.subarray(0, got).toString('utf8');
        return prefixes.some((p) => first.startsWith(p)) ? 0 : undefined;
      } finally {
        fsSync.closeSync(fd);
      }
    }),
  );
