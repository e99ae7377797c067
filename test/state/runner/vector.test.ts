/**
 * The persistent vector of the results history: against a plain array as the model, over
 * random sequences of pushes and sets; `startsWith` (by identity, what the writer thread's
 * results transport relies on) and `sliceFrom`.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Json } from '../../../src/state/Json.js';
import {
  emptyVec,
  fromArray,
  get,
  push,
  set,
  sliceFrom,
  startsWith,
  toArray,
  type Vec,
} from '../../../src/state/runner/vector.js';

type Op = { readonly kind: 'push' } | { readonly kind: 'set'; readonly at: number };

const ops = fc.array(
  fc.oneof(
    fc.constant<Op>({ kind: 'push' }),
    fc.nat({ max: 5000 }).map((at): Op => ({ kind: 'set', at })),
  ),
  { maxLength: 1200 },
);

/** Applies `ops` to `vec` and to a copy of `model`, each element a fresh object. */
const apply = (vec: Vec, model: readonly Json[], list: readonly Op[]) => {
  let v = vec;
  const m = [...model];
  let n = 0;
  for (const op of list) {
    const value = { n: n++ };
    if (op.kind === 'push') {
      v = push(v, value);
      m.push(value);
    } else if (m.length > 0) {
      const at = op.at % m.length;
      v = set(v, at, value);
      m[at] = value;
    }
  }
  return { v, m };
};

describe('the persistent vector', () => {
  it('agrees with an array under push and set, and never changes a vector it was built from', () => {
    fc.assert(
      fc.property(ops, ops, (first, second) => {
        const a = apply(emptyVec(), [], first);
        const before = toArray(a.v);
        const b = apply(a.v, a.m, second);
        expect(toArray(b.v)).toEqual(b.m);
        expect(b.v.size).toBe(b.m.length);
        for (const i of [0, b.m.length - 1, b.m.length, -1]) expect(get(b.v, i)).toBe(b.m[i]);
        expect(toArray(a.v)).toEqual(before);
        expect(toArray(fromArray(b.m))).toEqual(b.m);
      }),
      { numRuns: 60 },
    );
  });

  it('startsWith says whether the first elements are the same objects; sliceFrom returns the rest', () => {
    fc.assert(
      fc.property(ops, ops, fc.nat({ max: 1300 }), (first, second, from) => {
        const a = apply(emptyVec(), [], first);
        const b = apply(a.v, a.m, second);
        const same = a.m.every((x, i) => b.m[i] === x);
        expect(startsWith(b.v, a.v)).toBe(same);
        expect(startsWith(a.v, a.v)).toBe(true);
        expect(startsWith(b.v, emptyVec())).toBe(true);
        // Equal values built apart (a restored history) are not the same objects.
        const apart = fromArray(a.m.map((x) => ({ ...(x as object) })));
        expect(startsWith(b.v, apart)).toBe(a.m.length === 0);
        expect(sliceFrom(b.v, from)).toEqual(b.m.slice(from));
      }),
      { numRuns: 60 },
    );
  });
});
