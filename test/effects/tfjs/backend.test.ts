/**
 * The backend key: trainTfjs switches to it, the model part records the backend in checkpoints,
 * and a resume on another backend warns that it is no longer bitwise exact.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { loadCheckpointFile } from '../../../src/effects/checkpoint/checkpointFile.js';
import { checkpointDir } from '../../../src/state/runner/selectors.js';
import { decodeConfig } from '../../../src/state/config/decodeConfig.js';
import { train } from './harness.js';

let root = '';
// Registered after the harness made its tensors on the CPU backend (an import registers wasm as
// the highest-priority backend).
beforeAll(async () => {
  await import('@tensorflow/tfjs-backend-wasm');
});
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-backend-'));
  await tf.setBackend('cpu');
});
afterEach(async () => {
  await tf.setBackend('cpu');
  await rm(root, { recursive: true, force: true });
});

describe('backend', () => {
  it('switches, records the backend in the checkpoint, warns on a resume across backends', async () => {
    const first = await train({ projectRoot: root, name: 'wasm', epochEnd: 1, backend: 'wasm' });
    expect(tf.getBackend()).toBe('wasm');
    const latest = join(checkpointDir(first.outcome.state), 'latest.safetensors');
    const saved = await loadCheckpointFile(latest);
    if (E.isLeft(saved)) throw new Error(saved.left.message);
    expect(saved.right.parts['model']?.json).toEqual({ backend: 'wasm' });

    const same = await train({
      projectRoot: root,
      name: 'wasm',
      epochEnd: 2,
      backend: 'wasm',
      checkpoint: latest,
    });
    expect(same.records.filter((r) => r['warning'] === 'BackendChanged')).toEqual([]);

    const other = await train({
      projectRoot: root,
      name: 'wasm',
      epochEnd: 2,
      backend: 'cpu',
      checkpoint: latest,
    });
    expect(tf.getBackend()).toBe('cpu');
    const warned = other.records.filter((r) => r['warning'] === 'BackendChanged');
    expect(warned).toHaveLength(1);
    expect(warned[0]?.msg).toContain(
      'was saved on the wasm backend, this run uses cpu: the resume is not bitwise exact',
    );
  }, 60_000);

  it('is bookkeeping: the runId stays, so autoResume finds the run on another backend', () => {
    const id = (c: object) => {
      const d = decodeConfig({ epochEnd: 2, ...c });
      return E.isRight(d) ? d.right.runId : d.left.message;
    };
    expect(id({ backend: 'wasm' })).toBe(id({}));
    expect(id({ backend: 'cpu' })).toBe(id({}));
    const bad = decodeConfig({ backend: 'webgl' });
    expect(E.isLeft(bad) && bad.left.message).toBe(
      'backend: expected one of cpu, wasm, got "webgl"',
    );
  });
});
