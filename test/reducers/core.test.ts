import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { actions, reduce, replay, type Action } from '../../src/reducers/actions.js';
import {
  appendResult,
  mergeConfig,
  registerSplit,
  restore,
  setMode,
  startEpoch,
  stepProgress,
  tryMergeConfig,
  updateMeters,
} from '../../src/reducers/reducers.js';
import { createState, decodeState, type RunnerState } from '../../src/state/runner/RunnerState.js';
import * as S from '../../src/state/runner/selectors.js';
import { IGNORED_SPLITS } from '../../src/state/runner/results.js';
import { action, actionLog, denseAction, result } from '../helpers/arbitraries.js';
import {
  expectDeepFrozen,
  expectPureStep,
  expectResumeEqualsUninterrupted,
  roundTrip,
} from '../helpers/properties.js';

const s0 = createState({ epochEnd: 10, seed: 0 }, { timestamp: '2026-11-24T00-00-00' });

/** The spec's scores, best and latest computed naively from the plain history, bugs fixed. */
const naive = (state: RunnerState) => {
  const history = S.results(state);
  const last = history.at(-1);
  if (last === undefined)
    return {
      split: state.config.scoreSplit ?? null,
      scores: [],
      best: null,
      latest: undefined,
      isBest: true,
    };
  const splits = Object.keys(last.result).filter((k) => !IGNORED_SPLITS.has(k));
  const split =
    state.config.scoreSplit ??
    (splits.includes('val')
      ? 'val'
      : splits.includes('validate')
        ? 'validate'
        : (splits[1] ?? splits[0] ?? null));
  const scoreOf = (r: Record<string, unknown>): number | undefined => {
    const section = split === null ? undefined : r[split];
    const v =
      typeof section === 'object' && section !== null
        ? (section as Record<string, unknown>)[state.config.scoreName]
        : undefined;
    return typeof v === 'number' && !Number.isNaN(v) ? v : undefined;
  };
  const scores = history.map((h) => ({ index: h.index, score: scoreOf(h.result) }));
  const name = state.config.scoreName.toLowerCase();
  const min =
    state.config.scoreMode === 'min' ||
    (state.config.scoreMode === 'auto' &&
      (/(loss|error)$/.test(name) || ['mae', 'mse', 'rmse', 'perplexity', 'wer'].includes(name)));
  let best: { index: number; score: number } | null = null;
  for (const { index, score } of scores) {
    if (score === undefined) continue;
    if (best === null || (min ? score < best.score : score > best.score)) best = { index, score };
  }
  const latest = scores.at(-1)?.score;
  // One rule: the latest result is best only when strictly better than every earlier score.
  const isBest = best !== null && best.index === last.index;
  return { split, scores, best, latest, isBest };
};

describe('reducers keep the STYLE.md properties', () => {
  test.prop([actionLog(), action])('never mutate, always freeze, stay JSON', (log, a) => {
    expectPureStep(replay(s0, log), (s) => reduce(s, a));
  });

  test.prop([actionLog()])('replaying the same log twice gives equal states', (log) => {
    expect(replay(s0, log)).toEqual(replay(s0, log));
  });

  test.prop([actionLog(), actionLog()])(
    'JSON round trip mid-run then continuing equals never stopping',
    (xs, ys) => {
      expectResumeEqualsUninterrupted(s0, xs, ys);
    },
  );

  test.prop([actionLog()])('an action log survives JSON and replays to the same state', (log) => {
    const shipped = JSON.parse(JSON.stringify(log)) as Action[];
    expect(replay(s0, shipped)).toEqual(replay(s0, log));
  });
});

describe('setMeters', () => {
  test.prop([actionLog(), actionLog()])(
    'puts back the meters read before any other actions (an evaluation inside an epoch), through the action and its JSON',
    (before, between) => {
      const s1 = replay(s0, before);
      const back = JSON.parse(JSON.stringify(actions.setMeters(s1.meters))) as Action;
      const s2 = reduce(replay(s1, between), back);
      expect(s2.meters).toEqual(s1.meters);
      expect(Object.isFrozen(s2.meters)).toBe(true);
    },
  );
});

