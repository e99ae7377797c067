/**
 * Checkpoint saves and the training loop (issue 13): how long a save keeps the loop from
 * training, and what saving every N steps costs an epoch, on an Iris-sized MLP (4-16-3) and a
 * mid-sized one (256-1024-1024-10, about 2.4M weights: an 8 MB model plus 16 MB of Adam slots).
 *
 * 1. The loop blocked per save, interleaved, after a warm-up: `runner.saveCheckpoint()` (what a
 *    synchronous save costs: copy + write + fsyncs + links, awaited), `runner.queueCheckpoint()`
 *    (what trainTfjs does: the copy out of the backend, the write queued) with the write in the
 *    checkpoint writer thread (the default) and in the main thread (`saveThread: false`), and the
 *    copy alone (`collectStateDicts`, the floor). Two columns: `wait`, the time until the call
 *    resolves (what the loop waits for directly), and `main`, the main thread's busy time from
 *    the call until the write has finished (event-loop utilization: the copy plus every
 *    continuation of the write that runs on the main thread, e.g. the snapshot's structured
 *    clone to the thread, or the file calls' callbacks), and of that the garbage collector's
 *    pauses (`gc`: the main thread's GC entries inside the window; a major GC for the copies
 *    of every side lands in whichever side's window it falls in). Target: queued <= copy + 10%.
 * 2. Epoch time of `trainTfjs` with `saveSteps` (a queued save every N optimizer steps plus the
 *    epoch-end one) against the same training with `save: false`, interleaved rounds. Target:
 *    within 2%.
 * Leaves out: the background write's own CPU time beyond what shows in (2), power-loss
 * durability (the disk's fsync), TensorBoard, other backends than the pure-JS CPU one.
 * Run: `npx tsx bench/saves.ts [ROUNDS]` (default 5).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import pino from 'pino';
import { collectStateDicts } from '../src/effects/checkpoint/checkpointFile.js';
import { createRunner, type Runner } from '../src/effects/shell/runner.js';
import { modelPart, optimizerPart } from '../src/effects/tfjs/tfjs.js';
import { trainTfjs } from '../src/effects/tfjs/trainTfjs.js';
import { machine, median, spread } from './common.js';
import { buildMlp, quiet } from './mlp.js';

const ROUNDS = Number(process.argv[2] ?? 5);
await tf.setBackend('cpu');

interface Model {
  readonly name: string;
  readonly layers: readonly number[];
  readonly samples: number;
  readonly batch: number;
  readonly saveSteps: number;
}
const MODELS: readonly Model[] = [
  { name: 'iris 4-16-3', layers: [4, 16, 3], samples: 120, batch: 4, saveSteps: 5 },
  {
    name: 'mid 256-1024-1024-10',
    layers: [256, 1024, 1024, 10],
    samples: 512,
    batch: 64,
    saveSteps: 2,
  },
];

const build = (m: Model) => buildMlp(m.layers);

const start = async (
  root: string,
  m: Model,
  extra: object,
  saveThread = true,
): Promise<{ runner: Runner; model: tf.LayersModel; optimizer: tf.Optimizer }> => {
  let built: ReturnType<typeof build> | undefined;
  const r = await createRunner(
    {
      projectRoot: root,
      epochEnd: 1_000_000,
      seed: 0,
      tensorboard: false,
      log: false,
      dataloader: { batchSize: m.batch },
      ...extra,
    },
    {
      logger: pino({ level: 'silent' }),
      env: {},
      signals: false,
      saveThread,
      progressStream: quiet,
      parts: () => {
        built = build(m);
        return { model: modelPart(tf, built.model), optimizer: optimizerPart(tf, built.optimizer) };
      },
    },
  );
  if (E.isLeft(r) || built === undefined) throw new Error('start failed');
  return { runner: r.right, ...built };
};

const time = async (f: () => Promise<unknown>): Promise<number> => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};

/** The main thread's GC pauses (start, duration), to count those inside a timed window. */
const pauses: { start: number; duration: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) pauses.push({ start: e.startTime, duration: e.duration });
}).observe({ entryTypes: ['gc'] });
const gcWithin = (from: number, to: number): number =>
  pauses.filter((p) => p.start >= from && p.start < to).reduce((a, p) => a + p.duration, 0);

