/**
 * Checkpoint saves and the training loop (issue 13): how long a save keeps the loop from
 * training, and what saving every N steps costs an epoch, on an Iris-sized MLP (4-16-3) and a
 * mid-sized one (256-1024-1024-10, about 2.4M weights: an 8 MB model plus 16 MB of Adam slots).
 *
 * 1. The loop blocked per save, interleaved, after a warm-up: `runner.saveCheckpoint()` (what a
 *    synchronous save costs: copy + write + fsyncs + links, awaited), `runner.queueCheckpoint()`
 *    (what trainTfjs does now: the copy out of the backend, the write queued), and the copy alone
 *    (`collectStateDicts`, the floor). Target: queued <= copy + 10%.
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
import { performance } from 'node:perf_hooks';
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

console.log(`${machine()}, tfjs ${tf.version.tfjs} (cpu backend), ${ROUNDS} rounds\n`);
for (const m of MODELS) {
  const root = mkdtempSync(join(tmpdir(), 'bench-saves-'));
  const [input = 1] = m.layers;
  const classes = m.layers.at(-1) ?? 1;
  const x = tf.randomNormal([m.samples, input], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.randomUniform([m.samples], 0, classes, 'int32', 2), classes);

  // 1. The loop blocked per save.
  const { runner, model, optimizer } = await start(join(root, 'saves'), m, {});
  // One optimizer step so the Adam slots exist (as in training).
  optimizer.minimize(() =>
    tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, model.predict(x) as tf.Tensor),
  );
  const blocked: Record<string, number[]> = {
    'sync save': [],
    'queued save': [],
    'copy alone': [],
  };
  const sides: [string, () => Promise<unknown>][] = [
    ['sync save', () => runner.saveCheckpoint()],
    [
      'queued save',
      async () => {
        await runner.queueCheckpoint();
      },
    ],
    ['copy alone', () => collectStateDicts(runner.parts)],
  ];
  for (let r = -2; r < ROUNDS * 3; r++) {
    for (const [k, f] of r % 2 === 0 ? sides : [...sides].reverse()) {
      await runner.settle(); // each side starts with no write in flight
      const ms = await time(f);
      if (r >= 0) blocked[k]?.push(ms);
    }
  }
  await runner.settle();
  await runner.close();
  const copy = median(blocked['copy alone'] ?? []);
  console.log(`${m.name}: the loop blocked per save, ms, median (min-max) of ${ROUNDS * 3}`);
  for (const [k, v] of Object.entries(blocked)) {
    console.log(`  ${k.padEnd(12)} ${spread(v, 2)}  (${(median(v) / copy).toFixed(2)}x the copy)`);
  }

  // 2. Epoch time with saveSteps against no saves.
  const epoch: Record<string, number[]> = { saveSteps: [], 'no saves': [] };
  for (let r = -1; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['saveSteps', 'no saves'] : ['no saves', 'saveSteps'];
    for (const side of order) {
      const withSaves = side === 'saveSteps';
      const s = await start(join(root, `${side}-${r}`), m, {
        epochEnd: 2,
        ...(withSaves ? { saveSteps: m.saveSteps } : {}),
      });
      const ms = await time(async () => {
        const out = await trainTfjs(s.runner, {
          tf,
          model: s.model,
          optimizer: s.optimizer,
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
  const saves = median(epoch['saveSteps'] ?? []);
  const steps = Math.ceil(m.samples / m.batch);
  console.log(
    `${m.name}: epoch time, ms, median (min-max) of ${ROUNDS} rounds of 2 epochs (${steps} steps an epoch)`,
  );
  console.log(`  no saves     ${spread(epoch['no saves'] ?? [], 1)}`);
  console.log(
    `  saveSteps ${String(m.saveSteps).padEnd(2)} ${spread(epoch['saveSteps'] ?? [], 1)}  (${((saves / none - 1) * 100).toFixed(1)}%, ${Math.floor(steps / m.saveSteps)} queued saves + the epoch-end one)\n`,
  );
  rmSync(root, { recursive: true, force: true });
}
console.log(machine());
