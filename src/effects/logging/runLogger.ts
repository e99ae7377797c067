/**
 * The shell's default logger: pino JSON lines to `run.log` (when given) and to stdout, pretty on
 * a TTY. Object first, message second, as pino's convention.
 *
 * `run.log` is written synchronously (so a crash loses nothing already logged) through a
 * destination that never throws: pino's own synchronous destination throws `ENOSPC` out of
 * `logger.info`, which killed runs on a full disk. Here the first write error stops the file, is
 * kept as an {@link FsError} naming it (`fileError()`, `onFileError`), and logging goes on to stdout.
 */
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { id, isMainProcess, logPath, name } from '../../state/runner/selectors.js';
import { fsError, type FsError } from '../storage/atomic.js';

/** The config key a run log path comes from, named in its errors. */
export type RunLogKey = 'logPath' | 'dir' | 'projectRoot';

/**
 * An open `run.log`: a pino destination that never throws. After the first failed write (a full
 * disk, an I/O error, a closed descriptor) it writes nothing more and `fileError()` returns that
 * error, naming the file and the fix.
 */
export interface RunLogFile {
  readonly path: string;
  /** The destination to hand to pino (`write` never throws; `end` closes the file). */
  readonly stream: SafeStream;
  /** The first write error, or `undefined` while every line reached the file. */
  fileError(): FsError | undefined;
  /** Closes the file (later lines go nowhere; no error). */
  close(): void;
}

/**
 * A pino destination whose methods never throw. `flushSync` and `end` are what pino's
 * multistream calls at exit (every write is already synchronous, so there is nothing to flush).
 */
export interface SafeStream extends DestinationStream {
  flushSync(): void;
  end(): void;
}

/** Options of {@link openRunLogFile}. */
export interface RunLogFileOptions {
  /** The config key the path comes from, named in open errors (default `logPath`). */
  readonly key?: RunLogKey;
  /** Called once, with the first write error. */
  readonly onError?: (error: FsError) => void;
}

/** An error opening the run log, naming the config key, the path and the fix. */
const openError = (file: string, key: RunLogKey, cause: unknown): FsError => {
  const base = fsError('open the run log', file, cause);
  const at = `${key}: cannot open the run log ${file}`;
  switch (base.code) {
    case 'ENOTDIR':
    case 'EEXIST':
      return {
        ...base,
        _tag: 'PathNotADirectory',
        message: `${at}: a part of the path is a file, not a folder (${base.code}); set ${key} to a path under a folder, or move that file away`,
      };
    case 'ENAMETOOLONG':
      return {
        ...base,
        message: `${at}: a name in the path is longer than the file system allows (ENAMETOOLONG, usually 255 bytes); shorten ${key}`,
      };
    case 'EISDIR':
      return {
        ...base,
        message: `${at}: it is a folder (EISDIR); set ${key} to a file path`,
      };
    case 'ERR_INVALID_ARG_VALUE':
    case 'ERR_INVALID_ARG_TYPE':
      return {
        ...base,
        message: `${at}: the path contains a NUL byte; remove it from ${key}`,
      };
    default:
      return { ...base, message: `${key}: ${base.message}` };
  }
};

/**
 * Opens (creating its folder) a run log for appending, as an `Either`: a path under a regular
 * file, a NUL byte, a name over 255 bytes, a folder, a read-only or full disk are a `Left` naming
 * `options.key`, the path and the fix, never a throw. Writes to the returned file never throw
 * either (see {@link RunLogFile}).
 *
 * @example
 * ```ts
 * const file = openRunLogFile('runs/a/run.log');
 * if (E.isLeft(file)) return file; // a start-up error
 * const logger = createRunLogger({ file: file.right });
 * ```
 */
