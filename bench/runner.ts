/**
 * The runner's overhead per epoch against the same tfjs loop written bare (the parity check
 * PyTorch Lightning runs against raw PyTorch). Run: `npx tsx bench/runner.ts [epochs]`.
 *
 * Both sides train the same MLP (64 -> 256 -> 256 -> 10, Adam) on the same synthetic data
 * (4096 samples, batch 64) with the same shuffles, and evaluate a 1024-sample split each epoch.
 * The runner side also dispatches every action to history.jsonl, updates meters, and writes a
 * checkpoint (weights + Adam slots, fsynced) and the result files every epoch. Runs alternate
 * (bare, runner, bare, ...) so load on the machine hits both alike; medians are compared.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { permutation, seedRng } from '../src/index.js';
import { createRunner } from '../src/effects/index.js';
import { modelPart, optimizerPart, trainTfjs } from '../src/effects/tfjs/index.js';

await tf.setBackend('cpu');
const EPOCHS = Number(process.argv[2] ?? 3);
const N = 4096;
const BATCH = 64;
const data = (() => {
  const x = tf.randomNormal([N, 64], 0, 1, 'float32', 1);
  const w = tf.randomNormal([64, 10], 0, 1, 'float32', 2);
  const y = tf.oneHot(x.matMul(w).argMax(1), 10);
  const vx = tf.randomNormal([1024, 64], 0, 1, 'float32', 3);
  const vy = tf.oneHot(vx.matMul(w).argMax(1), 10);
  return { train: { x, y }, val: { x: vx, y: vy } };
})();

const build = () => {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        name: 'h1',
        units: 256,
        activation: 'relu',
        inputShape: [64],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({
        name: 'h2',
        units: 256,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
      tf.layers.dense({
        name: 'out',
        units: 10,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      }),
    ],
  });
  const optimizer: tf.Optimizer = tf.train.adam(0.001);
  return { model, optimizer };
};
const loss = (y: tf.Tensor, p: tf.Tensor) =>
  tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, p);
const accuracy = (y: tf.Tensor, p: tf.Tensor) =>
  tf.metrics.categoricalAccuracy(y, p).mean<tf.Scalar>();

/** The same work written bare: shuffle, gather, grads, Adam step, running means, evaluation. */
interface Timing {
  wall: number;
  cpu: number;
}
const clock = (): Timing => {
  const c = process.cpuUsage();
  return { wall: performance.now(), cpu: (c.user + c.system) / 1000 };
};
const since = (t: Timing): Timing => {
  const n = clock();
  return { wall: n.wall - t.wall, cpu: n.cpu - t.cpu };
};

const bare = (): Timing[] => {
  const { model, optimizer } = build();
  const vars = model.trainableWeights.map(
    (w) => tf.engine().registeredVariables[w.name] as tf.Variable,
  );
  let rng = seedRng(0);
  const times: Timing[] = [];
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const t = clock();
    const [order, next] = permutation(rng, N);
    rng = next;
    const idx = tf.tensor1d(order, 'int32');
    let sum = 0;
    let acc = 0;
    for (let s = 0; s < N; s += BATCH) {
      const size = Math.min(BATCH, N - s);
      const { l, a, grads } = tf.tidy(() => {
        const i = idx.slice(s, size);
        const xb = tf.gather(data.train.x, i);
        const yb = tf.gather(data.train.y, i);
        let a = 0;
        const { value, grads } = tf.variableGrads(() => {
          const p = model.apply(xb, { training: true }) as tf.Tensor;
          a = (accuracy(yb, p).dataSync() as Float32Array)[0] ?? 0;
          return loss(yb, p);
        }, vars);
        return { l: (value.dataSync() as Float32Array)[0] ?? 0, a, grads };
      });
      const named: Record<string, tf.Tensor> = grads;
      tf.tidy(() => {
        optimizer.applyGradients(named);
      });
      for (const g of Object.values(grads)) g.dispose();
      sum += l * size;
      acc += a * size;
    }
    idx.dispose();
    let vl = 0;
    for (let s = 0; s < 1024; s += BATCH) {
      vl += tf.tidy(() => {
        const p = model.apply(data.val.x.slice(s, BATCH), { training: false }) as tf.Tensor;
        const yb = data.val.y.slice(s, BATCH);
        return (
          ((loss(yb, p).dataSync() as Float32Array)[0] ?? 0) +
          ((accuracy(yb, p).dataSync() as Float32Array)[0] ?? 0) * 0
        );
      });
    }
    if (!Number.isFinite(sum + acc + vl)) throw new Error('diverged');
    times.push(since(t));
  }
  return times;
};

const withRunner = async (files: boolean): Promise<Timing[]> => {
  const root = await mkdtemp(join(tmpdir(), 'danling-bench-'));
  const { model, optimizer } = build();
  const started = await createRunner(
    {
      projectRoot: root,
      epochEnd: EPOCHS,
      seed: 0,
      dataloader: { batchSize: BATCH },
      scoreName: 'accuracy',
      log: true,
    },
    {
      parts: { model: modelPart(tf, model), optimizer: optimizerPart(tf, optimizer) },
      logger: (await import('pino')).pino({ level: 'silent' }),
      ...(files ? {} : { history: false as const }),
    },
  );
  if (E.isLeft(started)) throw new Error(started.left.message);
  const runner = started.right;
  const times: Timing[] = [];
  let t = clock();
  // Each epoch ends with its epoch line (an object with `epoch`): time from one to the next.
  const info = runner.logger.info.bind(runner.logger);
  (runner.logger as { info: unknown }).info = (obj: unknown, msg?: string) => {
    if (typeof obj === 'object' && obj !== null && 'epoch' in obj) {
      times.push(since(t));
      t = clock();
    }
    info(obj as object, msg);
  };
  const out = await trainTfjs(runner, {
    tf,
    model,
    optimizer,
    loss,
    metrics: { accuracy },
    splits: data,
    save: files,
  });
  if (E.isLeft(out)) throw new Error(out.left.message);
  await runner.close();
  await rm(root, { recursive: true, force: true });
  return times;
};

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log(
  `node ${process.version}, tfjs ${tf.version.tfjs} (${tf.getBackend()} backend), ${EPOCHS} epochs a run`,
);
bare(); // warm-up: kernels, JIT
const ROUNDS = Number(process.argv[3] ?? 3);
const b: Timing[] = [];
const r: Timing[] = [];
const q: Timing[] = [];
for (let round = 0; round < ROUNDS; round++) {
  b.push(...bare());
  q.push(...(await withRunner(false)));
  r.push(...(await withRunner(true)));
}
const mb = { wall: median(b.map((x) => x.wall)), cpu: median(b.map((x) => x.cpu)) };
const pct = (m: number, base: number): string => `${(((m - base) / base) * 100).toFixed(2)}%`;
const report = (label: string, xs: Timing[]): void => {
  const m = { wall: median(xs.map((x) => x.wall)), cpu: median(xs.map((x) => x.cpu)) };
  console.log(
    `${label.padEnd(46)} wall ${m.wall.toFixed(0)} ms (${pct(m.wall, mb.wall)})  cpu ${m.cpu.toFixed(0)} ms (${pct(m.cpu, mb.cpu)})`,
  );
};
console.log(`medians per epoch over ${b.length} epochs each; overhead against the bare loop in ()`);
console.log(
  `${'bare tfjs loop'.padEnd(46)} wall ${mb.wall.toFixed(0)} ms  cpu ${mb.cpu.toFixed(0)} ms`,
);
report('runner: reducers and meters, no files', q);
report('runner: + history.jsonl, checkpoint, results', r);
