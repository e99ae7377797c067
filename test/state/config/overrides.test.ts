import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { applyOverrides, parseArgs, parseScalar } from '../../../src/state/config/overrides.js';

const parsed = (argv: string[]) => {
  const r = parseArgs(argv);
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

describe('parseArgs', () => {
  it('reads chanfig-style overrides, files and positional words', () => {
    expect(
      parsed([
        'config',
        'a.yaml',
        '--optim.lr',
        '0.01',
        '--epochEnd=5',
        '--log',
        'false',
        '--deterministic',
        '--config',
        'b.json',
        '--name=',
        '--lr',
        '-0.5',
      ]),
    ).toEqual({
      positional: ['config', 'a.yaml'],
      configFiles: ['b.json'],
      overrides: [
        { path: 'optim.lr', value: 0.01 },
        { path: 'epochEnd', value: 5 },
        { path: 'log', value: false },
        { path: 'deterministic', value: true },
        { path: 'name', value: '' },
        { path: 'lr', value: -0.5 },
      ],
      help: false,
    });
  });

  it('makes every word after -- positional, and sees --help', () => {
    expect(parsed(['--help', '--', '--x', 'y'])).toMatchObject({
      positional: ['--x', 'y'],
      help: true,
    });
  });

  test.each([
    [
      '--',
      ['--=3'],
      '--=3: expected --key or --dotted.key (letters, digits, _ and -), then a value',
    ],
    [
      'empty segment',
      ['--a..b', '1'],
      '--a..b: expected --key or --dotted.key (letters, digits, _ and -), then a value',
    ],
    [
      'dangling --config',
      ['--config'],
      '--config: expected a file after --config, e.g. --config run.yaml',
    ],
    ['short option', ['-x'], '-x: unknown short option; config keys are given as --key value'],
  ])('%s is an error naming the argument', (_name, argv, message) => {
    const r = parseArgs(argv);
    expect(E.isLeft(r) && r.left.message).toBe(message);
  });

  test.prop([fc.array(fc.string())])('never throws on any argv', (argv) => {
    const r = parseArgs(argv);
    expect(E.isLeft(r) || E.isRight(r)).toBe(true);
  });
});

describe('parseScalar', () => {
  test.each([
    ['0.01', 0.01],
    ['3', 3],
    ['false', false],
    ['null', null],
    ['[1, 2]', [1, 2]],
    ['{a: 1}', { a: 1 }],
    ['adam', 'adam'],
    ['.inf', '.inf'],
    ['', ''],
    ['a: b: c', 'a: b: c'],
  ])('%j -> %j', (raw, value) => {
    expect(parseScalar(raw)).toEqual(value);
  });
});

describe('applyOverrides', () => {
  it('sets dotted paths, later ones winning, without touching the base', () => {
    const base = Object.freeze({ optim: Object.freeze({ lr: 1, name: 'sgd' }) });
    expect(
      applyOverrides(base, [
        { path: 'optim.lr', value: 2 },
        { path: 'optim.lr', value: 3 },
        { path: 'seed', value: 0 },
      ]),
    ).toEqual({ optim: { lr: 3, name: 'sgd' }, seed: 0 });
  });
});
