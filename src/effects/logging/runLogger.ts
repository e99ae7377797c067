/**
 * The shell's default logger: pino JSON lines to `run.log` (when given) and to stdout, pretty on
 * a TTY. Object first, message second, as pino's convention.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { id, isMainProcess, logPath, name } from '../../state/runner/selectors.js';

/** Options of {@link createRunLogger}. */
export interface RunLoggerOptions {
  /** The run's log file; `undefined` writes none (non-main ranks). */
  readonly logPath?: string | undefined;
  /** Minimum level (default `info`). */
  readonly level?: string;
  /** Where console lines go (default `process.stdout`); pretty when it is a TTY. */
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** A pino logger writing to stdout and, synchronously so no line is lost, to `logPath`. */
export const createRunLogger = (options: RunLoggerOptions = {}): Logger => {
  const out = options.stdout ?? process.stdout;
  const streams: { stream: DestinationStream | NodeJS.WritableStream; level: string }[] = [
    {
      stream: out.isTTY === true ? pretty({ destination: out, colorize: true, sync: true }) : out,
      level: options.level ?? 'info',
    },
  ];
  if (options.logPath !== undefined) {
    mkdirSync(dirname(options.logPath), { recursive: true });
    streams.push({
      stream: pino.destination({ dest: options.logPath, sync: true, append: true }),
      level: 'debug',
    });
  }
  return pino({ level: 'debug' }, pino.multistream(streams));
};

/** Options of {@link initLogging}. */
export interface InitLoggingOptions {
  /** Where console lines go (default `process.stdout`); pretty when it is a TTY. */
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * The spec's init_logging: the run's logger, bound to its name, id and rank. Console lines at
 * `config.logLevel` and up; `run.log` (JSON lines, debug and up, written synchronously so a crash
 * loses nothing already logged) when `config.log` is set and this is the main process.
 */
export const initLogging = (state: RunnerState, options: InitLoggingOptions = {}): Logger =>
  createRunLogger({
    logPath: state.config.log && isMainProcess(state) ? logPath(state) : undefined,
    level: state.config.logLevel,
    ...(options.stdout === undefined ? {} : { stdout: options.stdout }),
  }).child({ run: name(state), id: id(state), rank: state.parallel.rank });

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
