import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import type { ScheduleConfig } from '../../../src/state/config/Config.js';
import { decodeConfig } from '../../../src/state/config/decodeConfig.js';
import { createState } from '../../../src/state/runner/RunnerState.js';
import { appendResult, mergeConfig, stepProgress } from '../../../src/reducers/reducers.js';
import {
  baseLearningRate,
  learningRate,
  plateauReductions,
  scheduledLr,
  scheduleTotalSteps,
} from '../../../src/state/runner/schedule.js';
import { roundTrip } from '../../helpers/properties.js';

const lr = fc.double({ min: 1e-6, max: 10, noNaN: true });
const schedule: fc.Arbitrary<ScheduleConfig> = fc.record(
  {
    kind: fc.constantFrom('constant', 'step', 'exponential', 'cosine', 'linear', 'plateau'),
    warmupSteps: fc.nat({ max: 50 }),
    minLr: fc.double({ min: 0, max: 1e-3, noNaN: true }),
    stepSize: fc.integer({ min: 1, max: 20 }),
    gamma: fc.double({ min: 0.01, max: 2, noNaN: true }),
    factor: fc.double({ min: 0.01, max: 0.99, noNaN: true }),
  },
  { requiredKeys: ['kind', 'stepSize', 'gamma'] },
);
const input = fc.record({
  baseLr: lr,
  step: fc.nat({ max: 500 }),
  totalSteps: fc.integer({ min: 1, max: 400 }),
  reductions: fc.nat({ max: 5 }),
});

describe('scheduledLr', () => {
  test.prop([schedule, input])('is bounded by [min(minLr, lr), lr]', (s, i) => {
    const r = scheduledLr(s, i);
    expect(r).toBeLessThanOrEqual(i.baseLr);
    expect(r).toBeGreaterThanOrEqual(Math.min(s.minLr ?? 0, i.baseLr));
  });

  test.prop([schedule, input])(
    'does not decrease during warm-up, does not increase after it',
    (s, i) => {
      const warm = s.warmupSteps ?? 0;
      const at = (step: number) => scheduledLr(s, { ...i, step });
      if (i.step + 1 < warm) expect(at(i.step + 1)).toBeGreaterThanOrEqual(at(i.step));
      if (i.step + 1 === warm) expect(at(i.step + 1)).toBeGreaterThanOrEqual(at(i.step));
      if (i.step >= warm) expect(at(i.step + 1)).toBeLessThanOrEqual(at(i.step));
    },
  );

  it('hand-computed values', () => {
    const at = (s: ScheduleConfig, step: number, totalSteps = 110, reductions = 0) =>
      scheduledLr(s, { baseLr: 0.1, step, totalSteps, reductions });
    expect(at({ kind: 'constant' }, 7)).toBe(0.1);
    expect(at({ kind: 'cosine', warmupSteps: 10 }, 60)).toBeCloseTo(0.05, 15);
    expect(at({ kind: 'cosine', warmupSteps: 10 }, 10)).toBe(0.1);
    expect(at({ kind: 'cosine', warmupSteps: 10, minLr: 0.01 }, 110)).toBeCloseTo(0.01, 15);
    // Linear warm-up from minLr: (step + 1) / (warmupSteps + 1) of the way.
    expect(at({ kind: 'cosine', warmupSteps: 9 }, 0)).toBeCloseTo(0.01, 15);
    expect(at({ kind: 'cosine', warmupSteps: 9 }, 4)).toBeCloseTo(0.05, 15);
    expect(at({ kind: 'step', stepSize: 30, gamma: 0.5 }, 29)).toBe(0.1);
    expect(at({ kind: 'step', stepSize: 30, gamma: 0.5 }, 30)).toBe(0.05);
    expect(at({ kind: 'step', stepSize: 30 }, 65)).toBeCloseTo(0.001, 15);
    expect(at({ kind: 'exponential', gamma: 0.9 }, 2)).toBeCloseTo(0.081, 15);
    expect(at({ kind: 'linear' }, 55)).toBeCloseTo(0.05, 15);
    expect(at({ kind: 'plateau', factor: 0.5 }, 3, 110, 2)).toBe(0.025);
    // A plateau cut during warm-up: the warm-up climbs to the cut rate (it climbed to the uncut
    // one, and the rate fell from 0.075 to 0.01 when warm-up ended; fast-check seed 366542977).
    const cut = { kind: 'plateau', warmupSteps: 3, factor: 0.1 } as const;
    expect(at(cut, 2, 110, 1)).toBeCloseTo(0.0075, 15);
    expect(at(cut, 3, 110, 1)).toBeCloseTo(0.01, 15);
    expect(at({ kind: 'exponential', gamma: 0.5, minLr: 0.03 }, 10)).toBe(0.03);
    expect(scheduledLr(undefined, { baseLr: 0.2, step: 3, totalSteps: 1, reductions: 4 })).toBe(
      0.2,
    );
  });
});