export const openRunLogFile = (
  file: string,
  options: RunLogFileOptions = {},
): E.Either<FsError, RunLogFile> => {
  const key = options.key ?? 'logPath';
  let fd: number;
  let size: number;
  try {
    if (file.includes('\0'))
      throw Object.assign(new TypeError('NUL byte in path'), { code: 'ERR_INVALID_ARG_VALUE' });
    mkdirSync(dirname(file), { recursive: true });
    fd = openSync(file, 'a');
    size = fstatSync(fd).size;
  } catch (cause) {
    return E.left(openError(file, key, cause));
  }
  let open = true;
  let error: FsError | undefined;
  const fail = (cause: unknown): void => {
    error = fsError('write to', file, cause);
    open = false;
    try {
      ftruncateSync(fd, size); // whole lines only: drop the part of the line that got in
    } catch {
      // the descriptor itself is bad: nothing more to do
    }
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    options.onError?.(error);
  };
  const close = (): void => {
    if (!open) return;
    open = false;
    try {
      closeSync(fd);
    } catch {
      // nothing to report: no more lines were going to be written
    }
  };
  const stream: SafeStream = {
    write: (line: string) => {
      if (!open) return;
      const bytes = Buffer.from(line, 'utf8');
      try {
        let done = 0;
        while (done < bytes.byteLength) {
          const n = writeSync(fd, bytes, done, bytes.byteLength - done);
          if (n <= 0) throw new Error('write made no progress');
          done += n;
        }
        size += bytes.byteLength;
      } catch (cause) {
        fail(cause);
      }
    },
    flushSync: () => undefined,
    end: close,
  };
  return E.right({
    path: file,
    stream,
    fileError: () => error,
    close,
  });
};

/** The key a run's log path comes from: `logPath` if set, else `dir` if set, else `projectRoot`. */
const logKey = (state: RunnerState): RunLogKey =>
  state.config.logPath !== undefined
    ? 'logPath'
    : state.config.dir !== undefined
      ? 'dir'
      : 'projectRoot';

/**
 * Opens the run's `run.log` the way {@link initLogging} would, as an `Either` the shell checks at
 * start-up: `Right(undefined)` when no file is written (`config.log` off, or not the main process),
 * `Left` naming the config key (`logPath`, `dir` or `projectRoot`), the path and the fix.
 */
export const openRunLog = (
  state: RunnerState,
  options: Pick<RunLogFileOptions, 'onError'> = {},
): E.Either<FsError, RunLogFile | undefined> =>
  state.config.log && isMainProcess(state)
    ? openRunLogFile(logPath(state), { ...options, key: logKey(state) })
    : E.right(undefined);

/** Options of {@link createRunLogger}. */
export interface RunLoggerOptions {
  /** The run's log file; `undefined` writes none (non-main ranks). Ignored when `file` is given. */
  readonly logPath?: string | undefined;
  /** An already opened log file ({@link openRunLogFile}), used instead of `logPath`. */
  readonly file?: RunLogFile | undefined;
  /**
   * Called once with the first error of the log file: opening `logPath` (the logger then writes
   * to stdout only) or a later write (a full disk). The logger never throws for either.
   */
  readonly onFileError?: (error: FsError) => void;
  /** Minimum level (default `info`). */
  readonly level?: string;
  /** Where console lines go (default `process.stdout`). */
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  /**
   * The console's format: `text` (default), one compact human line per event (the message only:
   * no `run` / `id` / `rank` fields or result objects, which go to the log file), or `json`,
   * pino's JSON lines for log collectors. The log file always gets JSON lines.
   */
  readonly format?: LogFormat;
}

/** The console's format (`config.logFormat`). */
export type LogFormat = 'text' | 'json';

const LEVEL_WORD: Readonly<Record<number, string>> = {
  40: 'warning: ',
  50: 'error: ',
  60: 'fatal: ',
};

/**
 * The compact console: each pino JSON line becomes its message alone (`warning: ` / `error: `
 * before those levels), written to `out`. The fields stay in the log file.
 */
export const textConsole = (out: NodeJS.WritableStream): DestinationStream => ({
  write: (line: string) => {
    let text = line;
    try {
      const record = JSON.parse(line) as { level?: unknown; msg?: unknown };
      const level = typeof record.level === 'number' ? (LEVEL_WORD[record.level] ?? '') : '';
      text = `${level}${typeof record.msg === 'string' ? record.msg : ''}\n`;
    } catch {
      // Not a JSON line: passed on as it is.
    }
    out.write(text);
  },
});

