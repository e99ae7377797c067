import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { configDiff, formatConfigDiff } from '../../../src/state/config/configDiff.js';
import { canonicalJson } from '../../../src/state/config/decodeConfig.js';
import type { Json } from '../../../src/state/Json.js';

describe('configDiff', () => {
  it('lists leaves by dotted path, sorted, with unset sides', () => {
    const changes = configDiff(
      { optim: { lr: 0.01, name: 'adam' }, epochEnd: 10, seed: 1 },
      { optim: { lr: 0.05, name: 'adam' }, epochEnd: 10, model: { hidden: [16] } },
    );
    expect(formatConfigDiff(changes)).toBe(
      'model: (unset) -> {"hidden":[16]}\noptim.lr: 0.01 -> 0.05\nseed: 1 -> (unset)',
    );
  });

  it('leaves the runId bookkeeping keys out with identity', () => {
    expect(
      configDiff(
        { logLevel: 'info', projectRoot: 'a' },
        { logLevel: 'warn', projectRoot: 'b' },
        { identity: true },
      ),
    ).toEqual([]);
  });

  test.prop([fc.jsonValue() as fc.Arbitrary<Json>, fc.jsonValue() as fc.Arbitrary<Json>])(
    'is empty exactly for equal JSON, and symmetric',
    (a, b) => {
      const ab = configDiff(a, b);
      // Objects compare key by key (order aside); arrays and scalars as whole values.
      expect(ab.length === 0).toBe(canonicalJson(a) === canonicalJson(b));
      expect(configDiff(a, a)).toEqual([]);
      expect(configDiff(b, a).map((c) => c.path)).toEqual(ab.map((c) => c.path));
    },
  );
});
