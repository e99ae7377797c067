/**
 * Hostile config input (issue 11, items 6, 7 and 15): name keys that are paths, cycles, deep
 * nesting, many keys, merge keys and a byte order mark. Every case is a value, never a throw.
 */
import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { decodeConfig } from '../../../src/state/config/decodeConfig.js';
import { fromJsons, fromYamls, parseYaml } from '../../../src/state/config/configText.js';

const errorOf = (input: unknown): string => {
  const r = decodeConfig(input);
  if (E.isRight(r)) throw new Error('expected a Left');
  return r.left.message;
};
const textError = (r: E.Either<{ message: string }, unknown>): string => {
  if (E.isRight(r)) throw new Error('expected a Left');
  return r.left.message;
};
const nested = (depth: number, leaf: unknown = 1): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
};

describe('name-like keys are folder names, not paths', () => {
  const single = 'a single folder name without "/", "\\", ".." or NUL';
  test.each([
    [{ name: '../x' }, `name: expected ${single}, got "../x"; use dir to choose another folder`],
    [{ name: '..' }, `name: expected ${single}, got ".."; use dir to choose another folder`],
    [
      { experimentName: 'a/b' },
      `experimentName: expected ${single}, got "a/b"; use dir to choose another folder`,
    ],
    [
      { runName: 'a\\..\\b' },
      `runName: expected ${single}, got "a\\\\..\\\\b"; use dir to choose another folder`,
    ],
    [
      { experimentId: 'x\u0000y' },
      `experimentId: expected ${single}, got "x\\u0000y"; use dir to choose another folder`,
    ],
    [
      { runId: '/etc/passwd' },
      `runId: expected ${single}, got "/etc/passwd"; use dir to choose another folder`,
    ],
    [
      { checkpointDirName: '../../elsewhere' },
      `checkpointDirName: expected ${single}, got "../../elsewhere"; use checkpointDir to choose another folder`,
    ],
    [
      { name: 'é'.repeat(128) },
      'name: expected a folder name of at most 255 bytes, got 256 bytes; shorten it, or use dir to choose the folder',
    ],
    [
      { experimentName: 'e'.repeat(200), runName: 'r'.repeat(50) },
      'experimentName: expected a run folder name (name-id) of at most 255 bytes, got 268 bytes; shorten experimentName or runName, or use dir to choose the folder',
    ],
    [
      { experimentName: [] },
      'experimentName: expected a folder name (no slash, backslash, NUL or ".."; at most 255 bytes), got an array',
    ],
  ])('%j -> %s', (input, message) => {
    expect(errorOf(input)).toBe(message);
  });

  it('keeps dir, checkpointDir and logPath as paths', () => {
    const r = decodeConfig({
      name: 'ok.name-1',
      dir: '../runs/a',
      checkpointDir: '/tmp/x/../y',
      logPath: 'logs/run.log',
    });
    expect(E.isRight(r)).toBe(true);
  });

  it('accepts a long name when dir chooses the folder', () => {
    expect(E.isRight(decodeConfig({ experimentName: 'e'.repeat(250), dir: 'runs/x' }))).toBe(true);
  });
});

describe('cycles and deep values are errors, never a stack overflow', () => {
  it('rejects a cyclic value with the path of the cycle', () => {
    const m: Record<string, unknown> = { lr: 1 };
    m['self'] = m;
    expect(errorOf({ model: m })).toBe(
      'model.self: expected JSON data without cycles, got a reference back to model; remove the cycle (a YAML alias used inside its own anchor makes one)',
    );
    const root: Record<string, unknown> = {};
    root['again'] = [root];
    expect(errorOf(root)).toMatch(
      /^again\.0: expected JSON data without cycles, got a reference back to \(root\)/,
    );
  });

  it('accepts shared, acyclic values', () => {
    const shared = { lr: 1 };
    expect(E.isRight(decodeConfig({ a: shared, b: [shared, shared] }))).toBe(true);
  });

  it('accepts 64 levels and rejects 65 (the root counts as one)', () => {
    expect(E.isRight(decodeConfig({ model: nested(63) }))).toBe(true);
    expect(errorOf({ model: nested(64) })).toBe(
      `model${'.a'.repeat(63)}: expected at most 64 levels of nested objects and arrays, got deeper nesting; flatten the value, or keep it in a file of its own`,
    );
  });

  it('rejects a 100k-deep value without throwing', () => {
    expect(errorOf({ model: nested(100_000) })).toMatch(/expected at most 64 levels/);
  });

  it('walks shared values once, and refuses an exponential expansion', () => {
    let small: unknown = 1;
    for (let i = 0; i < 16; i++) small = [small, small];
    expect(E.isRight(decodeConfig({ model: small }))).toBe(true);
    let v: unknown = 1;
    for (let i = 0; i < 60; i++) v = [v, v];
    expect(errorOf({ model: v })).toMatch(/^model(\.0)+: expected at most 10000000 values/);
  });
});

