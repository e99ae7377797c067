/**
 * Shared parts of the benches: a runner started as the CLI would (quiet logger), medians with
 * their spread, the machine's load, and the per-step dispatch timing that bench/log.ts and
 * bench/core.ts both report. Not a bench itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import pino from 'pino';
import { createRunner, type Runner } from '../src/effects/shell/runner.js';
import { actions, reduce } from '../src/reducers/actions.js';
import { createState } from '../src/state/runner/RunnerState.js';

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

/** `median (min-max)` with `digits` decimals. */
export const spread = (xs: readonly number[], digits = 3): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `${median(xs).toFixed(digits)} (${(s[0] ?? Number.NaN).toFixed(digits)}-${(s[s.length - 1] ?? Number.NaN).toFixed(digits)})`;
};

/** The machine and its load average now (1, 5 and 15 minutes). */
export const machine = (): string =>
  `node ${process.version}, ${cpus().length} cores, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;

const quiet = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});

/** A runner in `root` (no tensorboard, silent logs), with or without its action log. */
export const startRunner = async (root: string, history: boolean): Promise<Runner> => {
  const r = await createRunner(
    { projectRoot: root, epochEnd: 1, seed: 0, tensorboard: false },
    {
      logger: pino({ level: 'silent' }),
      env: {},
      progressStream: quiet,
      ...(history ? {} : { history: false as const }),
    },
  );
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

/** Per-step wall and CPU times (us) of each side, one entry per timed round. */
export interface StepTimes {
  readonly wall: Readonly<Record<string, number[]>>;
  readonly cpu: Readonly<Record<string, number[]>>;
  readonly names: readonly string[];
  readonly steps: number;
  readonly rounds: number;
}

/**
 * Times one training step as `trainTfjs` makes it (`stepProgress` + `updateMeters` of a loss
 * and an accuracy over 16 samples) on four sides, interleaved round by round (the order reversed
 * every other round) after 3 warm-up rounds: `runner.dispatch` with the action log (run dir in
 * `dir`), `runner.dispatch` without it, the same two actions through `reduce` alone, and a
 * mutable yardstick (a record updated in place, what hand-written loop code does). CPU time is
 * the process's user + system time: it leaves out time spent waiting for a core.
 */
export const timeSteps = async (dir: string, rounds = 20, steps = 20_000): Promise<StepTimes> => {
  const rootOn = mkdtempSync(join(dir, 'bench-log-on-'));
  const rootOff = mkdtempSync(join(dir, 'bench-log-off-'));
  const on = await startRunner(rootOn, true);
  const off = await startRunner(rootOff, false);
  let s = createState({ projectRoot: rootOff, epochEnd: 1 });
  const y = {
    step: 0,
    iter: 0,
    meters: new Map<string, { val: number; sum: number; count: number; avg: number }>(),
  };
  const yard = (values: Readonly<Record<string, number>>, n: number): void => {
    y.step += 1;
    y.iter += 1;
    for (const k in values) {
      const v = values[k] ?? 0;
      let m = y.meters.get(k);
      if (m === undefined) y.meters.set(k, (m = { val: 0, sum: 0, count: 0, avg: 0 }));
      m.val = v;
      m.sum += v * n;
      m.count += n;
      m.avg = m.sum / m.count;
    }
  };
  const dispatchStep = (r: Runner) => (i: number) => {
    r.dispatch(actions.stepProgress());
    r.dispatch(actions.updateMeters({ loss: 1 / i, accuracy: 0.5 }, 16));
  };
  const sides: [string, (i: number) => void][] = [
    ['dispatch, log on', dispatchStep(on)],
    ['dispatch, log off', dispatchStep(off)],
    [
      'reduce only',
      (i) => {
        s = reduce(s, actions.stepProgress());
        s = reduce(s, actions.updateMeters({ loss: 1 / i, accuracy: 0.5 }, 16));
      },
    ],
    [
      'mutable yardstick',
      (i) => {
        yard({ loss: 1 / i, accuracy: 0.5 }, 16);
      },
    ],
  ];
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  for (let round = 0; round < rounds + 3; round++) {
    for (const [name, f] of round % 2 === 0 ? sides : [...sides].reverse()) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 1; i <= steps; i++) f(i);
      const w = Number(process.hrtime.bigint() - t0) / steps / 1000;
      const c = process.cpuUsage(c0);
      if (round < 3) continue;
      (wall[name] ??= []).push(w);
      (cpu[name] ??= []).push((c.user + c.system) / steps);
    }
  }
  for (const r of [on, off]) {
    const closed = await r.close();
    if (E.isLeft(closed)) throw new Error(closed.left.message);
  }
  rmSync(rootOn, { recursive: true, force: true });
  rmSync(rootOff, { recursive: true, force: true });
  if (y.step !== (rounds + 3) * steps) throw new Error('miscounted');
  return { wall, cpu, names: sides.map(([n]) => n), steps, rounds };
};

/** Prints {@link timeSteps}: one line per side, and the ratios of the medians. */
export const printSteps = (t: StepTimes): void => {
  console.log(
    `per training step (stepProgress + updateMeters), ${t.steps} steps x ${t.rounds} rounds after 3 warm-up; us, median (min-max):`,
  );
  for (const name of t.names) {
    console.log(
      `  ${name.padEnd(18)} wall ${spread(t.wall[name] ?? [])}  cpu ${spread(t.cpu[name] ?? [])}`,
    );
  }
  const m = (k: string): number => median(t.wall[k] ?? []);
  const y = m('mutable yardstick');
  console.log(
    `  wall medians: log on / log off ${(m('dispatch, log on') / m('dispatch, log off')).toFixed(2)}x; against the yardstick: log on ${(m('dispatch, log on') / y).toFixed(0)}x, log off ${(m('dispatch, log off') / y).toFixed(0)}x, reduce only ${(m('reduce only') / y).toFixed(0)}x`,
  );
};