describe('best and latest equal a naive fold over the history', () => {
  test.prop([fc.oneof(actionLog(60), fc.array(denseAction, { maxLength: 60 }))], { numRuns: 400 })(
    'for any log of results and score changes',
    (log) => {
      let state = s0;
      for (const a of log) {
        state = reduce(state, a);
        const n = naive(state);
        expect(S.scoreSplit(state)).toBe(n.split);
        expect(S.scores(state)).toEqual(n.scores);
        expect(S.bestIndex(state)).toBe(n.best?.index ?? null);
        expect(S.bestScore(state)).toBe(n.best?.score);
        expect(S.latestScore(state)).toBe(n.latest);
        expect(S.isBest(state)).toBe(n.isBest);
        expect(S.bestResult(state)?.index ?? null).toBe(n.best?.index ?? null);
      }
    },
  );

  test.prop([fc.array(fc.tuple(result, fc.integer({ min: 0, max: 5 })), { maxLength: 30 })])(
    'with repeated indices deep-merging',
    (pairs) => {
      let state = s0;
      const expected = new Map<number, Record<string, Record<string, unknown>>>();
      for (const [r, i] of pairs) {
        state = appendResult(state, r, i);
        const old = expected.get(i) ?? {};
        const merged: Record<string, Record<string, unknown>> = { ...old };
        for (const [k, v] of Object.entries(r)) merged[k] = { ...(old[k] ?? {}), ...(v as object) };
        expected.set(i, merged);
      }
      expect(S.results(state).map((h) => h.index)).toEqual([...expected.keys()]);
      const n = naive(state);
      expect(S.bestIndex(state)).toBe(n.best?.index ?? null);
    },
  );
});

describe('spec behaviour, bugs fixed', () => {
  const at = (rs: [number, Record<string, Record<string, number>>][], cfg: object = {}) =>
    rs.reduce((s, [i, r]) => appendResult(s, r, i), createState({ epochEnd: 10, ...cfg }));

  test.each([
    ['config.scoreSplit wins', { scoreSplit: 'test' }, { train: {}, val: {}, test: {} }, 'test'],
    ['val when present', {}, { train: {}, test: {}, val: {} }, 'val'],
    ['validate next', {}, { train: {}, validate: {}, test: {} }, 'validate'],
    ['else the second split', {}, { train: {}, test: {} }, 'test'],
    ['else the only one', {}, { train: {} }, 'train'],
    ['ignoring index/epoch/step/iter', {}, { epoch: {}, train: {}, step: {} }, 'train'],
  ])('score split: %s', (_name, cfg, r, expected) => {
    expect(S.scoreSplit(at([[0, r]], cfg))).toBe(expected);
  });

  it('isBest is true before any result', () => {
    expect(S.isBest(s0)).toBe(true);
    expect(S.latestResult(s0)).toBeNull();
    expect(S.bestResult(s0)).toBeNull();
    expect(S.bestScore(s0)).toBeUndefined();
  });

  it('min for loss, max otherwise', () => {
    const rs: [number, Record<string, Record<string, number>>][] = [
      [0, { val: { loss: 2, accuracy: 0.2 } }],
      [1, { val: { loss: 1, accuracy: 0.9 } }],
      [2, { val: { loss: 3, accuracy: 0.5 } }],
    ];
    expect(S.bestIndex(at(rs))).toBe(1);
    expect(S.bestScore(at(rs, { scoreName: 'accuracy' }))).toBe(0.9);
    expect(S.scoreMode(at(rs))).toBe('min');
    expect(S.bestFn(at(rs))([3, 1, Number.NaN])).toBe(1);
    expect(S.bestFn(at(rs, { scoreName: 'accuracy' }))([3, 1])).toBe(3);
  });

  it('fix 1: bestScore uses the index, not the position (results from epoch 5, skipping epochs)', () => {
    const s = at([
      [5, { val: { loss: 0.9 } }],
      [7, { val: { loss: 0.4 } }],
      [9, { val: { loss: 0.6 } }],
    ]);
    expect(S.bestIndex(s)).toBe(7);
    expect(S.bestScore(s)).toBe(0.4);
    expect(S.bestResult(s)).toEqual({ val: { loss: 0.4 }, index: 7 });
    expect(S.latestResult(s)).toEqual({ val: { loss: 0.6 }, index: 9 });
    expect(S.isBest(s)).toBe(false);
  });

  it('fix 2: seed 0 is a seed; epoch 0 is an epoch', () => {
    expect(createState({ seed: 0 }).rng).not.toBeNull();
    expect(createState({}).rng).toBeNull();
    const s = startEpoch(createState({ epochEnd: 3 }), 0);
    expect(appendResult(s, { val: { loss: 1 } }).results.entries.size).toBe(1);
    expect(S.latestResult(appendResult(s, { val: { loss: 1 } }))?.index).toBe(0);
  });

  it('fix 3: NaN or a missing metric never becomes best; ties go to the earliest index', () => {
    const s = at([
      [0, { val: { loss: Number.NaN } }],
      [1, { val: { accuracy: 1 } }],
      [2, { val: { loss: 0.5 } }],
      [3, { val: { loss: 0.5 } }],
      [4, { val: { loss: Number.NaN } }],
    ]);
    expect(S.bestIndex(s)).toBe(2);
    expect(S.isBest(s)).toBe(false);
    expect(S.latestScore(s)).toBeUndefined();
    expect(S.results(s)[0]?.result).toEqual({ val: { loss: Number.NaN } });
  });

  it('a merge that makes the best entry worse moves best elsewhere', () => {
    let s = at([
      [0, { val: { loss: 0.5 } }],
      [1, { val: { loss: 0.2 } }],
    ]);
    s = appendResult(s, { val: { loss: 0.9 } }, 1);
    expect(S.bestIndex(s)).toBe(0);
  });

  test.each([
    [(s: RunnerState) => S.totalEpochs(s), {}, 'totalEpochs is unknown: set config.epochEnd'],
    [
      (s: RunnerState) => S.totalSteps(s),
      {},
      'totalSteps is unknown: set config.stepEnd or config.epochEnd',
    ],
    [
      (s: RunnerState) => S.progress(s),
      {},
      'progress is unknown: set config.epochEnd or config.stepEnd',
    ],
    [
      (s: RunnerState) => S.progress(s),
      { epochEnd: 3 },
      'steps per epoch are unknown: registerSplit the training split (its size and batch size) or set config.stepEnd',
    ],
    [
      (s: RunnerState) => S.batchSize(s),
      {},
      'batchSize is unknown: set config.dataloader.batchSize or registerSplit the current split',
    ],
  ])(
    'fix 5: a selector without what it needs throws a named error (%#)',
    (select, cfg, message) => {
      const s = createState(cfg);
      expect(() => select(s)).toThrow(S.RunnerStateError);
      expect(() => select(s)).toThrow(message);
    },
  );

  it('fix 6: best tracking is incremental (no history walk on append)', () => {
    let s = createState({});
    for (let i = 0; i < 2000; i++) s = appendResult(s, { val: { loss: 1 / (1 + i) } }, i);
    expect(S.bestIndex(s)).toBe(1999);
    expect(s.results.entries.depth).toBe(2);
  });
});

