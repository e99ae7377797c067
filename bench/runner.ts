/**
 * The runner's overhead per epoch against the same tfjs loop written bare (the parity check
 * PyTorch Lightning runs against raw PyTorch), per model size and tfjs backend.
 *
 *   npx tsx bench/runner.ts [--rounds 2] [--models iris,mid,large] [--backends wasm,cpu]
 *
 * Models (MLPs, Adam, softmax cross-entropy, synthetic data, the same seeds and shuffles on
 * both sides): `iris` 4 -> 16 -> 3 (the demo's model: 120 training rows, batch 8, 30 validation
 * rows), `mid` 32 -> 64 -> 64 -> 4 (2048 rows, batch 32, 512 validation rows), `large`
 * 64 -> 256 -> 256 -> 10 (4096 rows, batch 64, 1024 validation rows). Backends: `wasm`
 * (`@tensorflow/tfjs-backend-wasm`) and `cpu` (the plain-JS one). For each pair, rounds of
 * (bare loop, runner without files, the same with six no-op hooks set, full runner) alternate
 * (the hooks row against the one without: what the hook calls cost; unused hooks cost less); each run trains a few epochs and
 * every epoch is one sample; medians per epoch of wall and process CPU time are compared, as a
 * ratio and in seconds per epoch.
 *
 * The runner side dispatches every action (meters, progress) and, in the full runner, appends
 * them to history.jsonl and writes a checkpoint (weights + Adam slots, fsynced) and the result
 * files every epoch. What it leaves out: tfjs-node (native), data loading (tensors are in
 * memory), TensorBoard files, and multi-process runs. A shared 2-core VM: small differences
 * (a few %) are within the noise; read the min-max.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as E from 'fp-ts/lib/Either.js';
import { permutation, seedRng } from '../src/index.js';
import { createRunner } from '../src/effects/index.js';
import { modelPart, optimizerPart, trainTfjs, type TfjsHooks } from '../src/effects/tfjs/index.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const ROUNDS = Number(arg('rounds', '2'));

interface Spec {
  readonly name: string;
  readonly layers: readonly number[]; // inputs, hidden..., classes
  readonly n: number;
  readonly nVal: number;
  readonly batch: number;
  /** Epochs per run (each one a sample). */
  readonly epochs: number;
}
const SPECS: Record<string, Spec> = {
  iris: { name: 'iris 4-16-3', layers: [4, 16, 3], n: 120, nVal: 30, batch: 8, epochs: 20 },
  mid: {
    name: 'mid 32-64-64-4',
    layers: [32, 64, 64, 4],
    n: 2048,
    nVal: 512,
    batch: 32,
    epochs: 3,
  },
  large: {
    name: 'large 64-256-256-10',
    layers: [64, 256, 256, 10],
    n: 4096,
    nVal: 1024,
    batch: 64,
    epochs: 2,
  },
};

let spec: Spec = SPECS['iris'] as Spec;
let EPOCHS = spec.epochs;
let N = spec.n;
let BATCH = spec.batch;
let NVAL = spec.nVal;
interface Split {
  readonly x: tf.Tensor;
  readonly y: tf.Tensor;
}
let data: { train: Split; val: Split } | undefined;
const splits = (): { train: Split; val: Split } => {
  if (data === undefined) throw new Error('no data: prepare() first');
  return data;
};
const prepare = (next: Spec): void => {
  spec = next;
  EPOCHS = spec.epochs;
  N = spec.n;
  BATCH = spec.batch;
  NVAL = spec.nVal;
  if (data !== undefined) tf.dispose([data.train.x, data.train.y, data.val.x, data.val.y]);
  const inputs = spec.layers[0] ?? 1;
  const classes = spec.layers[spec.layers.length - 1] ?? 1;
  data = tf.tidy(() => {
    const x = tf.randomNormal([N, inputs], 0, 1, 'float32', 1);
    const w = tf.randomNormal([inputs, classes], 0, 1, 'float32', 2);
    const y = tf.oneHot(x.matMul(w).argMax(1), classes);
    const vx = tf.randomNormal([NVAL, inputs], 0, 1, 'float32', 3);
    const vy = tf.oneHot(vx.matMul(w).argMax(1), classes);
    return { train: { x, y }, val: { x: vx, y: vy } };
  });
};

