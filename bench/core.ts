/**
 * Benchmarks of the functional core (issue 3). Run: `npx tsx bench/core.ts`.
 * 1. Append n results and query isBest + bestScore after each: ours (incremental) vs a naive
 *    selector that recomputes from the history, at n = 1k, 10k, 100k.
 * 2. Per-step overhead of stepProgress + updateMeters (3 meters) vs a plain mutable loop.
 * 3. Replay of 1,000,000 actions.
 */
import { performance } from 'node:perf_hooks';
import { actions, replay, type Action } from '../src/reducers/actions.js';
import { appendResult, stepProgress, updateMeters } from '../src/reducers/reducers.js';
import { createState, type RunnerState } from '../src/state/runner/RunnerState.js';
import { bestScore, isBest, results } from '../src/state/runner/selectors.js';

const s0 = createState({ epochEnd: 1_000_000 }, { timestamp: 'bench' });
const loss = (i: number): number => 1 / (1 + i) + 0.3 * Math.sin(i);

/** The spec's way: scores rebuilt from the whole history on every query. */
const naiveBest = (state: RunnerState): { best: number | undefined; isBest: boolean } => {
  const scores = results(state).map((r) => (r.result['val'] as { loss: number }).loss);
  if (scores.length === 0) return { best: undefined, isBest: true };
  const best = Math.min(...scores);
  return { best, isBest: Math.abs((scores.at(-1) ?? 0) - best) < 1e-7 };
};

const appendBench = (n: number, naive: boolean): number => {
  // The naive side appends with the same reducer, so the gap is the queries alone.
  let state = s0;
  let sink = 0;
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    state = appendResult(state, { val: { loss: loss(i) } }, i);
    if (naive) {
      const q = naiveBest(state);
      sink += (q.best ?? 0) + (q.isBest ? 1 : 0);
    } else {
      sink += (bestScore(state) ?? 0) + (isBest(state) ? 1 : 0);
    }
  }
  const seconds = (performance.now() - t) / 1000;
  if (Number.isNaN(sink)) throw new Error('unreachable');
  return n / seconds;
};

console.log(`node ${process.version}, ${String((await import('node:os')).cpus().length)} cores`);
console.log('\n1. append + isBest + bestScore after each (ops/s)');
console.log('n\tours\tnaive\tours/naive');
for (const n of [1_000, 10_000, 100_000]) {
  const ours = appendBench(n, false);
  // The naive side is O(n^2): at 100k it would take minutes, so it is measured on a prefix
  // of the same run (its last 200 appends, starting from a history of n - 200).
  let naive: number;
  if (n <= 10_000) naive = appendBench(n, true);
  else {
    let state = s0;
    for (let i = 0; i < n - 200; i++) state = appendResult(state, { val: { loss: loss(i) } }, i);
    const t = performance.now();
    for (let i = n - 200; i < n; i++) {
      state = appendResult(state, { val: { loss: loss(i) } }, i);
      naiveBest(state);
    }
    naive = 200 / ((performance.now() - t) / 1000);
  }
  console.log(`${n}\t${ours.toFixed(0)}\t${naive.toFixed(0)}\t${(ours / naive).toFixed(1)}x`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

console.log(
  '\n2. per-step overhead: stepProgress + updateMeters (3 meters), median of 21 runs of 100k steps',
);
const STEPS = 100_000;
const oursRuns: number[] = [];
const rawRuns: number[] = [];
for (let run = 0; run < 21; run++) {
  let state = s0;
  let t = performance.now();
  for (let i = 0; i < STEPS; i++) {
    state = stepProgress(state);
    state = updateMeters(state, { loss: 0.5 + i * 1e-6, accuracy: 0.9, lr: 0.01 }, 32);
  }
  oursRuns.push(((performance.now() - t) * 1000) / STEPS);
  const raw = {
    step: 0,
    iter: 0,
    meters: new Map<string, { val: number; sum: number; count: number; avg: number }>(),
  };
  t = performance.now();
  for (let i = 0; i < STEPS; i++) {
    raw.step += 1;
    raw.iter += 1;
    for (const [k, v] of [
      ['loss', 0.5 + i * 1e-6],
      ['accuracy', 0.9],
      ['lr', 0.01],
    ] as const) {
      const m = raw.meters.get(k) ?? { val: 0, sum: 0, count: 0, avg: 0 };
      m.val = v;
      m.sum += v * 32;
      m.count += 32;
      m.avg = m.sum / m.count;
      raw.meters.set(k, m);
    }
  }
  rawRuns.push(((performance.now() - t) * 1000) / STEPS);
  if (state.progress.step !== STEPS || raw.step !== STEPS) throw new Error('miscounted');
}
const ours = median(oursRuns);
const raw = median(rawRuns);
console.log(
  `ours ${ours.toFixed(3)} us/step\tmutable ${raw.toFixed(3)} us/step\tratio ${(ours / raw).toFixed(1)}x`,
);

console.log(
  '\n3. replay of 1,000,000 actions (stepProgress, updateMeters, appendResult every 1000)',
);
const log: Action[] = [];
for (let i = 0; i < 1_000_000; i++) {
  if (i % 1000 === 999) log.push(actions.appendResult({ val: { loss: loss(i) } }, i / 1000));
  else if (i % 2 === 0) log.push(actions.stepProgress());
  else log.push(actions.updateMeters({ loss: loss(i) }, 32));
}
const replays: number[] = [];
for (let run = 0; run < 5; run++) {
  const t = performance.now();
  const end = replay(s0, log);
  replays.push(performance.now() - t);
  if (end.results.entries.size !== 1000) throw new Error('replay lost results');
}
console.log(`median ${median(replays).toFixed(0)} ms over 5 runs`);
