import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { CONFIG_DEFAULTS, configId, configName } from '../../../src/state/config/Config.js';
import {
  BOOKKEEPING_KEYS,
  decodeConfig,
  decodeConfigWithWarnings,
  deriveRunId,
  editDistance,
  suggestKey,
} from '../../../src/state/config/decodeConfig.js';
import { fromJsons, fromYamls, jsons, yamls } from '../../../src/state/config/configText.js';
import type { JsonObject } from '../../../src/state/Json.js';
import { configInput, jsonValue } from '../../helpers/configArbitraries.js';

const ok = (input: unknown) => {
  const r = decodeConfig(input);
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};
const errorOf = (input: unknown): string => {
  const r = decodeConfig(input);
  if (E.isRight(r)) throw new Error('expected a Left');
  return r.left.message;
};

describe('decodeConfig', () => {
  it('fills every default and derives a runId', () => {
    const c = ok({});
    expect(c).toMatchObject(CONFIG_DEFAULTS);
    expect(c.runId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it('reads -0 as 0, so the config stays exact JSON', () => {
    const c = ok({ seed: -0, optim: { lr: [-0, 1] } });
    expect(Object.is(c.seed, 0)).toBe(true);
    expect(Object.is((c['optim'] as { lr: number[] }).lr[0], 0)).toBe(true);
    expect(JSON.parse(JSON.stringify(c))).toEqual(c);
  });

  it('keeps seed 0 (0 is a valid seed)', () => {
    expect(ok({ seed: 0 }).seed).toBe(0);
  });

  it('keeps user keys as given', () => {
    const c = ok({ optim: { lr: 0.01, betas: [0.9, 0.999] }, model: 'mlp' });
    expect(c['optim']).toEqual({ lr: 0.01, betas: [0.9, 0.999] });
    expect(c['model']).toBe('mlp');
  });

  it('treats null on a known key as unset', () => {
    expect(ok({ seed: null }).seed).toBeUndefined();
    expect(ok({ scoreName: null }).scoreName).toBe('loss');
  });

  test.each([
    [{ accumSteps: 0 }, 'accumSteps: expected a positive integer, got 0'],
    [{ seed: -1 }, 'seed: expected a non-negative integer, got -1'],
    [{ seed: 1.5 }, 'seed: expected a non-negative integer, got 1.5'],
    [{ epochEnd: '10' }, 'epochEnd: expected a positive integer, got "10"'],
    [{ log: 'yes' }, 'log: expected a boolean, got "yes"'],
    [{ scoreName: '' }, 'scoreName: expected a non-empty string, got ""'],
    [{ lrScaleFactor: -2 }, 'lrScaleFactor: expected a positive number, got -2'],
    [{ saveInterval: 0.5 }, 'saveInterval: expected an integer, got 0.5'],
    [{ scoreSplit: [] }, 'scoreSplit: expected a non-empty string, got an array'],
    [{ dataloader: { batchSize: 0 } }, 'dataloader.batchSize: expected a positive integer, got 0'],
    [{ dataloader: 3 }, 'dataloader: expected an object, got 3'],
    [{ optim: { lr: Number.NaN } }, 'optim.lr: expected a JSON value, got NaN'],
    [{ data: [1, Number.POSITIVE_INFINITY] }, 'data.1: expected a JSON value, got Infinity'],
    [{ when: new Date(0) }, 'when: expected a JSON value, got a Date'],
    [[], '(root): expected an object of config keys, got an array'],
    [null, '(root): expected an object of config keys, got null'],
    ['x', '(root): expected an object of config keys, got "x"'],
  ])('%j -> %s', (input, message) => {
    expect(errorOf(input)).toBe(message);
  });

  it('reports every problem at once, one line each', () => {
    expect(errorOf({ accumSteps: 0, seed: 'x', tensorboard: 1 }).split('\n')).toEqual([
      'seed: expected a non-negative integer, got "x"',
      'tensorboard: expected a boolean, got 1',
      'accumSteps: expected a positive integer, got 0',
    ]);
  });

  test.prop([fc.anything()])('never throws on any input', (input) => {
    const r = decodeConfig(input);
    expect(E.isLeft(r) || E.isRight(r)).toBe(true);
    if (E.isLeft(r)) expect(r.left.message.length).toBeGreaterThan(0);
  });

  test.prop([jsonValue])('never throws on any JSON value', (input) => {
    const r = decodeConfig(input);
    if (E.isLeft(r)) expect(r.left.problems.length).toBeGreaterThan(0);
    else expect(typeof r.right.runId).toBe('string');
  });

  test.prop([configInput])('accepts every valid config and keeps its values', (input) => {
    const c = ok(input);
    for (const [k, v] of Object.entries(input)) expect(c[k]).toEqual(v);
  });
});

describe('typo warnings', () => {
  test.each([
    ['score_name', 'scoreName'],
    ['epoch_end', 'epochEnd'],
    ['acumSteps', 'accumSteps'],
    ['sede', 'seed'],
    ['projectroot', 'projectRoot'],
    ['save-interval', 'saveInterval'],
  ])('%s -> did you mean %s?', (key, suggestion) => {
    const r = decodeConfigWithWarnings({ [key]: 1 });
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(r.right.config[key]).toBe(1);
    expect(r.right.warnings.map((w) => w.message)).toEqual([
      `${key}: unknown key kept as given; did you mean ${suggestion}?`,
    ]);
  });

  it('warns inside dataloader too', () => {
    const r = decodeConfigWithWarnings({ dataloader: { batch_size: 8 } });
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(r.right.warnings.map((w) => w.message)).toEqual([
      'dataloader.batch_size: unknown key kept as given; did you mean dataloader.batchSize?',
    ]);
  });

  test.each(['optim', 'model', 'data', 'lr', 'dropout', 'layers'])(
    'does not warn on the ordinary user key %s',
    (key) => {
      const r = decodeConfigWithWarnings({ [key]: 1 });
      if (E.isLeft(r)) throw new Error(r.left.message);
      expect(r.right.warnings).toEqual([]);
    },
  );

  it('measures edits with transpositions', () => {
    expect(editDistance('seed', 'sede')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(suggestKey('zzzzzz', ['seed'])).toBeUndefined();
  });
});

describe('runId', () => {
  const shuffle = (o: JsonObject, order: readonly number[]): JsonObject => {
    const entries = Object.entries(o);
    const sorted = entries
      .map((e, i) => [order[i % Math.max(order.length, 1)] ?? i, e] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, e]) => e);
    return Object.fromEntries(sorted);
  };

  test.prop([configInput, fc.array(fc.nat(), { minLength: 1 })])(
    'ignores key order',
    (input, order) => {
      const { runId: _drop, ...rest } = input;
      expect(ok(shuffle(rest, order)).runId).toBe(ok(rest).runId);
    },
  );

  test.prop([configInput, fc.constantFrom(...BOOKKEEPING_KEYS), fc.jsonValue()])(
    'ignores bookkeeping keys',
    (input, key, value) => {
      const { runId: _drop, ...rest } = input;
      const changed = { ...rest, [key]: value };
      if (key === 'runId' || key === 'experimentId') return;
      const a = decodeConfig(changed);
      if (E.isLeft(a)) return; // an invalid value for a known bookkeeping key
      expect(a.right.runId).toBe(ok(rest).runId);
    },
  );

  test.prop([configInput, fc.string({ minLength: 1, maxLength: 6 }), jsonValue])(
    'changes when any other key changes',
    (input, key, value) => {
      const { runId: _drop, ...rest } = input;
      if (BOOKKEEPING_KEYS.has(key) || Object.hasOwn(CONFIG_DEFAULTS, key) || key === 'dataloader')
        return;
      const before = ok(rest);
      const after = decodeConfig({ ...rest, [key]: value });
      if (E.isLeft(after)) return;
      const same = JSON.stringify(before[key]) === JSON.stringify(after.right[key]);
      expect(after.right.runId === before.runId).toBe(same);
    },
  );

  it('counts defaults as given: {} and {accumSteps: 1} share a runId', () => {
    expect(ok({ accumSteps: 1 }).runId).toBe(ok({}).runId);
  });

  it('lives in the experiment namespace', () => {
    expect(ok({ experimentId: 'abc' }).runId).not.toBe(ok({ experimentId: 'abd' }).runId);
  });

  it('keeps a given runId', () => {
    expect(ok({ runId: 'my-run' }).runId).toBe('my-run');
    expect(deriveRunId({ a: 1 })).toBe(deriveRunId({ a: 1 }));
  });

  it('gives the spec name and id', () => {
    const c = ok({ experimentName: 'iris', runName: 'mlp', experimentId: '0123456789abcdef' });
    expect(configName(c)).toBe('iris-mlp');
    expect(configId(c)).toBe(`01234567${c.runId.slice(0, 8)}`);
    expect(configName(ok({ name: 'custom' }))).toBe('custom');
  });
});

describe('text forms', () => {
  test.prop([configInput])('fromYamls(yamls(c)) equals c', (input) => {
    const c = ok(input);
    expect(fromYamls(yamls(c))).toEqual(E.right(c));
  });

  test.prop([configInput])('fromJsons(jsons(c)) equals c', (input) => {
    const c = ok(input);
    expect(fromJsons(jsons(c))).toEqual(E.right(c));
  });

  test.each([
    ['a: 1\n  b: [2\n', 'line 1, column 4: Nested mappings are not allowed in compact mappings'],
    [
      'x: 1\nx: 2\n',
      'line 2, column 1: Map keys must be unique; "x" is already set on line 1, remove one of them',
    ],
  ])('a YAML syntax error carries line and column: %j', (text, message) => {
    const r = fromYamls(text);
    expect(E.isLeft(r) && r.left.message).toBe(message);
  });

  it('a JSON syntax error carries line and column', () => {
    const r = fromJsons('{\n  "a": 1,\n}');
    expect(
      E.isLeft(r) && r.left._tag === 'ConfigSyntaxError' && [r.left.line, r.left.column],
    ).toEqual([3, 1]);
  });

  it('a YAML value that is no JSON (.inf) is a config problem, not a crash', () => {
    const r = fromYamls('seed: .inf\noptim:\n  lr: .nan\n');
    expect(E.isLeft(r) && r.left.message).toBe(
      'seed: expected a non-negative integer, got Infinity\noptim.lr: expected a JSON value, got NaN',
    );
  });

  test.prop([fc.string()])('fromYamls never throws on any string', (text) => {
    const r = fromYamls(text);
    expect(E.isLeft(r) || E.isRight(r)).toBe(true);
  });

  test.prop([fc.string()])('fromJsons never throws on any string', (text) => {
    const r = fromJsons(text);
    expect(E.isLeft(r) || E.isRight(r)).toBe(true);
  });
});
