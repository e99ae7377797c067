/**
 * The graceful stop: SIGINT, SIGTERM and SIGUSR1 (Slurm's `--signal`) only set a flag; the loop
 * looks at it at every step boundary, saves `latest`, drains its files and exits with
 * 128 + the signal number. A second signal exits at once.
 *
 * A wrapper process (`npm run`, the `tsx` command) relays the signal a terminal or Slurm already
 * sent to the whole process group, so one Ctrl-C reaches the script twice within milliseconds: a
 * repeat within {@link RELAY_WINDOW_MS} of the first is taken as that same request.
 */
import { constants } from 'node:os';

/** The signals that ask a run to stop. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGUSR1'];

/** A repeat of a stop signal sooner than this after the first is a relayed copy, not a second. */
export const RELAY_WINDOW_MS = 500;

/** 128 + the signal's number: the exit code a shell reports for a process the signal ended. */
export const signalExitCode = (signal: NodeJS.Signals): number =>
  128 + ((constants.signals[signal] as number | undefined) ?? 15);

/** What a stop signal means given the one before it (pure). */
export const onStopSignal = (
  first: { readonly at: number } | null,
  now: number,
): 'request' | 'relayed' | 'exit' =>
  first === null ? 'request' : now - first.at < RELAY_WINDOW_MS ? 'relayed' : 'exit';

/** The stop flag of one runner, and the handlers that set it. */
export interface StopControl {
  /** The signal that asked for a stop, or `null`. */
  readonly signal: () => NodeJS.Signals | null;
  /** Asks for a stop as if `signal` had arrived (for a user's own loop or a test). */
  readonly request: (signal?: NodeJS.Signals) => void;
  /** Removes the handlers (idempotent). */
  readonly remove: () => void;
}

/** Options of {@link installStopHandlers}. */
export interface StopOptions {
  /** Which signals to handle; `[]` installs none (default {@link STOP_SIGNALS}). */
  readonly signals?: readonly NodeJS.Signals[];
  /** Called once, on the first request. */
  readonly onRequest?: (signal: NodeJS.Signals) => void;
  /** Called on a second signal, before the process exits with 128 + its number. */
  readonly onForce?: (signal: NodeJS.Signals) => void;
  /** The clock in ms (default `Date.now`). */
  readonly now?: () => number;
  /** How the process ends on a second signal (default `process.exit`). */
  readonly exit?: (code: number) => void;
}

/** Installs the stop handlers of a runner; `remove()` (the runner's `close`) takes them away. */
export const installStopHandlers = (options: StopOptions = {}): StopControl => {
  const now = options.now ?? Date.now;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let first: { readonly signal: NodeJS.Signals; readonly at: number } | null = null;
  const request = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    if (first !== null) return;
    first = { signal, at: now() };
    options.onRequest?.(signal);
  };
  const handler = (signal: NodeJS.Signals): void => {
    const what = onStopSignal(first, now());
    if (what === 'request') request(signal);
    else if (what === 'exit') {
      options.onForce?.(signal);
      exit(signalExitCode(signal));
    }
  };
  const signals = options.signals ?? STOP_SIGNALS;
  for (const s of signals) process.on(s, handler);
  let removed = false;
  return {
    signal: () => first?.signal ?? null,
    request,
    remove: () => {
      if (removed) return;
      removed = true;
      for (const s of signals) process.off(s, handler);
    },
  };
};
