/**
 * The spec's format_result / format_step_result / format_epoch_result and the score-rule and
 * early-stop lines, as exact strings and as properties.
 */
import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { appendResult, startEpoch } from '../../../src/reducers/reducers.js';
import {
  formatEarlyStop,
  formatEpochLine,
  formatEpochResult,
  formatResult,
  formatScoreRule,
  formatStepLine,
  formatStepResult,
  formatValue,
} from '../../../src/state/runner/format.js';
import { createState } from '../../../src/state/runner/RunnerState.js';

describe('formatValue', () => {
  it('prints numbers with the digits asked for and non-finite ones as Python does', () => {
    expect(formatValue(0.123456)).toBe('0.1235');
    expect(formatValue(2, 2)).toBe('2.00');
    expect([NaN, Infinity, -Infinity].map((v) => formatValue(v))).toEqual(['nan', 'inf', '-inf']);
    // The state's encoding of non-finite values prints the same.
    expect(['NaN', 'Infinity', '-Infinity'].map((v) => formatValue(v))).toEqual([
      'nan',
      'inf',
      '-inf',
    ]);
    expect(formatValue('top')).toBe('top');
    expect(formatValue([1, 'NaN'], 1)).toBe('[1.0, nan]');
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
    expect(formatValue(null)).toBe('null');
  });

  test.prop([fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 8 })])(
    'a finite number is toFixed(digits)',
    (v, digits) => {
      expect(formatValue(v, digits)).toBe(v.toFixed(digits));
    },
  );
});

describe('formatResult', () => {
  it('flat results: name: value joined by tabs, index left out', () => {
    expect(formatResult({ index: 3, loss: 0.1, accuracy: 0.9 })).toBe(
      'loss: 0.1000\taccuracy: 0.9000',
    );
  });

  it('nested results: one split a line, split names padded to one width', () => {
    expect(formatResult({ train: { loss: 0.1 }, val: { loss: 0.2, acc: 1 } })).toBe(
      '\ntrain: loss: 0.1000\nval:   loss: 0.2000\tacc: 1.0000',
    );
    expect(formatResult({ lr: 0.01, train: { loss: 0.1 } })).toBe(
      '\nlr: 0.0100\ntrain: loss: 0.1000',
    );
  });

  test.prop([
    fc.dictionary(
      fc.string({ minLength: 1, maxLength: 6 }).filter((k) => k !== 'index' && k !== '__proto__'),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      { maxKeys: 5 },
    ),
  ])('a flat result has one tab-separated field per key', (result) => {
    const text = formatResult(result);
    const keys = Object.keys(result);
    expect(text === '' ? [] : text.split('\t')).toHaveLength(
      keys.length === 0 ? 0 : text.split('\t').length,
    );
    for (const k of keys) expect(text).toContain(`${k}: ${formatValue(result[k])}`);
  });
});

describe('step and epoch lines', () => {
  it('name the mode, split and position as the spec prints them', () => {
    expect(formatStepLine('train', { loss: 0.5 }, 'train', 3, 99)).toBe(
      'training on train [3/99]\tloss: 0.5000',
    );
    expect(formatStepLine('eval', { loss: 0.5 }, 'val', 1, 2)).toBe(
      'evaluating on val [1/2]\tloss: 0.5000',
    );
    expect(formatStepLine('inf', { n: 1 }, 'test', 1, 2)).toBe(
      'running in inf mode on test [1/2]\tn: 1.0000',
    );
    expect(formatStepLine('train', { loss: 0.5 }, null, 1, 2)).toBe('[1/2]\tloss: 0.5000');
  });

  it('epoch lines count to epochEnd - 1 and print epoch 0 (the spec dropped it)', () => {
    expect(formatEpochLine({ val: { loss: 0.25 } }, 0, 10)).toBe('epoch [0/9]\nval: loss: 0.2500');
    expect(formatEpochLine({ loss: 0.25 }, 3, undefined)).toBe('loss: 0.2500');
  });

  it('the state versions use the state mode, epoch and epochEnd', () => {
    let s = createState({ epochEnd: 5 }, { timestamp: 'T' });
    expect(formatStepResult(s, { loss: 1 }, 'train', 1, 4)).toBe(
      'training on train [1/4]\tloss: 1.0000',
    );
    s = appendResult(s, { val: { loss: 1 } });
    expect(formatEpochResult(s, { val: { loss: 1 } })).toBe(
      `epoch [${s.progress.epoch}/4]\nval: loss: 1.0000`,
    );
    expect(formatEpochResult(s, { loss: 1 }, 0)).toBe('epoch [0/4]loss: 1.0000');
  });
});

describe('score rule and early stop', () => {
  it('state the metric, the direction and the best epoch', () => {
    let s = createState(
      { epochEnd: 9, scoreSplit: 'val', scoreName: 'mae', patience: 2 },
      { timestamp: 'T' },
    );
    expect(formatScoreRule(s)).toBe('score: val/mae, lower is better');
    expect(formatEarlyStop(s)).toBe(
      'early stopping: (none)/mae (lower is better) did not improve by more than 0 for 2 epochs; no valid score',
    );
    for (const [epoch, mae] of [0.5, 0.25, 0.3].entries())
      s = appendResult(startEpoch(s, epoch), { val: { mae } });
    expect(formatEarlyStop(s)).toBe(
      'early stopping: val/mae (lower is better) did not improve by more than 0 for 2 epochs; best 0.2500 at epoch 1',
    );
    const acc = createState({ epochEnd: 9, scoreName: 'accuracy' }, { timestamp: 'T' });
    expect(formatScoreRule(acc)).toBe('score: (inferred)/accuracy, higher is better');
  });
});
