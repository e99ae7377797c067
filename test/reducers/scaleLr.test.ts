/**
 * scaleLr, the spec's scale_lr (linear scaling rule), as properties over generated configs.
 */
import { describe, expect } from 'vitest';
import { it, test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { scaleLr } from '../../src/reducers/scaleLr.js';
import { createState } from '../../src/state/runner/RunnerState.js';

const lr = fc.double({ min: 1e-6, max: 10, noNaN: true });
const batch = fc.integer({ min: 1, max: 4096 });
const world = fc.integer({ min: 1, max: 64 });
const accum = fc.integer({ min: 1, max: 16 });

const stateOf = (c: object, worldSize = 1) =>
  createState({ epochEnd: 1, ...c }, { timestamp: 'T', worldSize, rank: 0 });

describe('scaleLr', () => {
  test.prop([lr, batch, batch, world, accum])(
    'scales by batchSizeEquivalent / batchSizeBase and records the factor in the config',
    (rate, size, base, worldSize, accumSteps) => {
      const s = stateOf({ dataloader: { batchSize: size }, accumSteps }, worldSize);
      const r = scaleLr(s, rate, { batchSizeBase: base });
      expect(E.isRight(r)).toBe(true);
      if (E.isLeft(r)) return;
      const factor = (size * worldSize * accumSteps) / base;
      expect(r.right.lr).toBe(rate * factor);
      expect(r.right.state.config.lrScaleFactor).toBe(factor);
      expect(r.right.warning).toBeUndefined();
      // Pure: the input state is untouched and the output frozen.
      expect(s.config.lrScaleFactor).toBeUndefined();
      expect(Object.isFrozen(r.right.state.config)).toBe(true);
    },
  );

  test.prop([lr, fc.double({ min: 0.01, max: 100, noNaN: true }), batch])(
    'an explicit factor wins over config and base, with a tagged warning when a base is given too',
    (rate, factor, base) => {
      const s = stateOf({ lrScaleFactor: 3, batchSizeBase: 7, dataloader: { batchSize: 8 } });
      const r = scaleLr(s, rate, { lrScaleFactor: factor, batchSizeBase: base });
      expect(E.isRight(r) && r.right.lr).toBe(rate * factor);
      expect(E.isRight(r) && r.right.warning?._tag).toBe('BatchSizeBaseIgnored');
      const fromConfig = scaleLr(s, rate);
      expect(E.isRight(fromConfig) && fromConfig.right.lr).toBe(rate * 3);
      expect(E.isRight(fromConfig) && fromConfig.right.warning).toBeUndefined();
    },
  );

  it('uses config.batchSizeBase when no base is given', () => {
    const r = scaleLr(stateOf({ batchSizeBase: 64, dataloader: { batchSize: 256 } }), 0.1);
    expect(E.isRight(r) && r.right.lr).toBe(0.1 * 4);
  });

  it('with neither a factor nor a base says which keys to set', () => {
    const r = scaleLr(stateOf({ dataloader: { batchSize: 8 } }), 0.1);
    expect(E.isLeft(r) && r.left).toEqual({
      _tag: 'ScaleLrInvalid',
      message:
        'scaleLr needs a scale factor: set config.lrScaleFactor, or config.batchSizeBase (the batch size the lr was tuned for)',
    });
  });

  it('with a base but no batch size says the batch size is missing', () => {
    const r = scaleLr(stateOf({ batchSizeBase: 8 }), 0.1);
    expect(E.isLeft(r) && r.left._tag).toBe('ScaleLrInvalid');
    expect(E.isLeft(r) && r.left.message).toMatch(/^scaleLr needs the batch size: .*batchSize/);
  });
});
