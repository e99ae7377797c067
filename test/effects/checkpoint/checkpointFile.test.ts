import { execFileSync, spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_SCHEMA,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpointFile,
  restoreParts,
  saveCheckpointFile,
  type CheckpointError,
  type LoadedCheckpoint,
} from '../../../src/effects/checkpoint/checkpointFile.js';
import { encodeSafetensors } from '../../../src/state/formats/safetensors.js';
import { FakeModel, payloadFor, reseal } from '../../helpers/checkpointHelpers.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/safetensors_py.py', import.meta.url));
const hasPython = spawnSync('python3', ['-c', 'import json, struct']).status === 0;

const P = '/ck/latest.safetensors';
let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-ckpt-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const bytesOf = (k: number): Uint8Array => {
  const encoded = encodeCheckpoint(payloadFor(k));
  if (E.isLeft(encoded)) throw new Error(encoded.left.message);
  return Buffer.concat(encoded.right.chunks);
};

const plainParts = (c: Pick<LoadedCheckpoint, 'parts'>): unknown =>
  Object.fromEntries(
    Object.entries(c.parts).map(([p, sd]) => [
      p,
      {
        json: sd.json ?? null,
        tensors: Object.fromEntries(
          Object.entries(sd.tensors ?? {}).map(([n, t]) => [
            n,
            [t.dtype, t.shape, Array.from(t.data as ArrayLike<unknown>)],
          ]),
        ),
      },
    ]),
  );

const leftOf = (r: E.Either<CheckpointError, unknown>): CheckpointError => {
  if (E.isRight(r)) throw new Error('expected a Left');
  return r.left;
};

