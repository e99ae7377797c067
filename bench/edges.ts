/**
 * Benchmarks of the edges (issue 5). Run: `npx tsx bench/edges.ts`.
 * 1. 100k step lines: our logger (pino, JSON lines, synchronous file destination so a crash
 *    loses nothing) vs console.log writing the same text lines to a file (a Console on a
 *    file stream), lines/s side by side.
 * 2. The seeded generator's cost per draw vs Math.random: the pure per-call API (state in,
 *    state out) and a bulk draw (permutation of 1M).
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Console } from 'node:console';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { createRunLogger } from '../src/effects/logging/runLogger.js';
import { formatStepLine } from '../src/state/runner/format.js';
import { randomFloat } from '../src/state/runner/random.js';
import { permutation, seedRng } from '../src/state/runner/rng.js';

const N = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'danling-bench-edges-'));
const nowhere = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});
const line = (i: number): string =>
  formatStepLine('train', { loss: 1 / (i + 1), accuracy: 0.5 }, 'train', i, N);
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

console.log(`node ${process.version}`);
const ours: number[] = [];
const raw: number[] = [];
for (let run = 0; run < 3; run++) {
  const f1 = join(dir, `ours-${run}.log`);
  const logger = createRunLogger({ logPath: f1, stdout: nowhere, level: 'silent' });
  let t = performance.now();
  for (let i = 0; i < N; i++) logger.info(line(i));
  ours.push(N / ((performance.now() - t) / 1000));
  const f2 = join(dir, `console-${run}.log`);
  const stream = createWriteStream(f2);
  const out = new Console({ stdout: stream });
  t = performance.now();
  for (let i = 0; i < N; i++) out.log(line(i));
  await new Promise<void>((resolve) => stream.end(resolve));
  raw.push(N / ((performance.now() - t) / 1000));
  if (statSync(f1).size === 0 || statSync(f2).size === 0) throw new Error('nothing written');
}
const [o, c] = [median(ours), median(raw)];
console.log(`\n1. ${N} step lines to a file (median of 3)`);
console.log(`ours (pino JSON, sync file)  ${o.toFixed(0)} lines/s`);
console.log(`console.log to a file stream ${c.toFixed(0)} lines/s`);
console.log(`ours / console.log           ${(o / c).toFixed(2)}x`);

const D = 1_000_000;
let rng = seedRng(1);
let sink = 0;
let t = performance.now();
for (let i = 0; i < D; i++) {
  const [x, next] = randomFloat(rng);
  sink += x;
  rng = next;
}
const perCall = ((performance.now() - t) * 1e6) / D;
t = performance.now();
for (let i = 0; i < D; i++) sink += Math.random();
const math = ((performance.now() - t) * 1e6) / D;
t = performance.now();
const [p] = permutation(seedRng(2), D);
const bulk = ((performance.now() - t) * 1e6) / D;
if (Number.isNaN(sink) || p.length !== D) throw new Error('unreachable');
console.log(`\n2. random draws (${D} each)`);
console.log(
  `randomFloat(state) -> [x, state]  ${perCall.toFixed(1)} ns/draw (${(perCall / math).toFixed(1)}x Math.random)`,
);
console.log(
  `permutation(state, 1M), per index ${bulk.toFixed(1)} ns (${(bulk / math).toFixed(1)}x Math.random)`,
);
console.log(`Math.random                       ${math.toFixed(1)} ns/draw`);
rmSync(dir, { recursive: true, force: true });