const build = () => {
  const sizes = spec.layers;
  const model = tf.sequential({
    layers: sizes.slice(1).map((units, i) =>
      tf.layers.dense({
        name: i === sizes.length - 2 ? 'out' : `h${i + 1}`,
        units,
        ...(i === sizes.length - 2 ? {} : { activation: 'relu' as const }),
        ...(i === 0 ? { inputShape: [sizes[0] ?? 1] } : {}),
        kernelInitializer: tf.initializers.glorotUniform({ seed: i + 1 }),
      }),
    ),
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
        const xb = tf.gather(splits().train.x, i);
        const yb = tf.gather(splits().train.y, i);
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
    for (let s = 0; s < NVAL; s += BATCH) {
      const size = Math.min(BATCH, NVAL - s);
      vl += tf.tidy(() => {
        const p = model.apply(splits().val.x.slice(s, size), { training: false }) as tf.Tensor;
        const yb = splits().val.y.slice(s, size);
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

/** Six hooks that do nothing: the cost of the hook calls themselves. */
const noopHooks: TfjsHooks = {
  trainStart: () => undefined,
  epochStart: () => undefined,
  stepEnd: () => undefined,
  evaluationEnd: () => undefined,
  epochEnd: () => undefined,
  trainEnd: () => undefined,
};

const withRunner = async (files: boolean, hooks?: TfjsHooks): Promise<Timing[]> => {
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
    splits: splits(),
    save: files,
    ...(hooks === undefined ? {} : { hooks }),
  });
  if (E.isLeft(out)) throw new Error(out.left.message);
  await runner.close();
  await rm(root, { recursive: true, force: true });
  return times;
};

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const range = (xs: number[]): string =>
  `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
console.log(
  `node ${process.version}, tfjs ${tf.version.tfjs}, ${ROUNDS} rounds; load average ${load()}`,
);
console.log(
  'medians per epoch (ms, min-max in []); overhead against the bare loop as a ratio and in s/epoch',
);
for (const backend of arg('backends', 'wasm,cpu').split(',')) {
  if (!(await tf.setBackend(backend))) throw new Error(`no ${backend} backend`);
  for (const key of arg('models', 'iris,mid,large').split(',')) {
    const next = SPECS[key];
    if (next === undefined) throw new Error(`unknown model ${key}: iris, mid or large`);
    prepare(next);
    bare(); // warm-up: kernels, JIT
    const b: Timing[] = [];
    const q: Timing[] = [];
    const h: Timing[] = [];
    const r: Timing[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      b.push(...bare());
      q.push(...(await withRunner(false)));
      h.push(...(await withRunner(false, noopHooks)));
      r.push(...(await withRunner(true)));
    }
    const mb = { wall: median(b.map((x) => x.wall)), cpu: median(b.map((x) => x.cpu)) };
    console.log(
      `\n${spec.name}, ${backend} backend, ${EPOCHS} epochs a run, ${b.length} epochs a side`,
    );
    const row = (label: string, xs: Timing[]): void => {
      const m = { wall: median(xs.map((x) => x.wall)), cpu: median(xs.map((x) => x.cpu)) };
      const over =
        xs === b
          ? ''
          : `  ratio ${(m.wall / mb.wall).toFixed(3)}x  ${((m.wall - mb.wall) / 1000).toFixed(4)} s/epoch  (cpu ${(m.cpu / mb.cpu).toFixed(3)}x, ${((m.cpu - mb.cpu) / 1000).toFixed(4)} s)`;
      console.log(
        `  ${label.padEnd(38)} wall ${m.wall.toFixed(1)} [${range(xs.map((x) => x.wall))}]  cpu ${m.cpu.toFixed(1)}${over}`,
      );
    };
    row('bare tfjs loop', b);
    row('runner: reducers and meters, no files', q);
    row('runner: no files, six no-op hooks', h);
    row('runner: + history.jsonl, checkpoint', r);
  }
}
console.log(`\nload average ${load()}`);
