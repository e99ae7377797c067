import { describe, expect } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { deepFreeze, isJson } from '../../src/state/Json.js';

describe('isJson', () => {
  test.prop([fc.jsonValue()])('accepts whatever survives a JSON round trip', (value) => {
    const back: unknown = JSON.parse(JSON.stringify(value));
    expect(isJson(back)).toBe(true);
  });

  test.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-0', -0],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['undefined', undefined],
    ['a function', () => 1],
    ['a nested NaN', { a: [1, { b: Number.NaN }] }],
    // eslint-disable-next-line no-sparse-arrays
    ['a sparse array', [1, , 3]],
  ])('rejects %s', (_name, value) => {
    expect(isJson(value)).toBe(false);
  });
});

describe('deepFreeze', () => {
  test.prop([fc.jsonValue()])('freezes every object and array', (value) => {
    const frozen = deepFreeze(structuredClone(value));
    const check = (v: unknown): void => {
      if (typeof v === 'object' && v !== null) {
        expect(Object.isFrozen(v)).toBe(true);
        Object.values(v).forEach(check);
      }
    };
    check(frozen);
  });
});
