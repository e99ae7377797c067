/** The examples a new user copies run as documented (real child processes). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = new URL('../..', import.meta.url).pathname;
const tsx = (args: string[]): string =>
  execFileSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: repo,
    encoding: 'utf8',
    stdio: 'pipe',
  });

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-examples-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('examples', () => {
  it('bareLoop fits the line with reducers alone', () => {
    const out = tsx(['examples/bareLoop.ts', join(root, 'bare')]);
    const [, w, b] = /w = (-?[\d.]+), b = (-?[\d.]+)/.exec(out) ?? [];
    expect(Math.abs(Number(w) - 3)).toBeLessThan(0.5);
    expect(Math.abs(Number(b) + 1)).toBeLessThan(0.2);
    expect(out).toContain('epoch [4/4]');
  });

  it('replay rebuilds epochs 3 and 4 of a demo run from its history.jsonl', () => {
    const project = join(root, 'iris');
    tsx(['examples/iris.ts', '--projectRoot', project, '--epochEnd', '6']);
    const [run] = readdirSync(project);
    const [stamp] = readdirSync(join(project, run ?? ''));
    const out = tsx([
      'examples/replay.ts',
      join(project, run ?? '', stamp ?? '', 'history.jsonl'),
      '3',
      '4',
    ]);
    expect(out).toContain('epoch [3/5]');
    expect(out).toContain('epoch [4/5]');
    expect(out).toContain('results added at indices: 4');
    // Metric rows: per-step train values, epoch averages and the learning rate never share a tag
    // and a step (they did: train/loss had two points at each epoch's last step).
    const rows = readFileSync(join(project, run ?? '', stamp ?? '', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; epoch: number; split: string; metrics: object });
    expect(rows.every((r) => Number.isInteger(r.epoch))).toBe(true);
    const tags = rows.flatMap((r) =>
      Object.keys(r.metrics).map((k) => `${r.split}/${k}@${r.step}`),
    );
    expect(new Set(tags).size).toBe(tags.length);
    expect(rows.some((r) => r.split === 'train/epoch' && 'loss' in r.metrics)).toBe(true);
    expect(rows.some((r) => r.split === 'train' && 'lr' in r.metrics)).toBe(true);
  });

  it('the demo console: compact text lines, no run/id/rank fields; logFormat json keeps JSON', () => {
    const out = tsx([
      'examples/iris.ts',
      '--projectRoot',
      join(root, 'console'),
      '--epochEnd',
      '3',
    ]);
    const lines = out.trimEnd().split('\n');
    expect(lines.some((l) => l.startsWith('{'))).toBe(false);
    expect(out).not.toMatch(/\b(rank|run|id):/);
    expect(lines.filter((l) => /^run started in \S+$/.test(l))).toHaveLength(1);
    expect(lines).toContain('score: val/accuracy, higher is better');
    // The epoch block once per epoch, in the spec's format.
    expect(lines.filter((l) => /^epoch \[\d\/2\]$/.test(l))).toEqual([
      'epoch [0/2]',
      'epoch [1/2]',
      'epoch [2/2]',
    ]);
    // A short split (8 batches) logs only its last step by default: one step line an epoch.
    const steps = lines.filter((l) => l.startsWith('training on train ['));
    expect(steps).toHaveLength(3);
    for (const l of steps) expect(l).toMatch(/^training on train \[8\/8\]\tloss: /);
    expect(lines.filter((l) => /^best result: epoch \d$/.test(l))).toHaveLength(1);
    const json = tsx([
      'examples/iris.ts',
      '--projectRoot',
      join(root, 'console-json'),
      '--epochEnd',
      '1',
      '--logFormat',
      'json',
    ]);
    const records = json
      .trimEnd()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { run: string; rank: number; msg: string });
    expect(records.length).toBeGreaterThan(5);
    expect(records[0]).toMatchObject({ run: 'iris-mlp', rank: 0 });
  });

  it('mnist trains a CNN with a warmed-up cosine schedule, scores an epoch metric, tests and predicts', () => {
    const project = join(root, 'mnist');
    // A small subset: 160 training digits (5 steps an epoch), a step line (and lr) every step.
    const out = tsx([
      'examples/mnist.ts',
      '--projectRoot',
      project,
      '--data.train',
      '160',
      '--data.val',
      '100',
      '--data.test',
      '100',
      '--epochEnd',
      '2',
      '--logInterval',
      '1',
      '--schedule.warmupSteps',
      '3',
    ]);
    const lines = out.trimEnd().split('\n');
    expect(lines).toContain('score: val/accuracy, higher is better');
    const [run] = readdirSync(project);
    const [stamp] = readdirSync(join(project, run ?? ''));
    const dir = join(project, run ?? '', stamp ?? '');
    // Two epochs, each with the epoch metrics of the val split; the best is scored by accuracy.
    const { results } = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as {
      results: Record<string, { val: Record<string, number> }>;
    };
    expect(Object.keys(results)).toEqual(['0', '1']);
    for (const r of Object.values(results)) {
      expect(Object.keys(r.val).sort()).toEqual(['accuracy', 'f1', 'loss']);
      expect(r.val['accuracy']).toBeGreaterThan(0.1); // better than chance after 5 steps
    }
    const best = JSON.parse(readFileSync(join(dir, 'best.json'), 'utf8')) as {
      index: number;
      score: { split: string; name: string; mode: string; value: number };
    };
    expect(best.score).toMatchObject({ split: 'val', name: 'accuracy', mode: 'max' });
    expect(best.score.value).toBe(
      Math.max(...Object.values(results).map((r) => r.val['accuracy'] ?? 0)),
    );
    // The hook: one line an epoch naming the val digit recognised worst.
    expect(lines.filter((l) => /^worst digit: \d \(recall [\d.]+\)/.test(l))).toHaveLength(2);
    // restoreBest, then the test split and ten predictions.
    expect(lines.some((l) => l.startsWith(`restored the best weights (epoch ${best.index})`))).toBe(
      true,
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^test \(100 digits\): loss [\d.]+, accuracy [\d.]+, f1 [\d.]+$/),
    );
    const predictions = lines.filter((l) =>
      /^ {2}test digit \d: label (\d), predicted \d \(p [\d.]+\)/.test(l),
    );
    expect(predictions).toHaveLength(10);
    // The fixed order gives digits 0..9 in turn, so the first ten test labels are 0..9.
    expect(predictions.map((l) => /label (\d)/.exec(l)?.[1])).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
    ]);
    // The rate logged at each of the 10 steps: up during the 3 warm-up steps, to the base rate
    // at step 4, then down along the cosine.
    const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { step: number; split: string; metrics: Record<string, number> },
      );
    const lr = rows
      .filter((r) => r.split === 'train' && 'lr' in r.metrics)
      .sort((a, b) => a.step - b.step)
      .map((r) => r.metrics['lr'] ?? Number.NaN);
    expect(lr).toHaveLength(10);
    for (let i = 1; i < lr.length; i++) {
      if (i <= 3) expect(lr[i]).toBeGreaterThan(lr[i - 1] ?? 0);
      else expect(lr[i]).toBeLessThan(lr[i - 1] ?? 0);
    }
    expect(lr[3]).toBeCloseTo(0.01, 10);
    // evaluate wrote the test split's values to the metric files.
    expect(rows.some((r) => r.split === 'test' && 'accuracy' in r.metrics)).toBe(true);
  });

  it('in a pseudo-terminal the progress bar draws on one line with the epoch, and is cleared', () => {
    // `script` gives the demo a real pty (stdout and stderr are TTYs there).
    const out = execFileSync(
      'script',
      [
        '-qfec',
        `${process.execPath} --import tsx examples/iris.ts --projectRoot ${join(root, 'tty')} --epochEnd 2`,
        '/dev/null',
      ],
      { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Split at the erase-line sequence (a control byte cannot sit in a regex literal here).
    const parts = out.split('\r\u001b[2K').slice(1);
    const draws = parts.filter((p) =>
      /^epoch [01]\/1 train \[[=> ]{20}\] \d\/8 [\d.]+ it\/s/.test(p),
    );
    expect(draws.length).toBeGreaterThan(1);
    expect(draws.some((t) => t.startsWith('epoch 1/1 train [='))).toBe(true);
    // Step lines are not mixed into a bar: each starts on a cleared line.
    expect(parts.some((p) => /^training on train \[\d\/8\]\tloss: /.test(p))).toBe(true);
  });
});