console.log(`${machine()}, tfjs ${tf.version.tfjs} (cpu backend), ${ROUNDS} rounds\n`);
for (const m of MODELS) {
  const root = mkdtempSync(join(tmpdir(), 'bench-saves-'));
  const [input = 1] = m.layers;
  const classes = m.layers.at(-1) ?? 1;
  const x = tf.randomNormal([m.samples, input], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.randomUniform([m.samples], 0, classes, 'int32', 2), classes);

  // 1. The loop blocked per save.
  const one = await start(join(root, 'saves'), m, {});
  const main = await start(join(root, 'saves-main'), m, {}, false);
  // One optimizer step so the Adam slots exist (as in training).
  for (const r of [one, main])
    r.optimizer.minimize(() =>
      tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, r.model.predict(x) as tf.Tensor),
    );
  const runner = one.runner;
  const wait: Record<string, number[]> = {};
  const busy: Record<string, number[]> = {};
  const windows: Record<string, [number, number][]> = {};
  const sides: [string, Runner, () => Promise<unknown>][] = [
    ['sync save', runner, () => runner.saveCheckpoint()],
    [
      'queued, thread',
      runner,
      async () => {
        await runner.queueCheckpoint();
      },
    ],
    [
      'queued, main',
      main.runner,
      async () => {
        await main.runner.queueCheckpoint();
      },
    ],
    ['copy alone', runner, () => collectStateDicts(runner.parts)],
  ];
  for (let r = -2; r < ROUNDS * 3; r++) {
    for (const [k, who, f] of r % 2 === 0 ? sides : [...sides].reverse()) {
      await who.settle(); // each side starts with no write in flight
      const elu = performance.eventLoopUtilization();
      const from = performance.now();
      const ms = await time(f);
      await who.settle();
      const used = performance.eventLoopUtilization(elu);
      if (r >= 0) {
        (wait[k] ??= []).push(ms);
        (busy[k] ??= []).push(used.active);
        (windows[k] ??= []).push([from, performance.now()]);
      }
    }
  }
  await runner.close();
  await main.runner.close();
  one.model.dispose();
  main.model.dispose();
  await new Promise((resolve) => setTimeout(resolve, 50)); // the last GC entries arrive
  const copy = median(wait['copy alone'] ?? []);
  console.log(
    `${m.name}: the loop blocked per save, ms, median (min-max) of ${ROUNDS * 3}: wait | main thread busy until written | of which GC`,
  );
  for (const [k, v] of Object.entries(wait)) {
    const b = busy[k] ?? [];
    const g = (windows[k] ?? []).map(([from, to]) => gcWithin(from, to));
    console.log(
      `  ${k.padEnd(14)} wait ${spread(v, 2)} (${(median(v) / copy).toFixed(2)}x the copy) | main ${spread(b, 2)} (${(median(b) / copy).toFixed(2)}x) | gc ${spread(g, 2)}`,
    );
  }

  // 2. Epoch time with saveSteps against no saves.
  const SIDES = ['no saves', 'saveSteps', 'saveSteps, main thread'] as const;
  const epoch: Record<string, number[]> = Object.fromEntries(SIDES.map((k) => [k, []]));
  for (let r = -1; r < ROUNDS; r++) {
    const k = (r + SIDES.length) % SIDES.length;
    for (const side of [...SIDES.slice(k), ...SIDES.slice(0, k)]) {
      const withSaves = side !== 'no saves';
      const s = await start(
        join(root, `${side}-${r}`),
        m,
        { epochEnd: 2, ...(withSaves ? { saveSteps: m.saveSteps } : {}) },
        side !== 'saveSteps, main thread',
      );
      const ms = await time(async () => {
        const out = await trainTfjs(s.runner, {
          tf,
          loss: (yt, yp) => tf.losses.softmaxCrossEntropy(yt, yp),
          splits: { train: { x, y } },
          save: withSaves,
        });
        if (E.isLeft(out)) throw new Error(out.left.message);
      });
      await s.runner.close();
      if (r >= 0) epoch[side]?.push(ms / 2);
      s.model.dispose();
    }
  }
  const none = median(epoch['no saves'] ?? []);
  const steps = Math.ceil(m.samples / m.batch);
  console.log(
    `${m.name}: epoch time, ms, median (min-max) of ${ROUNDS} rounds of 2 epochs (${steps} steps an epoch; saveSteps ${m.saveSteps}: ${Math.floor(steps / m.saveSteps)} queued saves + the epoch-end one)`,
  );
  for (const side of SIDES) {
    const v = epoch[side] ?? [];
    console.log(
      `  ${side.padEnd(22)} ${spread(v, 1)}  (${((median(v) / none - 1) * 100).toFixed(1)}%)`,
    );
  }
  console.log('');
  rmSync(root, { recursive: true, force: true });
}
console.log(machine());
