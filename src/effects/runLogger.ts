/**
 * The shell's default logger: pino JSON lines to `run.log` (when given) and to stdout, pretty on
 * a TTY. Object first, message second, as pino's convention.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

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