describe('plateauReductions', () => {
  const withScores = (scores: readonly number[], patience: number) => {
    let s = createState({
      epochEnd: 100,
      scoreName: 'loss',
      schedule: { kind: 'plateau', patience, factor: 0.5 },
    });
    scores.forEach((loss, i) => {
      s = appendResult(s, { train: { loss }, val: { loss } }, i);
    });
    return s;
  };
  it('counts one cut per `patience` results without improvement, then waits again', () => {
    expect(plateauReductions(withScores([1, 0.9, 0.8], 2))).toBe(0);
    expect(plateauReductions(withScores([1, 0.9, 0.95, 0.95], 2))).toBe(1);
    expect(plateauReductions(withScores([1, 0.9, 0.95, 0.95, 0.97], 2))).toBe(1);
    expect(plateauReductions(withScores([1, 0.9, 0.95, 0.95, 0.97, 0.91], 2))).toBe(2);
    expect(plateauReductions(withScores([1, 0.9, 0.95, 0.95, 0.8, 0.85], 2))).toBe(1);
    // Not a plateau schedule: no cuts.
    const other = mergeConfig(withScores([1, 2, 3, 4], 1), { schedule: { kind: 'constant' } });
    expect(plateauReductions(other)).toBe(0);
  });
  it('is the rate the state gives: base x factor^cuts', () => {
    const s = withScores([1, 0.9, 0.95, 0.95], 2);
    expect(learningRate(s, 0.1, 10)).toBe(0.05);
  });
});

describe('learningRate over the state', () => {
  const state = fc
    .record({
      s: schedule,
      steps: fc.nat({ max: 60 }),
      scores: fc.array(fc.double({ min: 0, max: 2, noNaN: true }), { maxLength: 15 }),
      epochEnd: fc.integer({ min: 1, max: 20 }),
    })
    .map(({ s, steps, scores, epochEnd }) => {
      let st = createState({ epochEnd, seed: 1, schedule: s });
      st = stepProgress(st, steps);
      scores.forEach((loss, i) => {
        st = appendResult(st, { train: { loss }, val: { loss } }, i);
      });
      return st;
    });
  test.prop([state, lr, fc.integer({ min: 1, max: 30 })])(
    'is equal after a JSON round trip of the state',
    (st, base, perEpoch) => {
      expect(learningRate(roundTrip(st), base, perEpoch)).toBe(learningRate(st, base, perEpoch));
    },
  );

  it('ends at the run end; the base rate from the config composes with lrScaleFactor', () => {
    const s = createState({ epochEnd: 4, schedule: { kind: 'cosine', lr: 0.2 } });
    expect(scheduleTotalSteps(s, 25)).toBe(100);
    expect(scheduleTotalSteps(mergeConfig(s, { stepEnd: 30 }), 25)).toBe(30);
    expect(
      scheduleTotalSteps(mergeConfig(s, { schedule: { kind: 'linear', totalSteps: 7 } }), 25),
    ).toBe(7);
    expect(baseLearningRate(s, 0.01)).toBe(0.2);
    expect(baseLearningRate(mergeConfig(s, { lrScaleFactor: 2 }), 0.01)).toBe(0.4);
    expect(baseLearningRate(createState({ epochEnd: 4, lrScaleFactor: 2 }), 0.01)).toBe(0.01);
  });
});

describe('the schedule key', () => {
  it('accepts a schedule and refuses a wrong one, naming the key', () => {
    expect(E.isRight(decodeConfig({ schedule: { kind: 'cosine', warmupSteps: 5 } }))).toBe(true);
    for (const bad of [
      { kind: 'cosinus' },
      { kind: 'step' },
      { kind: 'exponential' },
      { kind: 'cosine', warmup: 5 },
      { kind: 'plateau', factor: 1 },
      { kind: 'cosine', lr: 0.1, minLr: 0.2 },
      { warmupSteps: 3 },
      'cosine',
    ]) {
      const d = decodeConfig({ schedule: bad });
      expect(E.isLeft(d) && d.left.message).toMatch(/^schedule: expected a schedule object/);
    }
  });
});
