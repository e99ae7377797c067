/**
 * fast-check arbitraries for the runner core: results, actions and action logs. Built from the
 * types' own vocabularies (RUNNER_MODES, the split names the spec treats specially) so they
 * exercise every path of score inference and best tracking.
 */
import fc from 'fast-check';
import type { MetricValue } from '../../src/state/runner/metric.js';
import type { Action } from '../../src/reducers/actions.js';
import { actions } from '../../src/reducers/actions.js';
import type { ResultRecord } from '../../src/reducers/reducers.js';
import { RUNNER_MODES } from '../../src/state/runner/RunnerState.js';

/** Split names, including the ones score inference looks for and one it ignores. */
export const splitName = fc.constantFrom('train', 'val', 'validate', 'test', 'extra', 'index');
/** Metric names, including the default score name. */
export const metricName = fc.constantFrom('loss', 'accuracy', 'f1', 'mae');

/** A metric value: ordinary numbers, ties, -0, NaN and the infinities. */
export const metricValue: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -10, max: 10, noNaN: true }) },
  { weight: 3, arbitrary: fc.constantFrom(0, 0.5, 1) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity, -0) },
);

/** A result: some splits, each with some metrics (so scores may be missing). */
export const result: fc.Arbitrary<ResultRecord> = fc.dictionary(
  splitName,
  fc.dictionary(metricName, metricValue, { maxKeys: 3 }),
  { maxKeys: 4 },
);

/**
 * A result drawn from a small world (two splits, two metrics, four values) so that ties,
 * merges into the best entry and missing scores happen often.
 */
export const denseResult: fc.Arbitrary<ResultRecord> = fc.dictionary(
  fc.constantFrom('train', 'val'),
  fc.dictionary(fc.constantFrom('loss', 'accuracy'), fc.constantFrom(0, 0.5, 1, Number.NaN), {
    maxKeys: 2,
  }),
  { maxKeys: 2 },
);

/** Appends from the small world at a few indices, with occasional score changes. */
export const denseAction: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .tuple(denseResult, fc.integer({ min: 0, max: 4 }))
      .map(([r, i]) => actions.appendResult(r, i)),
  },
  {
    weight: 1,
    arbitrary: fc
      .record(
        {
          scoreName: fc.constantFrom('loss', 'accuracy', 'mae'),
          scoreMode: fc.constantFrom('auto', 'min', 'max'),
        },
        { requiredKeys: ['scoreName'] },
      )
      .map((patch) => actions.mergeConfig(patch)),
  },
);

/** Actions that change results or how they are scored, plus the counters. */
/** A meter's number as the state holds it: finite, or NaN and the infinities as strings. */
const encodedValue: fc.Arbitrary<MetricValue> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
  fc.constantFrom('NaN' as const, 'Infinity' as const, '-Infinity' as const),
);

export const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(result, fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }))
      .map(([r, i]) => actions.appendResult(r, i)),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 8 }).map((e) => actions.startEpoch(e)) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((n) => actions.stepProgress(n)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.dictionary(metricName, metricValue, { maxKeys: 3 }),
        fc.integer({ min: 1, max: 64 }),
      )
      .map(([v, n]) => actions.updateMeters(v, n)),
  },
  { weight: 1, arbitrary: fc.constant(actions.resetMeters()) },
  {
    weight: 1,
    arbitrary: fc
      .dictionary(
        metricName,
        fc.record({
          val: encodedValue,
          avg: encodedValue,
          sum: encodedValue,
          count: fc.nat({ max: 10_000 }),
        }),
        { maxKeys: 3 },
      )
      .map((m) => actions.setMeters(m)),
  },
  { weight: 1, arbitrary: fc.constantFrom(...RUNNER_MODES).map((m) => actions.setMode(m)) },
  { weight: 1, arbitrary: fc.option(splitName, { nil: null }).map((s) => actions.setSplit(s)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(splitName, fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 64 }))
      .map(([s, size, batchSize]) => actions.registerSplit(s, { size, batchSize })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record(
        {
          scoreName: metricName,
          scoreSplit: fc.option(splitName, { nil: null }),
          scoreMode: fc.constantFrom('auto', 'min', 'max'),
        },
        { requiredKeys: [] },
      )
      .map((patch) => actions.mergeConfig(patch)),
  },
);

/** A log of actions. */
export const actionLog = (maxLength = 40): fc.Arbitrary<Action[]> =>
  fc.array(action, { maxLength });
