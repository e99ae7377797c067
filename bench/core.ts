/**
 * Benchmarks of the functional core and the loop's dispatch path (issues 3 and 12).
 * Run: `npx tsx bench/core.ts [ROUNDS]` (default 20 rounds in part 1; about a minute in all).
 *
 * 1. One training step as `trainTfjs` makes it (stepProgress + updateMeters of loss and
 *    accuracy) through `runner.dispatch` with the action log on and off, through `reduce`
 *    alone, and a mutable yardstick (a record updated in place), interleaved rounds, wall and
 *    CPU time (see bench/common.ts).
 * 2. Append n results and query isBest + bestScore after each, at n = 1k, 10k, 100k: ours
 *    (persistent vectors, incremental best) against a fair yardstick (a plain array push and a
 *    running best: what mutable code would do), and, for reference only, the naive rebuild of
 *    the scores from the whole history on every query (quadratic, so the gap grows with n).
 * 3. Replay of 1,000,000 actions from a `history.jsonl` on disk (page cache warm) with
 *    `replayLog`: written without periodic snapshots, so every action is read, decoded, checked
 *    and applied; and with the default snapshots (one per 1000 actions), where `replayLog` reads
 *    the whole file but applies only the actions after the last snapshot. The in-memory fold
 *    (`replay` over an array) is shown for reference.
 *
 * What it leaves out: tfjs, checkpoints, the event loop (nothing here yields), cold-disk reads,
 * and GC pressure from a real model's tensors. The machine is a shared 2-core VM: compare the
 * sides of one run, and read the load average printed before and after.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as E from 'fp-ts/lib/Either.js';
import { openHistory, replayLog } from '../src/effects/run/history.js';
import { actions, reduce, replay, type Action } from '../src/reducers/actions.js';
import { appendResult } from '../src/reducers/reducers.js';
import {
  createState,
  decodeState,
  persistState,
  type RunnerState,
} from '../src/state/runner/RunnerState.js';
import { bestScore, isBest, results } from '../src/state/runner/selectors.js';
import { machine, median, printSteps, spread, timeSteps } from './common.js';

const ROUNDS = Number(process.argv[2] ?? 20);
// The state as a log snapshot holds it (decoded from its persisted form, which derives the
// run id), so the state replayed from a file can be compared with the one written byte for byte.
const decoded = decodeState(
  persistState(createState({ epochEnd: 1_000_000 }, { timestamp: 'bench' })),
);
if (E.isLeft(decoded)) throw new Error(decoded.left.message);
const s0 = decoded.right;
const loss = (i: number): number => 1 / (1 + i) + 0.3 * Math.sin(i);

console.log(machine());
console.log("\n1. the loop's dispatch path");
printSteps(await timeSteps(tmpdir(), ROUNDS));

// ---------------------------------------------------------------------------------------------
console.log('\n2. append a result + isBest + bestScore after each (ops/s, median of 5 runs)');

/** The spec's selector: scores rebuilt from the whole history on every query. */
const naiveBest = (state: RunnerState): { best: number | undefined; isBest: boolean } => {
  const scores = results(state).map((r) => (r.result['val'] as { loss: number }).loss);
  if (scores.length === 0) return { best: undefined, isBest: true };
  const best = Math.min(...scores);
  return { best, isBest: Math.abs((scores.at(-1) ?? 0) - best) < 1e-7 };
};

const ours = (n: number): number => {
  let state = s0;
  let sink = 0;
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    state = appendResult(state, { val: { loss: loss(i) } }, i);
    sink += (bestScore(state) ?? 0) + (isBest(state) ? 1 : 0);
  }
  const seconds = (performance.now() - t) / 1000;
  if (Number.isNaN(sink) || state.results.entries.size !== n) throw new Error('unreachable');
  return n / seconds;
};

/** The fair yardstick: a plain array of results and a running best, updated in place. */
const fair = (n: number): number => {
  const history: { index: number; result: { val: { loss: number } } }[] = [];
  let best = Number.POSITIVE_INFINITY;
  let bestAt = -1;
  let sink = 0;
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    const l = loss(i);
    history.push({ index: i, result: { val: { loss: l } } });
    if (l < best) {
      best = l;
      bestAt = history.length - 1;
    }
    sink += best + (bestAt === history.length - 1 ? 1 : 0);
  }
  const seconds = (performance.now() - t) / 1000;
  if (Number.isNaN(sink) || history.length !== n) throw new Error('unreachable');
  return n / seconds;
};

