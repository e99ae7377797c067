/**
 * The progress bar of the spec's step_log on a TTY: one line redrawn in place, throttled.
 * Off a TTY it draws nothing: the periodic step lines of `stepLog` are the progress there.
 */
import { renderProgress } from '../../state/runner/progressLine.js';

/** A stream the bar draws on. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** A progress bar. */
export interface ProgressBar {
  /** Redraws (at most every `intervalMs`, and always at the last step). */
  update(
    split: string,
    step: number,
    total: number,
    meters: Readonly<Record<string, number>>,
    epoch?: string,
  ): void;
  /** Clears the line (before other output, or at the end). */
  clear(): void;
}

/**
 * A progress bar on `stream` when it is a TTY (`\r` redraws, cleared with ANSI erase-line);
 * a no-op otherwise. The clock is injected for tests.
 */
export const createProgressBar = (
  stream: ProgressStream,
  options: { readonly now?: () => number; readonly intervalMs?: number } = {},
): ProgressBar => {
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? 100;
  let started = now();
  let lastSplit = '';
  let lastDraw = Number.NEGATIVE_INFINITY;
  let drawn = false;
  if (stream.isTTY !== true) return { update: () => undefined, clear: () => undefined };
  return {
    update: (split, step, total, meters, epoch) => {
      const t = now();
      if (split !== lastSplit || step <= 1) {
        started = t;
        lastSplit = split;
      }
      if (t - lastDraw < interval && step < total) return;
      lastDraw = t;
      const line = renderProgress({
        split,
        step,
        total,
        elapsedMs: t - started,
        meters,
        width: (stream.columns ?? 80) - 1,
        epoch,
      });
      stream.write(`\r\x1b[2K${line}`);
      drawn = true;
    },
    clear: () => {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
};
