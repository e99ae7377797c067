import { execFileSync, spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsFile,
  type Tensor,
  type TensorMap,
} from '../../../src/state/formats/safetensors.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/safetensors_py.py', import.meta.url));
const hasPython = spawnSync('python3', ['-c', 'import json, struct']).status === 0;

const f32 = (shape: number[], values: number[]): Tensor => ({
  dtype: 'F32',
  shape,
  data: new Float32Array(values),
});

const sample: TensorMap = {
  'model/dense/kernel': f32([2, 3], [1, 2, 3, 4, 5, 6]),
  'model/dense/bias': f32([3], [0.5, -0.5, 0]),
  'optimizer/step': { dtype: 'I64', shape: [], data: new BigInt64Array([42n]) },
  mask: { dtype: 'U8', shape: [4], data: new Uint8Array([1, 0, 1, 1]) },
  ids: { dtype: 'I32', shape: [2, 2], data: new Int32Array([-1, 2, -3, 4]) },
  f64: { dtype: 'F64', shape: [1], data: new Float64Array([Math.PI]) },
  empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
};

const plain = (file: SafetensorsFile): unknown => ({
  metadata: file.metadata,
  tensors: Object.fromEntries(
    Object.entries(file.tensors).map(([k, t]) => [
      k,
      { dtype: t.dtype, shape: t.shape, data: Array.from(t.data as ArrayLike<unknown>) },
    ]),
  ),
});

const encodeOk = (tensors: TensorMap, metadata?: Record<string, string>): Uint8Array => {
  const encoded = encodeSafetensors(tensors, metadata);
  if (E.isLeft(encoded)) throw new Error(encoded.left.message);
  return encoded.right;
};

/** A hand-made safetensors buffer with the given header (object or raw text) and data bytes. */
const raw = (header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const json = new TextEncoder().encode(
    typeof header === 'string' ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
};

describe('safetensors layout', () => {
  it('round-trips tensors and metadata', () => {
    const bytes = encodeOk(sample, { format: 'pt', note: 'héllo' });
    const decoded = decodeSafetensors(bytes);
    expect(E.isRight(decoded)).toBe(true);
    if (E.isLeft(decoded)) return;
    expect(plain(decoded.right)).toEqual(
      plain({ tensors: sample, metadata: { format: 'pt', note: 'héllo' } }),
    );
  });

  it('has the exact layout: u64 LE length, space-padded JSON to a multiple of 8, contiguous data', () => {
    const bytes = encodeOk({
      a: f32([1], [1]),
      b: { dtype: 'U8', shape: [3], data: new Uint8Array([9, 8, 7]) },
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text).toBe(
      JSON.stringify({
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        b: { dtype: 'U8', shape: [3], data_offsets: [4, 7] },
      }).padEnd(n, ' '),
    );
    expect(Array.from(bytes.subarray(8 + n))).toEqual([0, 0, 0x80, 0x3f, 9, 8, 7]);
  });

  it('decoded tensors are views of the buffer (no copy) unless asked to copy', () => {
    const bytes = encodeOk(sample);
    const view = decodeSafetensors(bytes);
    const copy = decodeSafetensors(bytes, { copy: true });
    if (E.isLeft(view) || E.isLeft(copy)) throw new Error('decode failed');
    expect(view.right.tensors['model/dense/kernel']?.data.buffer).toBe(bytes.buffer);
    expect(copy.right.tensors['model/dense/kernel']?.data.buffer).not.toBe(bytes.buffer);
  });

  test.prop([
    fc.dictionary(
      fc.stringMatching(/^[a-z][a-z0-9/._]{0,8}$/),
      fc.oneof(
        fc
          .array(fc.float({ noNaN: true }), { maxLength: 12 })
          .map((v): Tensor => f32([v.length], v)),
        fc
          .array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 12 })
          .map((v): Tensor => ({ dtype: 'I32', shape: [v.length], data: new Int32Array(v) })),
        fc
          .uint8Array({ maxLength: 13 })
          .map((v): Tensor => ({ dtype: 'U8', shape: [v.length], data: v })),
        fc
          .array(fc.double({ noNaN: true }), { maxLength: 5 })
          .map((v): Tensor => ({ dtype: 'F64', shape: [v.length, 1], data: new Float64Array(v) })),
      ),
      { maxKeys: 6 },
    ),
    fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
  ])('decode(encode(x)) == x', (tensors, metadata) => {
    const decoded = decodeSafetensors(encodeOk(tensors, metadata));
    expect(E.isRight(decoded)).toBe(true);
    if (E.isRight(decoded)) expect(plain(decoded.right)).toEqual(plain({ tensors, metadata }));
  });
});