/** The naive rebuild; at n > 1k timed over the last 200 appends only (O(n^2) in all). */
const naive = (n: number): number => {
  const timed = n <= 1_000 ? n : 200;
  let state = s0;
  for (let i = 0; i < n - timed; i++) state = appendResult(state, { val: { loss: loss(i) } }, i);
  let sink = 0;
  const t = performance.now();
  for (let i = n - timed; i < n; i++) {
    state = appendResult(state, { val: { loss: loss(i) } }, i);
    const q = naiveBest(state);
    sink += (q.best ?? 0) + (q.isBest ? 1 : 0);
  }
  if (Number.isNaN(sink)) throw new Error('unreachable');
  return timed / ((performance.now() - t) / 1000);
};

console.log('n\tours\tfair yardstick\tyardstick/ours\tnaive rebuild (reference)\tours/naive');
for (const n of [1_000, 10_000, 100_000]) {
  const o: number[] = [];
  const f: number[] = [];
  for (let r = 0; r < 5; r++) {
    // Alternate which side runs first.
    if (r % 2 === 0) {
      o.push(ours(n));
      f.push(fair(n));
    } else {
      f.push(fair(n));
      o.push(ours(n));
    }
  }
  const v = naive(n);
  console.log(
    `${n}\t${median(o).toFixed(0)}\t${median(f).toFixed(0)}\t${(median(f) / median(o)).toFixed(0)}x slower\t${v.toFixed(0)}\t${(median(o) / v).toFixed(1)}x`,
  );
}

// ---------------------------------------------------------------------------------------------
console.log(
  '\n3. replay of 1,000,000 actions (stepProgress, updateMeters, appendResult every 1000)',
);
const log: Action[] = [];
for (let i = 0; i < 1_000_000; i++) {
  if (i % 1000 === 999)
    log.push(actions.appendResult({ val: { loss: loss(i) } }, (i - 999) / 1000));
  else if (i % 2 === 0) log.push(actions.stepProgress());
  else log.push(actions.updateMeters({ loss: loss(i), accuracy: 0.5 }, 32));
}
const dir = mkdtempSync(join(tmpdir(), 'bench-core-'));
const writeLog = async (file: string, snapshotEvery: number): Promise<RunnerState> => {
  const opened = await openHistory(file, s0, { snapshotEvery, fsync: 'never' });
  if (E.isLeft(opened)) throw new Error(opened.left.message);
  let s = s0;
  for (const a of log) {
    s = reduce(s, a);
    opened.right.writer.append(a, s);
  }
  const closed = await opened.right.writer.close();
  if (E.isLeft(closed)) throw new Error(closed.left.message);
  return s;
};
const full = join(dir, 'no-snapshots.jsonl');
const snap = join(dir, 'snapshots.jsonl');
const end = await writeLog(full, 10_000_000);
await writeLog(snap, 1000);
const fromFile = (file: string) => async (): Promise<number> => {
  const t = performance.now();
  const r = await replayLog(file);
  const ms = performance.now() - t;
  if (E.isLeft(r)) throw new Error(r.left.message);
  if (JSON.stringify(persistState(r.right.state)) !== JSON.stringify(persistState(end)))
    throw new Error('replay differs');
  return ms;
};
const inMemory = (): Promise<number> => {
  const t = performance.now();
  const s = replay(s0, log);
  const ms = performance.now() - t;
  if (s.results.entries.size !== 1000) throw new Error('replay lost results');
  return Promise.resolve(ms);
};
const sides: [string, () => Promise<number>][] = [
  [
    `replayLog, every action applied (${(statSync(full).size / 1e6).toFixed(0)} MB)`,
    fromFile(full),
  ],
  [`replayLog, default snapshots (${(statSync(snap).size / 1e6).toFixed(0)} MB)`, fromFile(snap)],
  ['replay() of an in-memory array (reference)', inMemory],
];
const times: Record<string, number[]> = {};
for (let run = 0; run < 5; run++) {
  for (const [name, f] of run % 2 === 0 ? sides : [...sides].reverse())
    (times[name] ??= []).push(await f());
}
for (const [name] of sides) console.log(`  ${name.padEnd(56)} ms ${spread(times[name] ?? [], 0)}`);
console.log(
  '  (ms: median (min-max) of 5 runs, sides alternated; the replayed state is checked against the one written)',
);
rmSync(dir, { recursive: true, force: true });
console.log(`\n${machine()}`);