describe('hostile config text', () => {
  test.each([
    ['x: &a [*a]\n', 'line 1, column 8: x.0: expected JSON data without cycles'],
    ['model: &m {self: *m}\n', 'line 1, column 18: model.self: expected JSON data without cycles'],
  ])('a recursive alias is a syntax error: %j', (text, start) => {
    expect(textError(fromYamls(text)).startsWith(start)).toBe(true);
  });

  it('10k-deep JSON is a syntax error at the bracket past the limit', () => {
    const text = `{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    expect(textError(fromJsons(text))).toBe(
      'line 1, column 69: nested deeper than 64 levels of objects and arrays; flatten the value, or keep it in a file of its own',
    );
  });

  test.each([
    ['flow sequences', `x: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`],
    ['flow mappings', `x: ${'{a: '.repeat(50_000)}1${'}'.repeat(50_000)}\n`],
    [
      'block mappings',
      Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}a:\n`).join('') +
        `${' '.repeat(3000)}b: 1\n`,
    ],
    ['block sequences', `${'- '.repeat(50_000)}1\n`],
  ])('deeply nested YAML (%s) is a syntax error, not a crash', (_label, text) => {
    const r = fromYamls(text);
    expect(E.isLeft(r) && r.left._tag).toBe('ConfigSyntaxError');
    expect(textError(r)).toMatch(/nested deeper than 64 levels/);
  });

  it('YAML nested 65 levels within the rough text limit is caught on the value', () => {
    const text =
      Array.from({ length: 65 }, (_, i) => `${'  '.repeat(i)}a:\n`).join('') +
      `${'  '.repeat(65)}b: 1\n`;
    expect(textError(fromYamls(text))).toMatch(/expected at most 64 levels of nested objects/);
  });

  it('reads YAML with 64k keys and finds a duplicate among them', () => {
    const lines = Array.from({ length: 65_536 }, (_, i) => `k${String(i)}: ${String(i)}`);
    const ok = parseYaml(`${lines.join('\n')}\n`);
    expect(E.isRight(ok) && Object.keys(ok.right as object).length).toBe(65_536);
    const dup = parseYaml(`${lines.join('\n')}\nk7: 0\n`);
    expect(textError(dup)).toBe(
      'line 65537, column 1: Map keys must be unique; "k7" is already set on line 8, remove one of them',
    );
  });

  it('decodes 64k unknown keys, warning only on likely typos', () => {
    const input: Record<string, number> = { score_name: 1 };
    for (let i = 0; i < 65_536; i++) input[`userKey${String(i)}`] = i;
    const r = decodeConfig(input);
    expect(E.isRight(r) && Object.keys(r.right).length).toBeGreaterThan(65_536);
  });

  it('applies YAML merge keys', () => {
    const r = parseYaml('base: &b {lr: 0.1, name: sgd}\noptim:\n  <<: *b\n  name: adam\n');
    expect(r).toEqual(
      E.right({ base: { lr: 0.1, name: 'sgd' }, optim: { lr: 0.1, name: 'adam' } }),
    );
    const list = parseYaml('a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n');
    expect(E.isRight(list) && (list.right as Record<string, unknown>)['c']).toEqual({ x: 1, y: 2 });
  });

  it('reads JSON with a UTF-8 byte order mark, as YAML does', () => {
    const r = fromJsons('\uFEFF{"seed": 3}');
    expect(E.isRight(r) && r.right.seed).toBe(3);
  });

  const hostileYaml = fc.oneof(
    fc.nat({ max: 400 }).map((n) => `x: ${'['.repeat(n)}${']'.repeat(n)}\n`),
    fc.nat({ max: 400 }).map((n) => `x: ${'{a: '.repeat(n)}1${'}'.repeat(n)}\n`),
    fc
      .nat({ max: 300 })
      .map((n) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k:\n`).join('')),
    fc.nat({ max: 300 }).map((n) => `${'- '.repeat(n)}1\n`),
    fc.constantFrom(
      'x: &a [*a]\n',
      'model: &m {self: *m}\n',
      'a: &a {b: &b {c: *a}}\n',
      'a: &a [1]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c, *c]\n',
      'x: &x {<<: *x}\n',
    ),
    fc
      .array(fc.stringMatching(/^[a-z]{1,6}$/), { maxLength: 200 })
      .map((keys) => keys.map((k, i) => `${k}${String(i % 7)}: ${String(i)}`).join('\n')),
    fc.string({
      unit: fc.constantFrom(
        '[',
        ']',
        '{',
        '}',
        '&a ',
        '*a',
        ': ',
        '- ',
        '\n',
        ' ',
        'x',
        ',',
        '<<: ',
        '"',
        "'",
        '#',
        '|',
      ),
      maxLength: 300,
    }),
  );

  test.prop([hostileYaml])('fromYamls never throws on hostile documents', (text) => {
    const r = fromYamls(text);
    expect(E.isLeft(r) || E.isRight(r)).toBe(true);
    if (E.isLeft(r)) expect(r.left.message.length).toBeGreaterThan(0);
  });

  const hostileJson = fc.oneof(
    fc.nat({ max: 20_000 }).map((n) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`),
    fc.nat({ max: 5_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
    fc.json({ maxDepth: 8 }),
  );

  test.prop([hostileJson])('fromJsons never throws on hostile documents', (text) => {
    const r = fromJsons(text);
    expect(E.isLeft(r) || E.isRight(r)).toBe(true);
  });

  const cyclic = fc
    .tuple(fc.nat({ max: 200 }), fc.nat({ max: 200 }), fc.boolean())
    .map(([depth, back, array]) => {
      const chain: Record<string, unknown>[] = [{}];
      for (let i = 0; i < depth; i++) {
        const next: Record<string, unknown> = {};
        (chain[chain.length - 1] as Record<string, unknown>)['a'] = array ? [next] : next;
        chain.push(next);
      }
      (chain[chain.length - 1] as Record<string, unknown>)['back'] = chain[back % chain.length];
      return { model: chain[0] };
    });

  test.prop([
    fc.oneof(
      cyclic,
      fc.nat({ max: 5000 }).map((n) => ({ model: nested(n) })),
    ),
  ])('decodeConfig never throws on cyclic or deep values', (input) => {
    const r = decodeConfig(input);
    expect(E.isLeft(r) || E.isRight(r)).toBe(true);
  });
});