describe('selectors', () => {
  it('progress counters, batch sizes and totals', () => {
    let s = createState(
      { epochEnd: 4, accumSteps: 2, dataloader: { batchSize: 8 } },
      { worldSize: 2, rank: 1, localRank: 1 },
    );
    expect(S.batchSize(s)).toBe(8);
    s = registerSplit(s, 'train', { size: 100, batchSize: 10 });
    s = reduce(s, actions.setSplit('train'));
    expect(S.batchSize(s)).toBe(10);
    expect(S.batchSizeEquivalent(s)).toBe(40);
    expect(S.totalEpochs(s)).toBe(4);
    expect(S.totalSteps(s)).toBe(4 * 5);
    expect(S.trainableSteps(s)).toBe(10);
    s = stepProgress(s, 3);
    expect([S.step(s), S.iter(s)]).toEqual([3, 6]);
    expect(S.progress(s)).toBe(6 / 20);
    expect([
      S.distributed(s),
      S.isMainProcess(s),
      S.isLocalMainProcess(s),
      S.rank(s),
      S.localRank(s),
      S.worldSize(s),
    ]).toEqual([true, false, false, 1, 1, 2]);
  });

  it('stepEnd drives totals and progress', () => {
    const s = stepProgress(createState({ stepEnd: 100 }), 25);
    expect(S.totalSteps(s)).toBe(100);
    expect(S.progress(s)).toBe(0.25);
  });

  it('identity and paths', () => {
    const s = createState(
      { experimentName: 'iris', runName: 'mlp', experimentId: 'abcdef0123456789' },
      { timestamp: 'T' },
    );
    expect(S.name(s)).toBe('iris-mlp');
    expect(S.id(s)).toBe(`abcdef01${s.config.runId.slice(0, 8)}`);
    expect(S.dir(s)).toBe(`experiments/iris-mlp-${S.id(s)}/T`);
    expect(S.checkpointDir(s)).toBe(`${S.dir(s)}/checkpoints`);
    expect(S.logPath(s)).toBe(`${S.dir(s)}/run.log`);
    expect(S.uuid(s)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5/);
    expect(S.uuid(s)).toBe(S.uuid(createState(s.config, { timestamp: 'other' })));
    const custom = createState({ dir: '/runs/x', logPath: '/logs/x.log' });
    expect([S.dir(custom), S.checkpointDir(custom), S.logPath(custom)]).toEqual([
      '/runs/x',
      '/runs/x/checkpoints',
      '/logs/x.log',
    ]);
  });

  it('meters: val, avg, sum and count, JSON-safe with NaN', () => {
    let s = updateMeters(s0, { loss: 1, acc: 0.5 }, 2);
    s = updateMeters(s, { loss: 4 }, 1);
    expect(S.meters(s)['loss']).toEqual({ val: 4, avg: 2, sum: 6, count: 3 });
    expect(S.getResult(s, 'step')).toEqual({ loss: 4, acc: 0.5 });
    expect(S.getResult(s, 'epoch')).toEqual({ loss: 2, acc: 0.5 });
    s = updateMeters(s, { loss: Number.NaN });
    expect(S.getResult(s, 'epoch')['loss']).toBeNaN();
    expect(roundTrip(s)).toEqual(s);
  });

  it('setMode names the valid modes', () => {
    expect(() => setMode(s0, 'test' as never)).toThrow(
      new TypeError(`mode must be one of 'train', 'eval', 'inf', got "test"`),
    );
    expect(S.mode(setMode(s0, 'eval'))).toBe('eval');
  });
});

