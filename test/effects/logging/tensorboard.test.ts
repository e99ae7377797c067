import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { crc32c, openEventWriter } from '../../../src/effects/logging/tensorboard.js';
import { flattenResult } from '../../../src/state/flatten.js';

// --- an independent reader: bitwise CRC32C, its own varint and protobuf decoding -----------------

const crcBitwise = (bytes: Uint8Array): number => {
  let c = ~0 >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
    c >>>= 0;
  }
  return ~c >>> 0;
};
const unmask = (m: number): number => {
  const r = (m - 0xa282ead8) >>> 0;
  return ((r << 15) | (r >>> 17)) >>> 0;
};

interface Field {
  field: number;
  wire: number;
  value: bigint | Uint8Array;
}
const fields = (buf: Uint8Array): Field[] => {
  const out: Field[] = [];
  let i = 0;
  const readVarint = (): bigint => {
    let shift = 0n;
    let v = 0n;
    for (;;) {
      const b = buf[i++] ?? 0;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const k = Number(readVarint());
    const field = k >> 3;
    const wire = k & 7;
    if (wire === 0) out.push({ field, wire, value: readVarint() });
    else if (wire === 1) out.push({ field, wire, value: buf.slice(i, (i += 8)) });
    else if (wire === 5) out.push({ field, wire, value: buf.slice(i, (i += 4)) });
    else if (wire === 2) {
      const n = Number(readVarint());
      out.push({ field, wire, value: buf.slice(i, (i += n)) });
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
};

interface Ev {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: [string, number][];
  sessionStart: boolean;
}
const readEvents = (path: string): Ev[] => {
  const buf = readFileSync(path);
  const events: Ev[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = Number(buf.readBigUInt64LE(at));
    expect(unmask(buf.readUInt32LE(at + 8))).toBe(crcBitwise(buf.subarray(at, at + 8)));
    const data = buf.subarray(at + 12, at + 12 + len);
    expect(unmask(buf.readUInt32LE(at + 12 + len))).toBe(crcBitwise(data));
    at += 16 + len;
    const ev: Ev = { wallTime: 0, step: 0, scalars: [], sessionStart: false };
    for (const f of fields(data)) {
      if (f.field === 1) ev.wallTime = Buffer.from(f.value as Uint8Array).readDoubleLE(0);
      if (f.field === 2) ev.step = Number(f.value);
      if (f.field === 3) ev.fileVersion = Buffer.from(f.value as Uint8Array).toString('utf8');
      if (f.field === 5) {
        for (const v of fields(f.value as Uint8Array)) {
          const parts = fields(v.value as Uint8Array);
          const tag = Buffer.from(parts.find((p) => p.field === 1)?.value as Uint8Array).toString(
            'utf8',
          );
          const val = Buffer.from(
            parts.find((p) => p.field === 2)?.value as Uint8Array,
          ).readFloatLE(0);
          ev.scalars.push([tag, val]);
        }
      }
      // event.proto: session_log = 7 (log_message = 6 is deprecated).
      if (f.field === 7)
        ev.sessionStart = fields(f.value as Uint8Array).some(
          (p) => p.field === 1 && p.value === 1n,
        );
    }
    events.push(ev);
  }
  expect(at).toBe(buf.length);
  return events;
};

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-tb-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('TensorBoard event files', () => {
  it('crc32c matches the standard check value', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crcBitwise(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('an independent reader decodes every record, checks every CRC, and gets the scalars back', () => {
    let t = 1_700_000_000;
    const w = openEventWriter(join(root, 'tb'), { now: () => (t += 1), host: 'testhost' });
    expect(basename(w.path)).toBe('events.out.tfevents.1700000001.testhost');
    w.addScalar('train/loss', 0.5, 1);
    w.addScalar('val/accuracy', 0.875, 1);
    w.addScalar('train/loss', Number.NaN, 2);
    w.addScalar('train/loss', 0.25, 3_000_000_000);
    w.purgeFrom(2);
    w.close();
    const events = readEvents(w.path);
    expect(events[0]).toMatchObject({
      fileVersion: 'brain.Event:2',
      step: 0,
      wallTime: 1_700_000_001,
    });
    expect(events.slice(1).map((e) => [e.step, e.scalars, e.sessionStart])).toEqual([
      [1, [['train/loss', 0.5]], false],
      [1, [['val/accuracy', 0.875]], false],
      [2, [['train/loss', Number.NaN]], false],
      [3_000_000_000, [['train/loss', 0.25]], false],
      [2, [], true],
    ]);
  });
});

describe('flattenResult', () => {
  it('flattens as the spec: nested names with /, sequences name/i, mappings name/key', () => {
    expect(
      flattenResult({
        loss: 0.1,
        'top.k': 0.5,
        per_class: [0.9, 'NaN'],
        f1: { macro: 0.7 },
        note: 'x',
        index: 3,
      }),
    ).toEqual([
      ['loss', 0.1],
      ['top/k', 0.5],
      ['per_class/0', 0.9],
      ['per_class/1', Number.NaN],
      ['f1/macro', 0.7],
    ]);
  });
});
