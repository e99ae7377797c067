/**
 * The action log (`history.jsonl`) benchmark.
 *
 *   npx tsx bench/log.ts dispatch [DIR]      per-step cost of runner.dispatch, log on vs off vs a
 *                                            mutable yardstick (interleaved rounds, warm-up); the
 *                                            run dirs in DIR (default os.tmpdir(); /dev/shm takes
 *                                            the disk's page-cache cost out)
 *   npx tsx bench/log.ts write N FILE        writes a demo-shaped log of N actions
 *   npx tsx bench/log.ts replay FILE         replayLog to the end from disk: time and peak RSS
 *   npx tsx bench/log.ts resume FILE         openHistory on an existing log (a resume): time, RSS
 *
 * What it measures: the loop's real path (two `dispatch` calls per step, `stepProgress` +
 * `updateMeters`, as `trainTfjs` makes them), through `createRunner`; reading from the page
 * cache. What it leaves out: fsync cost (the log's default policy fsyncs once per 100k lines and
 * at checkpoints; a cold disk read; tfjs itself. Timings on a shared 2-core machine are noisy:
 * compare the columns of one run, not runs.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import pino from 'pino';
import { openHistory, replayLog } from '../src/effects/run/history.js';
import { createRunner, type Runner } from '../src/effects/shell/runner.js';
import { actions, reduce, type Action } from '../src/reducers/actions.js';
import { createState } from '../src/state/runner/RunnerState.js';

const rss = (): string => `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB peak RSS`;
const quiet = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});

const start = async (root: string, history: boolean): Promise<Runner> => {
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

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const dispatchBench = async (dir: string): Promise<void> => {
  const rootOn = mkdtempSync(join(dir, 'bench-log-on-'));
  const rootOff = mkdtempSync(join(dir, 'bench-log-off-'));
  const on = await start(rootOn, true);
  const off = await start(rootOff, false);
  // The yardstick: a mutable record updated in place, what hand-written loop code would do.
  const y = { step: 0, iter: 0, meters: { loss: { val: 0, sum: 0, count: 0, avg: 0 } } };
  const yard = (loss: number, n: number): void => {
    y.step += 1;
    y.iter += 1;
    const m = y.meters.loss;
    m.val = loss;
    m.sum += loss * n;
    m.count += n;
    m.avg = m.sum / m.count;
  };
  const STEPS = 20_000;
  // Wall time and process CPU time (user + system) per step: on a shared machine the CPU time
  // leaves out the time this process waited for a core.
  const time = (f: (i: number) => void): [number, number] => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 1; i <= STEPS; i++) f(i);
    const wall = Number(process.hrtime.bigint() - t0) / STEPS / 1000;
    const c = process.cpuUsage(c0);
    return [wall, (c.user + c.system) / STEPS];
  };
  const names = ['log on', 'log off', 'yardstick'];
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const step = (r: Runner) => (i: number) => {
    r.dispatch(actions.stepProgress());
    r.dispatch(actions.updateMeters({ loss: 1 / i, accuracy: 0.5 }, 16));
  };
  const runs: [string, (i: number) => void][] = [
    ['log on', step(on)],
    ['log off', step(off)],
    [
      'yardstick',
      (i) => {
        yard(1 / i, 16);
      },
    ],
  ];
  for (let round = 0; round < 23; round++) {
    for (const [name, f] of round % 2 === 0 ? runs : [...runs].reverse()) {
      const [w, c] = time(f);
      if (round < 3) continue; // 3 warm-up rounds
      (wall[name] ??= []).push(w);
      (cpu[name] ??= []).push(c);
    }
  }
  const spread = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    return `${median(xs).toFixed(3)} us (${s[0]?.toFixed(3)}-${s[s.length - 1]?.toFixed(3)})`;
  };
  console.log(
    `per training step (2 dispatches), ${STEPS} steps x 20 rounds after 3 warm-up; median (min-max):`,
  );
  for (const name of names) {
    console.log(
      `  ${name.padEnd(10)} wall ${spread(wall[name] ?? [])}  cpu ${spread(cpu[name] ?? [])}`,
    );
  }
  const m = (k: string): number => median(wall[k] ?? []);
  console.log(
    `  wall: log on / log off ${(m('log on') / m('log off')).toFixed(2)}x, log off / yardstick ${(m('log off') / m('yardstick')).toFixed(0)}x`,
  );
  await on.close();
  await off.close();
  rmSync(rootOn, { recursive: true, force: true });
  rmSync(rootOff, { recursive: true, force: true });
};

/** The demo's shape: 8 train steps, 2 eval steps and one result per epoch. */
const epochActions = (e: number): Action[] => {
  const xs: Action[] = [actions.startEpoch(e), actions.setMode('train'), actions.resetMeters()];
  for (let i = 0; i < 8; i++)
    xs.push(
      actions.stepProgress(),
      actions.updateMeters({ loss: 1 / (i + e + 1), accuracy: 0.5 }, 16),
    );
  xs.push(actions.setMode('eval'), actions.resetMeters());
  for (let i = 0; i < 2; i++) xs.push(actions.updateMeters({ loss: 0.3, accuracy: 0.9 }, 16));
  xs.push(actions.appendResult({ val: { loss: 0.3, accuracy: 0.9 } }));
  return xs;
};

const writeBench = async (n: number, file: string): Promise<void> => {
  let s = createState({ projectRoot: tmpdir(), epochEnd: 1_000_000 });
  const opened = await openHistory(file, s, { fsync: 'never' })();
  if (E.isLeft(opened)) throw new Error(opened.left.message);
  const w = opened.right.writer;
  const t0 = performance.now();
  let e = 0;
  while (w.count() < n) {
    for (const a of epochActions(e++)) {
      if (w.count() >= n) break;
      s = reduce(s, a);
      w.append(a, s);
    }
  }
  await w.close()();
  const bytes = statSync(file).size;
  console.log(
    `wrote ${n} actions (${e} epochs) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${bytes} bytes, ${(bytes / n).toFixed(1)} bytes/action`,
  );
};

const replayBench = async (file: string): Promise<void> => {
  const t0 = performance.now();
  const r = await replayLog(file)();
  if (E.isLeft(r)) throw new Error(r.left.message);
  console.log(
    `replayLog ${file}: ${r.right.actions} actions (${r.right.replayed} applied after the last snapshot, ${r.right.state.results.entries.size} results) in ${(performance.now() - t0).toFixed(0)} ms, ${rss()}`,
  );
};

const resumeBench = async (file: string): Promise<void> => {
  const s = createState({ projectRoot: tmpdir(), epochEnd: 1 });
  const t0 = performance.now();
  const opened = await openHistory(file, s)();
  if (E.isLeft(opened)) throw new Error(opened.left.message);
  const ms = performance.now() - t0;
  console.log(
    `openHistory (resume) ${file}: ${opened.right.writer.count()} actions counted in ${ms.toFixed(0)} ms, ${rss()}`,
  );
  await opened.right.writer.close()();
};

const [mode, a, b] = process.argv.slice(2);
if (mode === 'dispatch') await dispatchBench(a ?? tmpdir());
else if (mode === 'write') await writeBench(Number(a), b ?? 'history.jsonl');
else if (mode === 'replay') await replayBench(a ?? 'history.jsonl');
else if (mode === 'resume') await resumeBench(a ?? 'history.jsonl');
else console.log('usage: tsx bench/log.ts dispatch | write N FILE | replay FILE | resume FILE');
