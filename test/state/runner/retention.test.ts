/** The keep rules of checkpoint files, as properties against a naive oracle. */
import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { appendResult, startEpoch } from '../../../src/reducers/reducers.js';
import { bestEpochs, prunable } from '../../../src/state/runner/retention.js';
import { createState } from '../../../src/state/runner/RunnerState.js';

const folder = fc
  .record({
    epochs: fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 20 }),
    bests: fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 8 }),
  })
  .map(({ epochs, bests }) => [
    'latest.safetensors',
    'best.safetensors',
    'notes.txt',
    ...epochs.map((e) => `epoch-${e}.safetensors`),
    ...bests.map((e) => `best-${e}.safetensors`),
  ]);
const rules = fc.record({
  last: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
  every: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
  bestEpochs: fc.option(fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 4 }), {
    nil: undefined,
  }),
});

describe('prunable', () => {
  test.prop([folder, rules])(
    'deletes exactly what no rule keeps; never latest or best',
    (names, r) => {
      const out = new Set(prunable(names, r));
      const epochOf = (n: string, kind: string) => {
        const m = new RegExp(`^${kind}-(\\d+)\\.safetensors$`).exec(n);
        return m === null ? undefined : Number(m[1]);
      };
      const epochs = names.flatMap((n) => {
        const e = epochOf(n, 'epoch');
        return e === undefined ? [] : [e];
      });
      const highest = [...epochs].sort((a, b) => b - a).slice(0, r.last ?? epochs.length);
      for (const n of names) {
        const e = epochOf(n, 'epoch');
        const b = epochOf(n, 'best');
        const keep =
          e !== undefined
            ? r.last === undefined ||
              highest.includes(e) ||
              (r.every !== undefined && (e + 1) % r.every === 0)
            : b !== undefined
              ? r.bestEpochs === undefined || r.bestEpochs.includes(b)
              : true;
        expect(out.has(n), n).toBe(!keep);
      }
      expect(out.has('latest.safetensors') || out.has('best.safetensors')).toBe(false);
    },
  );
});

describe('bestEpochs', () => {
  const run = (scoreName: string, values: readonly number[]) => {
    let s = createState({ epochEnd: 99, scoreName, scoreSplit: 'val' }, { timestamp: 'T' });
    for (const [epoch, v] of values.entries())
      s = appendResult(startEpoch(s, epoch), { val: { [scoreName]: v } });
    return s;
  };

  test.prop([
    fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 15 }),
    fc.integer({ min: 0, max: 5 }),
  ])('the k best by the score direction, ties to the earlier epoch', (values, k) => {
    const naive = (sign: number) =>
      values
        .map((v, i) => ({ v, i }))
        .sort((a, b) => sign * (a.v - b.v) || a.i - b.i)
        .slice(0, k)
        .map((x) => x.i);
    expect(bestEpochs(run('loss', values), k)).toEqual(naive(1));
    expect(bestEpochs(run('accuracy', values), k)).toEqual(naive(-1));
  });

  it('skips epochs without a valid score', () => {
    expect(bestEpochs(run('loss', [0.5, Number.NaN, 0.1]), 3)).toEqual([2, 0]);
  });
});
