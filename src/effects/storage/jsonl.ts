/**
 * An append-only JSON Lines log (one JSON value per line), as used for `history.jsonl`. Each append
 * is one `write(2)` of the whole line on an `O_APPEND` descriptor, so after a process crash the
 * file holds every appended line and at most one incomplete last line; reading skips that torn
 * line with a warning, and opening for append cuts it off first. Durability against power loss
 * is the {@link FsyncPolicy}.
 */
import * as E from 'fp-ts/lib/Either.js';
import * as path from 'node:path';
import { isJson, type Json } from '../../state/Json.js';
import {
  fsError,
  fsyncDir,
  nodeFs,
  tryFs,
  writeAll,
  type FileHandleLike,
  type FileSystem,
  type FsError,
} from './atomic.js';

/**
 * When appended lines are fsynced: after every line (`'always'`: survives power loss, slowest),
 * after every N lines (`{ every: N }`: loses at most the last N-1 lines on power loss), or only on
 * `sync()` / `close()` (`'never'`). A process crash loses nothing in any policy: each line is
 * handed to the kernel as it is appended.
 */
export type FsyncPolicy = 'always' | 'never' | { readonly every: number };

/** The last line had no newline: a write torn by a crash. It is skipped (read) or cut (open). */
export interface JsonlTornLine {
  readonly _tag: 'JsonlTornLine';
  readonly path: string;
  /** 1-based line number of the torn line. */
  readonly line: number;
  readonly message: string;
}

/** A complete line that is not JSON: the log is damaged before its end. */
export interface JsonlCorrupt {
  readonly _tag: 'JsonlCorrupt';
  readonly path: string;
  /** 1-based line number. */
  readonly line: number;
  readonly message: string;
}

/** A value that cannot be written as one JSON line (NaN, Infinity, -0, undefined, a class). */
export interface JsonlInvalidValue {
  readonly _tag: 'JsonlInvalidValue';
  readonly path: string;
  readonly message: string;
}

/** An open log. Appends are written in call order. */
export interface JsonlWriter {
  readonly path: string;
  /** Appends one value as one line; resolves to its 1-based line number. */
  readonly append: (value: Json) => Promise<E.Either<FsError | JsonlInvalidValue, number>>;
  /** fsyncs what was appended so far. */
  readonly sync: () => Promise<E.Either<FsError, void>>;
  /** fsyncs and closes. */
  readonly close: () => Promise<E.Either<FsError, void>>;
}

/** An opened log, its line count and the torn line that was cut off, if any. */
export interface OpenedJsonl {
  readonly writer: JsonlWriter;
  /** Complete lines already in the file. */
  readonly lines: number;
  readonly warnings: readonly JsonlTornLine[];
}

/** Options of {@link openJsonl}. */
export interface JsonlOptions {
  readonly fs?: FileSystem;
  /** Default `{ every: 100 }`; see bench/RESULTS.md for the cost of each policy. */
  readonly fsync?: FsyncPolicy;
}

export const NEWLINE = 0x0a;

const countLines = (bytes: Uint8Array): number => {
  let n = 0;
  for (const b of bytes) if (b === NEWLINE) n++;
  return n;
};

export const torn = (file: string, line: number, what: string): JsonlTornLine => ({
  _tag: 'JsonlTornLine',
  path: file,
  line,
  message: `${file}:${line}: the last line is incomplete (a write torn by a crash); ${what}`,
});

/**
 * Opens (creating if needed) a JSON Lines log for appending. If the file ends in a torn line, it
 * is cut off first (with a warning), so that new lines never glue onto it.
 *
 * @example
 * ```ts
 * const opened = await openJsonl('runs/a/history.jsonl', { fsync: { every: 50 } });
 * if (E.isRight(opened)) await opened.right.writer.append({ type: 'epochEnd', epoch: 3 });
 * ```
 */