describe('validation', () => {
  const t = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  it.each<[string, Uint8Array, string, string]>([
    [
      'too short',
      new Uint8Array(5),
      'too-short',
      'file is 5 bytes, shorter than the 8-byte header length',
    ],
    [
      'header length past the end',
      (() => {
        const b = raw({ a: t }, new Uint8Array(8));
        new DataView(b.buffer).setBigUint64(0, 10_000n, true);
        return b;
      })(),
      'header-length',
      'header length 10000 is out of range: the file has 62 bytes after the length (limit 100000000)',
    ],
    ['bad JSON', raw('{"a": {'), 'header-json', 'header is not valid JSON'],
    ['not an object', raw('[1,2]'), 'header-shape', 'header must be a JSON object'],
    [
      'unknown dtype',
      raw({ a: { ...t, dtype: 'F8' } }, new Uint8Array(8)),
      'dtype',
      'a: unknown dtype "F8"',
    ],
    [
      'bad shape',
      raw({ a: { ...t, shape: [-1] } }, new Uint8Array(8)),
      'shape',
      'a: shape must be non-negative integers, got [-1]',
    ],
    [
      'offsets out of bounds',
      raw({ a: { ...t, data_offsets: [0, 16] } }, new Uint8Array(8)),
      'offsets',
      'a: data_offsets [0, 16] out of bounds: the data is 8 bytes',
    ],
    [
      'byte count',
      raw({ a: { ...t, shape: [3] } }, new Uint8Array(8)),
      'byte-count',
      'a: data_offsets [0, 8] hold 8 bytes, shape [3] of F32 needs 12',
    ],
    [
      'overlap',
      raw({ a: t, b: { ...t, data_offsets: [4, 12] } }, new Uint8Array(12)),
      'offsets',
      'b: data_offsets [4, 12] overlap another tensor',
    ],
    [
      'hole',
      raw({ a: { ...t, data_offsets: [4, 12] } }, new Uint8Array(12)),
      'offsets',
      'a: data_offsets [4, 12] leave a hole at bytes [0, 4)',
    ],
    [
      'trailing bytes',
      raw({ a: t }, new Uint8Array(9)),
      'offsets',
      'the tensors cover 8 bytes but the data is 9 bytes (truncated or trailing bytes)',
    ],
    [
      'metadata not strings',
      raw({ __metadata__: { k: 1 } }),
      'metadata',
      '__metadata__.k: expected a string, got number',
    ],
  ])('%s', (_, bytes, problem, message) => {
    const decoded = decodeSafetensors(bytes);
    expect(E.isLeft(decoded)).toBe(true);
    if (E.isRight(decoded)) return;
    expect(decoded.left.problem).toBe(problem);
    expect(decoded.left.message).toContain(message);
  });

  it.each<[string, TensorMap, string]>([
    [
      'wrong byte count',
      { w: f32([2, 2], [1, 2, 3]) },
      'w: shape [2,2] of F32 needs 16 bytes, got 12',
    ],
    [
      'wrong array type',
      { w: { dtype: 'F32', shape: [2], data: new Uint16Array(4) } },
      'w: dtype F32 needs 4-byte elements, got a Uint16Array',
    ],
    ['bad shape', { w: f32([1.5], [1]) }, 'w: shape must be non-negative integers, got [1.5]'],
  ])('encode refuses %s', (_, tensors, message) => {
    const encoded = encodeSafetensors(tensors);
    expect(E.isLeft(encoded) && encoded.left.message).toBe(message);
  });
});

