import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { getIn, mergeDeep, setIn } from '../../../src/state/config/merge.js';
import type { Json, JsonObject } from '../../../src/state/Json.js';

const obj = fc.dictionary(
  fc.string({ maxLength: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
) as fc.Arbitrary<JsonObject>;
const key = fc.stringMatching(/^[a-z]{1,3}$/);

describe('mergeDeep', () => {
  test.prop([obj, fc.boolean()])('merging {} is the identity', (a, overwrite) => {
    expect(mergeDeep(a, {}, { overwrite })).toBe(a);
  });

  test.prop([obj, obj])('the patch wins with overwrite', (a, b) => {
    const m = mergeDeep(a, b, { overwrite: true });
    for (const [k, v] of Object.entries(b)) {
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) continue;
      expect(m[k]).toEqual(v);
    }
  });

  test.prop([obj, obj])('the base wins without overwrite', (a, b) => {
    const m = mergeDeep(a, b, { overwrite: false });
    for (const [k, v] of Object.entries(a)) {
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) continue;
      expect(m[k]).toEqual(v);
    }
    for (const k of Object.keys(b)) expect(Object.hasOwn(m, k)).toBe(true);
  });

  test.prop([obj, obj, fc.boolean()])('never touches its inputs', (a, b, overwrite) => {
    const [ca, cb] = [structuredClone(a), structuredClone(b)];
    mergeDeep(a, b, { overwrite });
    expect(a).toEqual(ca);
    expect(b).toEqual(cb);
  });

  it('merges nested objects and replaces arrays whole', () => {
    expect(
      mergeDeep(
        { optim: { lr: 1, name: 'sgd' }, layers: [1, 2, 3] },
        { optim: { lr: 2 }, layers: [4] },
        { overwrite: true },
      ),
    ).toEqual({ optim: { lr: 2, name: 'sgd' }, layers: [4] });
    expect(
      mergeDeep({ optim: { lr: 1 } }, { optim: { lr: 2, momentum: 0.9 } }, { overwrite: false }),
    ).toEqual({ optim: { lr: 1, momentum: 0.9 } });
  });
});

describe('getIn / setIn', () => {
  test.prop([
    obj,
    fc.array(key, { minLength: 1, maxLength: 4 }),
    fc.jsonValue().map((v) => v as Json),
  ])('getIn reads what setIn wrote, and setIn leaves its input alone', (a, keys, v) => {
    const before = structuredClone(a);
    const path = keys.join('.');
    expect(getIn(setIn(a, path, v), path)).toEqual(v);
    expect(a).toEqual(before);
  });

  it('returns undefined on a missing or non-object step', () => {
    expect(getIn({ a: 1 }, 'a.b')).toBeUndefined();
    expect(getIn({ a: { b: 2 } }, 'a.c')).toBeUndefined();
    expect(getIn({ a: { b: 2 } }, 'a.b')).toBe(2);
  });
});

describe('__proto__ keys', () => {
  it('are kept as data by mergeDeep, setIn and decodeConfig, never set a prototype', async () => {
    const { decodeConfig } = await import('../../../src/state/config/decodeConfig.js');
    const patch = JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}') as JsonObject;
    const merged = mergeDeep({}, patch, { overwrite: true });
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(Object.keys(merged)).toEqual(['__proto__', 'a']);
    expect(JSON.stringify(merged)).toBe('{"__proto__":{"polluted":1},"a":1}');
    expect(JSON.stringify(setIn({}, '__proto__.x', 1))).toBe('{"__proto__":{"x":1}}');
    const decoded = decodeConfig(patch);
    expect(decoded._tag === 'Right' && Object.hasOwn(decoded.right, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
