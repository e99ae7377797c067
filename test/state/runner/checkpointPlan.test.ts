import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planCheckpoint } from '../../../src/state/runner/checkpointPlan.js';

describe('planCheckpoint', () => {
  it.each([
    [{ epoch: 0, isBest: false }, ['latest']],
    [{ epoch: 0, saveInterval: 1, isBest: false }, ['latest', 'epoch-0']],
    [{ epoch: 4, saveInterval: 5, isBest: true }, ['latest', 'epoch-4', 'best']],
    [{ epoch: 5, saveInterval: 5, isBest: true }, ['latest', 'best']],
    [{ epoch: 9, saveInterval: -1, isBest: false }, ['latest']],
    [{ epoch: 9, saveInterval: 0, isBest: false }, ['latest']],
  ])('%j -> %j', (input, names) => {
    expect(planCheckpoint(input)).toEqual(names);
  });

  test.prop([fc.nat(1000), fc.integer({ min: -3, max: 20 }), fc.boolean()])(
    'always latest; epoch-N exactly as the spec; best iff isBest',
    (epoch, saveInterval, isBest) => {
      const names = planCheckpoint({ epoch, saveInterval, isBest });
      expect(names[0]).toBe('latest');
      expect(names.includes(`epoch-${epoch}`)).toBe(
        saveInterval > 0 && (epoch + 1) % saveInterval === 0,
      );
      expect(names.includes('best')).toBe(isBest);
    },
  );
});