describe.skipIf(!hasPython)(
  'interop with Python (json + struct reader/writer in test/fixtures)',
  () => {
    let dir: string;
    beforeAll(async () => {
      dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-st-'));
    });
    afterAll(async () => {
      await fsp.rm(dir, { recursive: true, force: true });
    });

    it('Python reads what we write', async () => {
      const file = path.join(dir, 'ours.safetensors');
      await fsp.writeFile(file, encodeOk(sample, { 'danling.format': 'x' }));
      const out = JSON.parse(
        execFileSync('python3', [FIXTURE, 'read', file], { encoding: 'utf8' }),
      ) as {
        header_padded_to_8: boolean;
        metadata: unknown;
        tensors: Record<string, { dtype: string; shape: number[]; values: unknown[] }>;
      };
      expect(out.header_padded_to_8).toBe(true);
      expect(out.metadata).toEqual({ 'danling.format': 'x' });
      expect(out.tensors['model/dense/kernel']).toEqual({
        dtype: 'F32',
        shape: [2, 3],
        values: [1, 2, 3, 4, 5, 6],
      });
      expect(out.tensors['optimizer/step']).toEqual({ dtype: 'I64', shape: [], values: [42] });
      expect(out.tensors.ids?.values).toEqual([-1, 2, -3, 4]);
      expect(out.tensors.f64?.values).toEqual([Math.PI]);
      expect(Object.keys(out.tensors).sort()).toEqual(Object.keys(sample).sort());
    });

    it('we read what Python writes', async () => {
      const file = path.join(dir, 'theirs.safetensors');
      const spec = {
        metadata: { format: 'pt' },
        tensors: {
          w: { dtype: 'F32', shape: [2, 2], values: [0.25, -1, 3, 4] },
          n: { dtype: 'I64', shape: [2], values: [-5, 7] },
          b: { dtype: 'U8', shape: [3], values: [1, 2, 3] },
        },
      };
      execFileSync('python3', [FIXTURE, 'write', file], { input: JSON.stringify(spec) });
      const decoded = decodeSafetensors(await fsp.readFile(file));
      if (E.isLeft(decoded)) throw new Error(decoded.left.message);
      expect(decoded.right.metadata).toEqual({ format: 'pt' });
      expect(Array.from(decoded.right.tensors.w!.data as Float32Array)).toEqual([0.25, -1, 3, 4]);
      expect(Array.from(decoded.right.tensors.n!.data as BigInt64Array)).toEqual([-5n, 7n]);
      expect(decoded.right.tensors.b?.shape).toEqual([3]);
    });
  },
);

describe('names that are Object.prototype keys', () => {
  it('a tensor and a metadata key named __proto__ decode as own properties (no pollution)', () => {
    const json = Buffer.from(
      '{"__metadata__":{"__proto__":"m"},"__proto__":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}',
    );
    const padded = Math.ceil(json.length / 8) * 8;
    const bytes = Buffer.alloc(8 + padded + 2, 0x20);
    bytes.writeBigUInt64LE(BigInt(padded), 0);
    json.copy(bytes, 8);
    bytes[8 + padded] = 7;
    bytes[8 + padded + 1] = 9;
    const decoded = decodeSafetensors(bytes);
    if (E.isLeft(decoded)) throw new Error(decoded.left.message);
    expect(Object.keys(decoded.right.tensors)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(decoded.right.tensors)).toBe(Object.prototype);
    const t = Object.getOwnPropertyDescriptor(decoded.right.tensors, '__proto__')?.value as {
      data: Uint8Array;
    };
    expect(Array.from(t.data)).toEqual([7, 9]);
    expect(Object.getOwnPropertyDescriptor(decoded.right.metadata, '__proto__')?.value).toBe('m');
    const again = encodeSafetensors(decoded.right.tensors, decoded.right.metadata);
    expect(E.isRight(again) && Buffer.from(again.right).equals(bytes)).toBe(true);
  });
});
