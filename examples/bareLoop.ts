/**
 * A training loop with no shell: only the pure reducers and selectors, plus two effects called
 * directly (saveCheckpoint, saveResult). It fits y = 3x - 1 with plain gradient descent, so
 * nothing but danling is needed.
 *
 *   npx tsx examples/bareLoop.ts [projectRoot]
 *
 * In your own project, import from 'danling' and 'danling/effects' instead of '../src/...'.
 */
import * as E from 'fp-ts/lib/Either.js';
import {
  appendResult,
  createState,
  formatEpochResult,
  getResult,
  isBest,
  permutation,
  registerSplit,
  resetMeters,
  setRng,
  startEpoch,
  stepProgress,
  updateMeters,
  type RunnerState,
} from '../src/index.js';
import { saveCheckpoint, saveResult, type StateDict } from '../src/effects/index.js';

const projectRoot = process.argv[2] ?? 'experiments';
let state: RunnerState = createState(
  {
    experimentName: 'line',
    runName: 'gd',
    seed: 7,
    epochEnd: 5,
    projectRoot,
    dataloader: { batchSize: 4 },
  },
  { timestamp: new Date().toISOString().replace(/[:.]/g, '-') },
);

// Data: 32 points on y = 3x - 1; the model is (w, b), a checkpoint part of its own.
const xs = Array.from({ length: 32 }, (_, i) => i / 16 - 1);
const ys = xs.map((x) => 3 * x - 1);
const params = { w: 0, b: 0 };
const model = {
  stateDict: (): StateDict => ({
    tensors: { wb: { dtype: 'F64', shape: [2], data: Float64Array.from([params.w, params.b]) } },
  }),
  loadStateDict: (sd: StateDict): void => {
    const data = sd.tensors?.['wb']?.data;
    if (data instanceof Float64Array) [params.w, params.b] = [data[0] ?? 0, data[1] ?? 0];
  },
};

state = registerSplit(state, 'train', { size: xs.length, batchSize: 4 });
for (let epoch = 0; epoch < (state.config.epochEnd ?? 0); epoch++) {
  state = resetMeters(startEpoch(state, epoch));
  const [order, rng] = permutation(state.rng ?? [], xs.length);
  state = setRng(state, rng);
  for (let start = 0; start < order.length; start += 4) {
    const batch = order.slice(start, start + 4);
    let gw = 0;
    let gb = 0;
    let loss = 0;
    for (const i of batch) {
      const err = params.w * (xs[i] ?? 0) + params.b - (ys[i] ?? 0);
      loss += (err * err) / batch.length;
      gw += (2 * err * (xs[i] ?? 0)) / batch.length;
      gb += (2 * err) / batch.length;
    }
    params.w -= 0.1 * gw;
    params.b -= 0.1 * gb;
    state = updateMeters(stepProgress(state), { loss }, batch.length);
  }
  const result = { train: getResult(state, 'epoch') };
  state = appendResult(state, result);
  console.log(formatEpochResult(state, result), isBest(state) ? '(best)' : '');
  const saved = await saveCheckpoint(state, { model });
  if (E.isLeft(saved)) throw new Error(saved.left.message);
  const written = await saveResult(state);
  if (E.isLeft(written)) throw new Error(written.left.message);
}
console.log(`w = ${params.w.toFixed(3)}, b = ${params.b.toFixed(3)} (truth: 3, -1)`);