describe('config changes and restore', () => {
  it('mergeConfig rebuilds best tracking when the score changes, and keeps the runId', () => {
    let s = appendResult(s0, { val: { loss: 1, accuracy: 0.9 } }, 0);
    s = appendResult(s, { val: { loss: 0.5, accuracy: 0.1 } }, 1);
    expect(S.bestIndex(s)).toBe(1);
    const t = mergeConfig(s, { scoreName: 'accuracy', optim: { lr: 0.1 } });
    expect(S.bestIndex(t)).toBe(0);
    expect(t.config.runId).toBe(s.config.runId);
  });

  it('tryMergeConfig lists every problem', () => {
    const r = tryMergeConfig(s0, { accumSteps: 0, seed: -1 });
    expect(E.isLeft(r) && r.left.message).toBe(
      'seed: expected a non-negative integer, got -1\naccumSteps: expected a positive integer, got 0',
    );
  });

  it('restore takes counters, results, meters and rng, and sets every *Begin', () => {
    let saved = appendResult(stepProgress(startEpoch(s0, 3), 7), { val: { loss: 0.1 } }, 3);
    saved = updateMeters(saved, { loss: 0.1 });
    const fresh = createState({ epochEnd: 20, seed: 5, optim: { lr: 1 } }, { timestamp: 'new' });
    const r = restore(fresh, roundTrip(saved));
    expect(r.progress).toEqual({
      epoch: 3,
      step: 7,
      iter: 7,
      epochBegin: 3,
      stepBegin: 7,
      iterBegin: 7,
    });
    expect(S.results(r)).toEqual(S.results(saved));
    expect(r.rng).toEqual(saved.rng);
    expect(r.config.epochEnd).toBe(20);
    expect(r.config['optim']).toEqual({ lr: 1 });
    expect(r.timestamp).toBe('new');
    expect(restore(fresh, saved, { overrideConfig: true }).config.epochEnd).toBe(10);
    expectDeepFrozen(r);
  });
});

describe('decodeState', () => {
  test.each([
    [
      { ...s0, schemaVersion: 3 },
      'schemaVersion: the state was saved by a newer danling (schema 3, this one reads up to 2); upgrade danling to load it',
    ],
    [{ ...s0, mode: 'test' }, 'mode: expected one of train, eval, inf, got "test"'],
    [
      { ...s0, progress: { ...s0.progress, step: -1 } },
      'progress.step: expected a non-negative integer, got -1',
    ],
    [
      { ...s0, config: { ...s0.config, accumSteps: 0 } },
      'config.accumSteps: expected a positive integer, got 0',
    ],
    [
      { ...s0, results: { entries: { size: 3, depth: 0, root: [] }, positions: {} } },
      'results: expected an array of {index, result}, got an object',
    ],
    [[], '(root): expected a runner state object, got an array'],
  ])('rejects a bad state with a message naming the field (%#)', (input, message) => {
    const r = decodeState(JSON.parse(JSON.stringify(input)));
    expect(E.isLeft(r) && r.left.message).toBe(message);
  });

  it('rebuilds best tracking from the history, whatever the file said', () => {
    const s = appendResult(appendResult(s0, { val: { loss: 2 } }, 0), { val: { loss: 1 } }, 1);
    const tampered = JSON.parse(
      JSON.stringify({ ...s, best: { split: 'val', position: 0 } }),
    ) as unknown;
    const r = decodeState(tampered);
    expect(E.isRight(r) && S.bestIndex(r.right)).toBe(1);
  });
});
