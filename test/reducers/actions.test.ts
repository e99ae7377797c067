/**
 * The action table: creators, reduce and decodeAction derive from one definition per action;
 * a decoded action never makes a reducer throw (issue 10 item 12, issue 11 item 8).
 */
import { describe, expect, it, test as vtest } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import {
  actions,
  decodeAction,
  definitions,
  reduce,
  type Action,
} from '../../src/reducers/actions.js';
import { stepProgress, updateMeters } from '../../src/reducers/reducers.js';
import { createState } from '../../src/state/runner/RunnerState.js';
import { action as actionArb } from '../helpers/arbitraries.js';
import { expectDeepFrozen } from '../helpers/properties.js';

const s0 = createState({ epochEnd: 10, seed: 0 }, { timestamp: 't' });

describe('decodeAction', () => {
  test.prop([actionArb])('accepts every action a creator makes, after a JSON round trip', (a) => {
    const decoded = decodeAction(JSON.parse(JSON.stringify(a)));
    expect(E.isRight(decoded)).toBe(true);
  });

  vtest.each([
    [null, '(root): expected an action object, got null'],
    [{}, `type: expected one of ${Object.keys(definitions).join(', ')}, got nothing`],
    [
      { type: 'toString' },
      `type: expected one of ${Object.keys(definitions).join(', ')}, got "toString"`,
    ],
    [{ type: 'stepProgress', steps: -1 }, 'steps: expected a non-negative integer, got -1'],
    [{ type: 'startEpoch', epoch: 'x' }, 'epoch: expected a non-negative integer, got "x"'],
    [{ type: 'setMode', mode: 'test' }, 'mode: expected one of train, eval, inf, got "test"'],
    [{ type: 'mergeConfig', patch: [], overwrite: true }, 'patch: expected a JSON object, got []'],
    [
      { type: 'updateMeters', values: { loss: null }, n: 1 },
      'values: expected an object of metric values, got {"loss":null}',
    ],
    [{ type: 'resetMeters', extra: 1 }, 'extra: unknown field of resetMeters'],
    [
      { type: 'restore', saved: { schemaVersion: 1 }, overrideConfig: false },
      'saved: expected a saved runner state (config: expected an object of config keys, got nothing), got {"schemaVersion":1}',
    ],
  ])('rejects %j', (input, message) => {
    const r = decodeAction(input);
    expect(E.isLeft(r) && r.left.message).toBe(message);
  });
});

/** Actions with fields replaced by arbitrary JSON: what a hand-edited or hostile log holds. */
const mangled: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc
    .tuple(actionArb, fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }))
    .map(([a, key, value]) => {
      const keys = Object.keys(a).filter((k) => k !== 'type');
      const k = keys[key.length % Math.max(1, keys.length)] ?? key;
      return { ...a, [k]: value };
    }),
  fc.record({ type: fc.constantFrom(...Object.keys(definitions)) }),
);

describe('reducers never throw on an action that decodes', () => {
  test.prop([mangled])('decodeAction is total, and reduce is total on what it accepts', (input) => {
    const decoded = decodeAction(input);
    if (E.isLeft(decoded)) {
      expect(decoded.left.message.length).toBeGreaterThan(0);
      return;
    }
    expectDeepFrozen(reduce(s0, decoded.right));
  });

  it('an invalid mergeConfig patch leaves the state as it was', () => {
    const a = actions.mergeConfig({ accumSteps: 0 });
    expect(E.isRight(decodeAction(a))).toBe(true);
    expect(reduce(s0, a)).toBe(s0);
  });

  it('a restore action carries the persisted state and restores it', () => {
    const saved = reduce(
      reduce(s0, actions.startEpoch(3)),
      actions.appendResult({ val: { loss: 1 } }),
    );
    const a = actions.restore(saved) as Extract<Action, { type: 'restore' }>;
    expect(Array.isArray((a.saved as { results: unknown }).results)).toBe(true);
    const r = reduce(createState({ epochEnd: 10 }, { timestamp: 'u' }), a);
    expect(r.progress.epoch).toBe(3);
    expect(r.results.entries.size).toBe(1);
  });
});

describe('the per-step fast paths (issue 12) match the table', () => {
  const metric = fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 0));
  const values = fc.dictionary(
    fc.oneof(fc.string(), fc.constantFrom('__proto__', 'loss', '0')),
    metric,
  );
  test.prop([values, fc.nat()])(
    'actions.updateMeters and actions.stepProgress build what { type, ...prepare } builds',
    (v, n) => {
      expect(actions.updateMeters(v, n)).toStrictEqual({
        type: 'updateMeters',
        ...definitions.updateMeters.prepare(v, n),
      });
      expect(actions.stepProgress(n)).toStrictEqual({
        type: 'stepProgress',
        ...definitions.stepProgress.prepare(n),
      });
    },
  );

  // The reference is what reduce did before the fast path: the values decoded into a record by
  // assignment (so a `__proto__` value is dropped), then updateMeters.
  const decodeThenUpdate = (s: typeof s0, a: Action): typeof s0 => {
    if (a.type !== 'updateMeters') return stepProgress(s, (a as { steps: number }).steps);
    const decoded: Record<string, number> = {};
    for (const k in a.values) {
      const e = a.values[k];
      if (e !== undefined)
        decoded[k] =
          typeof e === 'number'
            ? e
            : e === 'NaN'
              ? Number.NaN
              : e === '-Infinity'
                ? -Infinity
                : Infinity;
    }
    return updateMeters(s, decoded, a.n);
  };
  test.prop([fc.array(fc.tuple(values, fc.nat({ max: 64 })), { maxLength: 6 })])(
    'reduce applies updateMeters and stepProgress as before the fast path, deep-frozen',
    (steps) => {
      let fast = s0;
      let reference = s0;
      for (const [v, n] of steps) {
        for (const a of [actions.stepProgress(), actions.updateMeters(v, n)]) {
          fast = reduce(fast, a);
          reference = decodeThenUpdate(reference, a);
        }
      }
      expect(fast).toStrictEqual(reference);
      expect(JSON.stringify(fast)).toBe(JSON.stringify(reference));
      expectDeepFrozen(fast);
    },
  );
});
