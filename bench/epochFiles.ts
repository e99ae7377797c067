/**
 * The per-epoch file cost (issue 13): epoch time of the same training three ways, side by side
 * in one process, interleaved (the order rotates each round), after a warm-up round:
 *
 * - `full runner`: `trainTfjs` as the demo runs it: the epoch-end checkpoint (`latest`, `best`
 *   when it improves), `results.jsonl` / `latest.json` / `best.json`, the action log, metric rows;
 *   the checkpoint and result files written in the checkpoint writer thread (the default);
 * - `main-thread saves`: the same with `saveThread: false` (the files written by the main
 *   thread's event loop, between batches: the code before the writer thread);
 * - `save: false`: the same `trainTfjs` without checkpoints or result files (the action log and
 *   metric rows stay);
 * - `hand loop`: a careful hand-written tfjs loop, the yardstick: the same model, optimizer,
 *   batches (gathered by a shuffled index), `variableGrads` + `applyGradients`, and one `dataSync`
 *   of the loss per step, as trainTfjs does; no runner, no files.
 *
 * The timed span is `trainTfjs` (or the loop) for EPOCHS epochs, including the wait for the last
 * background save; runner start-up and `close()` are left out. Also left out: TensorBoard
 * (off), evaluation splits (train only), power-loss durability (fsync cost depends on the disk:
 * here a VM's virtual disk), other backends than the pure-JS CPU one.
 * Run: `npx tsx bench/epochFiles.ts [ROUNDS] [MODEL]` (default 7 rounds, every model; `iris`
 * runs the two Iris ones, `200` the long one, `mid` the mid-sized one).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import pino from 'pino';
import { createRunner } from '../src/effects/shell/runner.js';
import { modelPart, optimizerPart } from '../src/effects/tfjs/tfjs.js';
import { trainTfjs } from '../src/effects/tfjs/trainTfjs.js';
import { machine, median, spread } from './common.js';
import { buildMlp, quiet } from './mlp.js';

const ROUNDS = Number(process.argv[2] ?? 7);
/** Only the models whose name contains this (all by default). */
const ONLY = process.argv[3] ?? '';
await tf.setBackend('cpu');

interface Model {
  readonly name: string;
  readonly layers: readonly number[];
  readonly samples: number;
  readonly batch: number;
  readonly epochs: number;
}
const MODELS: readonly Model[] = [
  { name: 'iris 4-16-3', layers: [4, 16, 3], samples: 120, batch: 16, epochs: 10 },
  // A long run: the state (every result) grows, and saves that fall behind the epochs pile up.
  { name: 'iris 4-16-3, 200 epochs', layers: [4, 16, 3], samples: 120, batch: 16, epochs: 200 },
  {
    name: 'mid 256-1024-1024-10',
    layers: [256, 1024, 1024, 10],
    samples: 128,
    batch: 64,
    epochs: 2,
  },
];

const build = (m: Model) => buildMlp(m.layers);

const loss = (y: tf.Tensor, p: tf.Tensor): tf.Scalar =>
  tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, p);

/** trainTfjs for `m.epochs` epochs; ms per epoch. */
const runnerEpochs = async (
  root: string,
  m: Model,
  x: tf.Tensor,
  y: tf.Tensor,
  save: boolean,
  saveThread = true,
) => {
  let built: ReturnType<typeof build> | undefined;
  const r = await createRunner(
    {
      projectRoot: root,
      epochEnd: m.epochs,
      seed: 0,
      tensorboard: false,
      log: false,
      saveInterval: 0,
      dataloader: { batchSize: m.batch },
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
  const t = performance.now();
  const out = await trainTfjs(r.right, { tf, loss, splits: { train: { x, y } }, save });
  const ms = performance.now() - t;
  if (E.isLeft(out)) throw new Error(out.left.message);
  await r.right.close();
  built.model.dispose();
  return ms / m.epochs;
};

/** The yardstick: the same training by hand; ms per epoch. */
const handEpochs = (m: Model, x: tf.Tensor, y: tf.Tensor): number => {
  const { model, optimizer } = build(m);
  const t = performance.now();
  for (let e = 0; e < m.epochs; e++) {
    const order = tf.tensor1d(Array.from(tf.util.createShuffledIndices(m.samples)), 'int32');
    for (let start = 0; start < m.samples; start += m.batch) {
      const size = Math.min(m.batch, m.samples - start);
      tf.tidy(() => {
        const idx = order.slice(start, size);
        const xb = tf.gather(x, idx);
        const yb = tf.gather(y, idx);
        // minimize = variableGrads + applyGradients; the cost read once per step.
        const cost = optimizer.minimize(
          () => loss(yb, model.apply(xb, { training: true }) as tf.Tensor),
          true,
        );
        cost?.dataSync();
      });
    }
    order.dispose();
  }
  const ms = performance.now() - t;
  model.dispose();
  return ms / m.epochs;
};

console.log(`${machine()}, tfjs ${tf.version.tfjs} (cpu backend), ${ROUNDS} rounds\n`);
const SIDES = ['full runner', 'main-thread saves', 'save: false', 'hand loop'] as const;
for (const m of MODELS.filter((x) => x.name.includes(ONLY))) {
  const root = mkdtempSync(join(tmpdir(), 'bench-epoch-files-'));
  const [input = 1] = m.layers;
  const classes = m.layers.at(-1) ?? 1;
  const x = tf.randomNormal([m.samples, input], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.randomUniform([m.samples], 0, classes, 'int32', 2), classes);
  const times: Record<string, number[]> = Object.fromEntries(SIDES.map((s) => [s, []]));
  for (let r = -1; r < ROUNDS; r++) {
    const k = (r + SIDES.length) % SIDES.length;
    const order = [...SIDES.slice(k), ...SIDES.slice(0, k)];
    for (const side of order) {
      const ms =
        side === 'hand loop'
          ? handEpochs(m, x, y)
          : await runnerEpochs(
              join(root, `${side}-${r}`),
              m,
              x,
              y,
              side !== 'save: false',
              side !== 'main-thread saves',
            );
      if (r >= 0) times[side]?.push(ms);
    }
  }
  const hand = median(times['hand loop'] ?? []);
  const none = median(times['save: false'] ?? []);
  const steps = Math.ceil(m.samples / m.batch);
  console.log(
    `${m.name}: ms per epoch (${steps} steps, ${m.epochs} epochs a run), median (min-max) of ${ROUNDS}`,
  );
  for (const side of SIDES) {
    const v = times[side] ?? [];
    console.log(
      `  ${side.padEnd(17)} ${spread(v, 2)}  ${(median(v) / hand).toFixed(2)}x the hand loop, ${(median(v) / none).toFixed(3)}x save: false`,
    );
  }
  console.log(`  ${machine()}\n`);
  tf.dispose([x, y]);
  rmSync(root, { recursive: true, force: true });
}