describe('checkpoint file', () => {
  it('saves and loads the state and every part', async () => {
    const file = path.join(dir, 'latest.safetensors');
    const payload = payloadFor(3);
    expect(await saveCheckpointFile(file, payload)).toEqual(E.right(file));
    const loaded = await loadCheckpointFile(file);
    if (E.isLeft(loaded)) throw new Error(loaded.left.message);
    expect(loaded.right.state).toEqual(payload.state);
    expect(loaded.right.schema).toBe(1);
    expect(plainParts(loaded.right)).toEqual(
      plainParts({
        parts: { ...payload.parts, scheduler: { tensors: {}, json: { lastEpoch: 3 } } },
      }),
    );
  });

  it.skipIf(!hasPython)(
    'opens in Python as a plain safetensors file of <part>/<name> tensors',
    async () => {
      const file = path.join(dir, 'latest.safetensors');
      await saveCheckpointFile(file, payloadFor(2));
      const out = JSON.parse(
        execFileSync('python3', [FIXTURE, 'read', file], { encoding: 'utf8' }),
      ) as {
        metadata: Record<string, string>;
        tensors: Record<string, { shape: number[]; values: number[] }>;
      };
      expect(Object.keys(out.tensors).sort()).toEqual([
        'model/dense/bias',
        'model/dense/kernel',
        'optimizer/step',
      ]);
      expect(out.tensors['model/dense/kernel']?.values).toEqual(new Array(16).fill(2));
      expect(JSON.parse(out.metadata['danling.state']!)).toEqual(payloadFor(2).state);
      expect(out.metadata['danling.checksum']).toMatch(/^crc32:[0-9a-f]{8}$/);
    },
  );

  it('a missing file names the path', async () => {
    const file = path.join(dir, 'nope.safetensors');
    expect(leftOf(await loadCheckpointFile(file))).toEqual({
      _tag: 'CheckpointNotFound',
      path: file,
      message: `checkpoint ${file} does not exist`,
    });
  });

  it.each<[string, () => Uint8Array, string, string]>([
    [
      'truncated data',
      () => bytesOf(1).subarray(0, bytesOf(1).length - 10),
      'CheckpointTruncated',
      `checkpoint ${P} is truncated: its header describes ${bytesOf(1).length} bytes but the file has ${bytesOf(1).length - 10}; use an older checkpoint`,
    ],
    [
      'truncated header',
      () => bytesOf(1).subarray(0, 40),
      'CheckpointTruncated',
      `checkpoint ${P} is truncated: its header alone needs`,
    ],
    [
      'a flipped data byte',
      () => {
        const b = Buffer.from(bytesOf(1));
        b[b.length - 3]! ^= 0x10;
        return b;
      },
      'CheckpointChecksumMismatch',
      `checkpoint ${P} is corrupt: checksum mismatch (stored crc32:`,
    ],
    [
      'broken header JSON',
      () => {
        const b = Buffer.from(bytesOf(1));
        b[8] = 0x5b; // '{' -> '['
        return b;
      },
      'CheckpointCorrupt',
      `checkpoint ${P} is corrupt: header is not valid JSON`,
    ],
    [
      'broken state JSON (with a correct checksum)',
      () => reseal(bytesOf(1), (m) => ({ ...m, 'danling.state': '{"epoch": 1,' })),
      'CheckpointCorrupt',
      `checkpoint ${P} is corrupt: danling.state is not valid JSON`,
    ],
    [
      'a newer schema',
      () => reseal(bytesOf(1), (m) => ({ ...m, 'danling.schema': String(CHECKPOINT_SCHEMA + 1) })),
      'CheckpointSchemaTooNew',
      `checkpoint ${P} has schema version ${CHECKPOINT_SCHEMA + 1}, but this danling reads versions up to ${CHECKPOINT_SCHEMA}: upgrade danling to load it`,
    ],
    [
      'a tensor that belongs to no part',
      () =>
        reseal(
          bytesOf(1),
          (m) => m,
          (t) => ({ ...t, 'stray/x': { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }),
        ),
      'CheckpointCorrupt',
      `checkpoint ${P} is corrupt: tensor stray/x belongs to no part in danling.parts`,
    ],
    [
      'a plain safetensors file',
      () => {
        const e = encodeSafetensors({}, { format: 'pt' });
        if (E.isLeft(e)) throw new Error('encode');
        return e.right;
      },
      'FileNotACheckpoint',
      `${P} is a safetensors file but not a danling checkpoint`,
    ],
  ])('%s', (_, make, tag, message) => {
    const e = leftOf(decodeCheckpoint(make(), P));
    expect(e._tag).toBe(tag);
    expect(e.message).toContain(message);
    expect('path' in e && e.path).toBe(P);
  });

  test.prop([fc.nat(), fc.integer({ min: 1, max: 255 })], { numRuns: 300 })(
    'any single changed byte anywhere is detected',
    (at, mask) => {
      const b = Buffer.from(bytesOf(5));
      const i = at % b.length;
      b[i]! ^= mask;
      expect(E.isLeft(decodeCheckpoint(b, P))).toBe(true);
    },
  );

  it('refuses part state that is not JSON, and part names with "/"', () => {
    expect(
      leftOf(encodeCheckpoint({ state: {}, parts: { model: { json: { lr: NaN } } } }, P)).message,
    ).toBe(
      `cannot save part model to ${P}: its stateDict().json is not JSON data (NaN, Infinity, -0, a class instance or a function)`,
    );
    expect(leftOf(encodeCheckpoint({ state: {}, parts: { 'a/b': {} } }, P)).message).toContain(
      'contain no "/"',
    );
  });
});

describe('restoreParts', () => {
  const loaded = (): LoadedCheckpoint => {
    const d = decodeCheckpoint(bytesOf(7), P);
    if (E.isLeft(d)) throw new Error(d.left.message);
    return d.right;
  };

  it('loads each part the checkpoint has, leaves the others alone', async () => {
    const model = new FakeModel(payloadFor(0).parts.model!.tensors!);
    const extra = new FakeModel({});
    expect(await restoreParts({ model, extra }, loaded())).toEqual(E.right(['model']));
    expect(Array.from(model.loaded?.tensors?.['dense/kernel']?.data as Float32Array)).toEqual(
      new Array(16).fill(7),
    );
    expect(model.loaded?.json).toEqual({ layers: 1 });
    expect(extra.loaded).toBeUndefined();
  });

  it('a tensor of the wrong shape names the file, the part and the tensor, and loads nothing', async () => {
    const model = new FakeModel({
      'dense/kernel': { dtype: 'F32', shape: [4, 16], data: new Float32Array(64) },
      'dense/bias': { dtype: 'F64', shape: [4], data: new Float64Array(4) },
      'dense/extra': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
    });
    const e = leftOf(await restoreParts({ model }, loaded()));
    expect(e).toMatchObject({ _tag: 'CheckpointPartMismatch', path: P, part: 'model' });
    expect(e.message).toBe(
      [
        `checkpoint ${P} does not fit part model:`,
        'model/dense/kernel: expected shape [4,16], got [4,4]',
        'model/dense/bias: expected dtype F64, got F32',
        'model/dense/extra: missing from the checkpoint',
      ].join('\n'),
    );
    expect(model.loaded).toBeUndefined();
  });

  it('a part that throws is named', async () => {
    const bad = {
      stateDict: () => ({}),
      loadStateDict: () => {
        throw new Error('nope');
      },
    };
    expect(leftOf(await restoreParts({ scheduler: bad }, loaded())).message).toBe(
      `cannot load ${P}: scheduler.loadStateDict() threw: nope`,
    );
  });
});
