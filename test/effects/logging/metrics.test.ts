import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as E from 'fp-ts/lib/Either.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMetricsFiles, writeResult, writeScore } from '../../../src/effects/logging/metrics.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-metrics-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('metric files', () => {
  it('writes jsonl and csv rows, adds a column when a metric appears, and purges on resume', async () => {
    const files = openMetricsFiles(root);
    const writers = { files, now: () => 100 };
    await writeResult(writers, { loss: 0.5 }, 'train', 1, 0);
    await writeResult(writers, { loss: 0.25, accuracy: 0.75, per: [1, 2] }, 'val', 2, 0);
    await writeScore(writers, 'loss', Number.NaN, 'train', 3);
    expect(readFileSync(files.csv, 'utf8')).toBe(
      [
        'step,epoch,split,time,loss,accuracy,per/0,per/1',
        '1,0,train,100,0.5,,,',
        '2,0,val,100,0.25,0.75,1,2',
        '3,,train,100,NaN,,,',
        '',
      ].join('\n'),
    );
    expect(
      readFileSync(files.jsonl, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step: number })
        .map((r) => r.step),
    ).toEqual([1, 2, 3]);

    // A resumed run at step 2 drops what the killed run wrote at steps >= 2.
    const reopened = openMetricsFiles(root);
    expect(await reopened.purgeFrom(2)).toEqual({ _tag: 'Right', right: 2 });
    await writeResult({ files: reopened, now: () => 200 }, { loss: 0.4 }, 'train', 2);
    expect(readFileSync(files.csv, 'utf8')).toBe(
      ['step,epoch,split,time,loss', '1,0,train,100,0.5', '2,,train,200,0.4', ''].join('\n'),
    );
  });
});

describe('reading metrics.jsonl', () => {
  it('a bad line that is not the torn last one is an error naming the file and line; nothing is rewritten', async () => {
    const file = join(root, 'metrics.jsonl');
    const good = (step: number) =>
      JSON.stringify({ step, split: 'train', time: 1, metrics: { loss: 1 } });
    const text = `${good(1)}\nnot json\n${good(2)}\n`;
    await writeFile(file, text);
    const files = openMetricsFiles(root);
    const purged = await files.purgeFrom(2);
    expect(E.isLeft(purged) && purged.left.message).toBe(
      `${file}:2: not a metrics row {step, split, time, metrics}; fix or remove the line (the file is left as it is)`,
    );
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('a torn last line is skipped with a warning', async () => {
    const file = join(root, 'metrics.jsonl');
    const good = (step: number) =>
      JSON.stringify({ step, split: 'train', time: 1, metrics: { loss: 1 } });
    await writeFile(file, `${good(1)}\n${good(2)}\n{"step":3,"spl`);
    const files = openMetricsFiles(root);
    const purged = await files.purgeFrom(2);
    expect(purged).toEqual(E.right(1));
    expect(files.warnings()).toEqual([
      {
        _tag: 'MetricsTornLine',
        message: `${file}:3: skipped a torn last line (a crash mid-append)`,
      },
    ]);
    expect(await readFile(file, 'utf8')).toBe(`${good(1)}\n`);
  });
});