/**
 * A pino logger writing to stdout and, synchronously so no line is lost, to the log file. A log
 * file that cannot be opened or written is reported (`onFileError`, and one error line to stdout)
 * and dropped; the logger never throws because of it.
 */
export const createRunLogger = (options: RunLoggerOptions = {}): Logger => {
  const out = options.stdout ?? process.stdout;
  const streams: { stream: DestinationStream | NodeJS.WritableStream; level: string }[] = [
    {
      stream: options.format === 'json' ? out : textConsole(out),
      level: options.level ?? 'info',
    },
  ];
  let reported = false;
  // Called from a write of the file stream, the last of the multistream's streams: the error
  // line then goes to stdout (the file stream is closed by then and skips it).
  const report = (error: FsError): void => {
    if (reported) return;
    reported = true;
    options.onFileError?.(error);
    logger.error({ path: error.path, code: error.code }, error.message);
  };
  let file = options.file;
  let openFailed: FsError | undefined;
  if (file === undefined && options.logPath !== undefined) {
    const opened = openRunLogFile(options.logPath, { onError: report });
    if (E.isLeft(opened)) openFailed = opened.left;
    else file = opened.right;
  }
  if (file !== undefined) {
    const own = file;
    const stream: SafeStream = {
      write: (line: string) => {
        own.stream.write(line);
        const error = own.fileError();
        if (error !== undefined) report(error);
      },
      flushSync: () => undefined,
      end: () => {
        own.stream.end();
      },
    };
    streams.push({ stream, level: 'debug' });
  }
  const logger = pino({ level: 'debug' }, pino.multistream(streams));
  if (openFailed !== undefined) report(openFailed);
  return logger;
};

/** Options of {@link initLogging}. */
export interface InitLoggingOptions {
  /** Where console lines go (default `process.stdout`). */
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  /**
   * The run log already opened with {@link openRunLog} (the shell opens it first, so that a bad
   * path is a start-up error). Without it, `initLogging` opens it and reports a failure through
   * `onFileError` instead of throwing.
   */
  readonly file?: RunLogFile | undefined;
  /** Called once with the first error of `run.log` (opening it, or a write: a full disk). */
  readonly onFileError?: (error: FsError) => void;
}

/**
 * The spec's init_logging: the run's logger, bound to its name, id and rank. Console lines at
 * `config.logLevel` and up; `run.log` (JSON lines, debug and up, written synchronously so a crash
 * loses nothing already logged) when `config.log` is set and this is the main process. Never
 * throws for the log file: see {@link createRunLogger}.
 */
export const initLogging = (state: RunnerState, options: InitLoggingOptions = {}): Logger => {
  let file = options.file;
  let failed: FsError | undefined;
  if (file === undefined) {
    const opened = openRunLog(state);
    if (E.isLeft(opened)) failed = opened.left;
    else file = opened.right;
  }
  const onFileError = options.onFileError;
  const logger = createRunLogger({
    file,
    level: state.config.logLevel,
    format: state.config.logFormat,
    ...(onFileError === undefined ? {} : { onFileError }),
    ...(options.stdout === undefined ? {} : { stdout: options.stdout }),
  }).child({ run: name(state), id: id(state), rank: state.parallel.rank });
  if (failed !== undefined) {
    onFileError?.(failed);
    logger.error({ path: failed.path, code: failed.code }, failed.message);
  }
  return logger;
};

/**
 * The spec's print (set up by init_print): logs `message` on the main process only, unless
 * `force`. Returns whether it was logged.
 */
export const print = (
  logger: Logger,
  state: RunnerState,
  message: string,
  options: { readonly force?: boolean } = {},
): boolean => {
  if (!isMainProcess(state) && options.force !== true) return false;
  logger.info(message);
  return true;
};
