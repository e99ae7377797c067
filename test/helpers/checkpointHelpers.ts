/** Helpers for checkpoint tests: sample payloads, stateful parts, and hand-made damaged files. */
import * as zlib from 'node:zlib';
import * as E from 'fp-ts/lib/Either.js';
import type {
  CheckpointPayload,
  StateDict,
  Stateful,
} from '../../src/effects/checkpoint/checkpointFile.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  type TensorMap,
} from '../../src/state/formats/safetensors.js';

/** A small payload whose every byte depends on `k`. */
export const payloadFor = (k: number, size = 16): CheckpointPayload => ({
  state: { epoch: k, results: { [String(k)]: { val: { loss: 1 / (k + 1) } } }, rng: [k, 1, 2, 3] },
  parts: {
    model: {
      tensors: {
        'dense/kernel': {
          dtype: 'F32',
          shape: [4, size / 4],
          data: new Float32Array(size).fill(k),
        },
        'dense/bias': {
          dtype: 'F32',
          shape: [size / 4],
          data: new Float32Array(size / 4).fill(-k),
        },
      },
      json: { layers: 1 },
    },
    optimizer: {
      tensors: { step: { dtype: 'I64', shape: [], data: new BigInt64Array([BigInt(k)]) } },
      json: { lr: 0.01 },
    },
    scheduler: { json: { lastEpoch: k } },
  },
});

/** A part holding tensors of fixed shapes, recording what it was given. */
export class FakeModel implements Stateful {
  loaded: StateDict | undefined;
  constructor(readonly tensors: TensorMap) {}
  stateDict(): StateDict {
    return { tensors: this.tensors, json: { layers: 1 } };
  }
  loadStateDict(sd: StateDict): void {
    this.loaded = sd;
  }
}

const MARKER = Buffer.from('"danling.checksum":"crc32:');

/** Rewrites a checkpoint's metadata (and optionally tensors), then stores a correct checksum. */
export const reseal = (
  bytes: Uint8Array,
  edit: (meta: Record<string, string>) => Record<string, string>,
  editTensors: (t: TensorMap) => TensorMap = (t) => t,
): Uint8Array => {
  const file = decodeSafetensors(bytes, { copy: true });
  if (E.isLeft(file)) throw new Error(file.left.message);
  const meta = edit({ ...file.right.metadata, 'danling.checksum': 'crc32:00000000' });
  const out = encodeSafetensors(editTensors(file.right.tensors), meta);
  if (E.isLeft(out)) throw new Error(out.left.message);
  const buf = Buffer.from(out.right);
  const at = buf.indexOf(MARKER) + MARKER.length;
  if (at >= MARKER.length) buf.write(zlib.crc32(buf).toString(16).padStart(8, '0'), at, 'latin1');
  return buf;
};
