import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { accuracy, auc, f1Macro, r2 } from '../../../src/state/runner/epochMetrics.js';

/** AUC by counting every (positive, negative) pair, ties one half. */
const bruteAuc = (labels: readonly number[], scores: readonly number[]): number => {
  let wins = 0;
  let pairs = 0;
  labels.forEach((li, i) => {
    labels.forEach((lj, j) => {
      if (li !== 1 || lj !== 0) return;
      pairs += 1;
      const a = scores[i] ?? 0;
      const b = scores[j] ?? 0;
      wins += a > b ? 1 : a === b ? 0.5 : 0;
    });
  });
  return pairs === 0 ? Number.NaN : wins / pairs;
};

/** R² of one column by the textbook formula. */
const naiveR2 = (t: readonly number[], p: readonly number[]): number => {
  const mean = t.reduce((a, b) => a + b, 0) / t.length;
  const res = t.reduce((a, x, i) => a + (x - (p[i] ?? 0)) ** 2, 0);
  const tot = t.reduce((a, x) => a + (x - mean) ** 2, 0);
  return 1 - res / tot;
};

describe('auc', () => {
  test.prop([
    fc
      .array(fc.tuple(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 5 })), {
        minLength: 1,
        maxLength: 60,
      })
      .map((rows) => [rows.map((r) => r[0]), rows.map((r) => r[1] / 5)] as const),
  ])('equals a brute-force pair count, ties one half', ([labels, scores]) => {
    const expected = bruteAuc(labels, scores);
    if (Number.isNaN(expected)) expect(auc(labels, scores)).toBeNaN();
    else expect(auc(labels, scores)).toBeCloseTo(expected, 12);
  });
  it('hand-computed values', () => {
    expect(auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).toBe(0.75);
    expect(auc([0, 1], [0.5, 0.5])).toBe(0.5);
    expect(auc([1, 1], [0.2, 0.3])).toBeNaN();
  });
});

describe('r2', () => {
  test.prop([
    fc.array(
      fc.tuple(
        fc.double({ min: -10, max: 10, noNaN: true }),
        fc.double({ min: -10, max: 10, noNaN: true }),
      ),
      {
        minLength: 2,
        maxLength: 50,
      },
    ),
  ])('equals the textbook formula for one column', (pairs) => {
    const t = pairs.map((p) => p[0]);
    const p = pairs.map((q) => q[1]);
    const mean = t.reduce((a, b) => a + b, 0) / t.length;
    fc.pre(t.some((x) => Math.abs(x - mean) > 1e-3));
    expect(
      r2({ data: t, rows: t.length, cols: 1 }, { data: p, rows: p.length, cols: 1 }),
    ).toBeCloseTo(naiveR2(t, p), 9);
  });
  it('averages columns; a constant column is 1 when exact, else 0', () => {
    expect(r2({ data: [1, 2, 3], rows: 3, cols: 1 }, { data: [1, 2, 4], rows: 3, cols: 1 })).toBe(
      0.5,
    );
    // columns: [1, 2, 3] vs [1, 2, 4] (0.5) and [5, 5, 5] exact (1)
    expect(
      r2(
        { data: [1, 5, 2, 5, 3, 5], rows: 3, cols: 2 },
        { data: [1, 5, 2, 5, 4, 5], rows: 3, cols: 2 },
      ),
    ).toBe(0.75);
    expect(r2({ data: [5, 5], rows: 2, cols: 1 }, { data: [5, 6], rows: 2, cols: 1 })).toBe(0);
  });
});

describe('f1Macro and accuracy', () => {
  it('hand-computed values (scikit-learn agrees)', () => {
    // class 0: tp 1 -> 1; class 1: tp 1, fn 1 -> 2/3; class 2: tp 1, fp 1 -> 2/3
    expect(f1Macro([0, 1, 1, 2], [0, 1, 2, 2])).toBeCloseTo((1 + 2 / 3 + 2 / 3) / 3, 15);
    // scikit-learn: class 0 has f1 0, class 1 precision 1/3 and recall 1 (f1 0.5): macro 0.25
    expect(f1Macro([0, 0, 1], [1, 1, 1])).toBeCloseTo(0.25, 15);
    expect(accuracy([0, 1, 1, 2], [0, 1, 2, 2])).toBe(0.75);
    expect(accuracy([], [])).toBeNaN();
  });
});