export const openJsonl = async (
  file: string,
  options: JsonlOptions = {},
): Promise<E.Either<FsError, OpenedJsonl>> => {
  const fs = options.fs ?? nodeFs;
  const policy = options.fsync ?? { every: 100 };
  const dir = path.dirname(file);
  const made = await tryFs('create the folder', dir, () => fs.mkdir(dir));
  if (E.isLeft(made)) return made;
  let existing: Uint8Array = new Uint8Array(0);
  try {
    existing = await fs.readFile(file);
  } catch (cause) {
    const e = fsError('read', file, cause);
    if (e._tag !== 'FileNotFound') return E.left(e);
  }
  const opened = await tryFs('open', file, () => fs.open(file, 'a', 0o644));
  if (E.isLeft(opened)) return opened;
  const handle: FileHandleLike = opened.right;
  let lines = countLines(existing);
  const warnings: JsonlTornLine[] = [];
  if (existing.byteLength > 0 && existing[existing.byteLength - 1] !== NEWLINE) {
    const keep = existing.lastIndexOf(NEWLINE) + 1;
    const cut = await tryFs('truncate', file, async () => {
      await handle.truncate(keep);
      await handle.sync();
    });
    if (E.isLeft(cut)) {
      await handle.close().catch(() => undefined);
      return cut;
    }
    warnings.push(torn(file, lines + 1, 'cut off before appending'));
  }
  if (existing.byteLength === 0) {
    const synced = await tryFs('fsync the folder of', file, () => fsyncDir(fs, dir));
    if (E.isLeft(synced)) return synced;
  }
  let queue: Promise<unknown> = Promise.resolve();
  let unsynced = 0;
  const serial = <A>(run: () => Promise<A>): Promise<A> => {
    const next = queue.then(run, run);
    queue = next.catch(() => undefined);
    return next;
  };
  const every = policy === 'always' ? 1 : policy === 'never' ? Infinity : Math.max(1, policy.every);
  const writer: JsonlWriter = {
    path: file,
    append: (value) =>
      serial(async () => {
        if (!isJson(value))
          return E.left<JsonlInvalidValue>({
            _tag: 'JsonlInvalidValue',
            path: file,
            message: `cannot append to ${file}: the value is not JSON data (NaN, Infinity, -0, undefined or a class instance)`,
          });
        const line = Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
        const written = await tryFs('append to', file, async () => {
          await writeAll(handle, [line]);
          unsynced++;
          if (unsynced >= every) {
            await handle.sync();
            unsynced = 0;
          }
        });
        if (E.isLeft(written)) return written;
        lines++;
        return E.right(lines);
      }),
    sync: () =>
      serial(() =>
        tryFs('fsync', file, async () => {
          await handle.sync();
          unsynced = 0;
        }),
      ),
    close: () =>
      serial(() =>
        tryFs('close', file, async () => {
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
        }),
      ),
  };
  return E.right({ writer, lines, warnings });
};

/** A log read back: every complete value, and the torn last line skipped, if any. */
export interface ReadJsonl {
  readonly values: readonly Json[];
  readonly warnings: readonly JsonlTornLine[];
}

/**
 * Parses JSON Lines text. A last line without a newline is torn: skipped with a warning naming
 * the file and line (even if it happens to parse, since a cut number such as `12` of `123` does).
 * A complete line that is not JSON is a `JsonlCorrupt` error naming the line.
 */
export const parseJsonl = (bytes: Uint8Array, file: string): E.Either<JsonlCorrupt, ReadJsonl> => {
  const text = new TextDecoder().decode(bytes);
  const parts = text.split('\n');
  const tail = parts.pop() ?? '';
  const values: Json[] = [];
  for (let i = 0; i < parts.length; i++) {
    const line = parts[i] ?? '';
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      const why =
        line.trim() === ''
          ? 'an empty line'
          : `not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`;
      return E.left({
        _tag: 'JsonlCorrupt',
        path: file,
        line: i + 1,
        message: `${file}:${i + 1}: ${why}; the log is damaged before its end: restore it or cut it before line ${i + 1}`,
      });
    }
    values.push(value as Json);
  }
  const warnings = tail === '' ? [] : [torn(file, parts.length + 1, 'skipped')];
  return E.right({ values, warnings });
};

/**
 * Reads a JSON Lines log (see {@link parseJsonl}). A missing file is a `FileNotFound` naming it.
 */
export const readJsonl = async (
  file: string,
  options: Pick<JsonlOptions, 'fs'> = {},
): Promise<E.Either<FsError | JsonlCorrupt, ReadJsonl>> => {
  const fs = options.fs ?? nodeFs;
  const bytes = await tryFs('read', file, () => fs.readFile(file));
  if (E.isLeft(bytes)) return bytes;
  return parseJsonl(bytes.right, file);
};

// ---------------------------------------------------------------------------------------------
