import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
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
    await writeResult(writers, { loss: 0.5 }, 'train', 1);
    await writeResult(writers, { loss: 0.25, accuracy: 0.75, per: [1, 2] }, 'val', 2);
    await writeScore(writers, 'loss', Number.NaN, 'train', 3);
    expect(readFileSync(files.csv, 'utf8')).toBe(
      [
        'step,split,time,loss,accuracy,per/0,per/1',
        '1,train,100,0.5,,,',
        '2,val,100,0.25,0.75,1,2',
        '3,train,100,NaN,,,',
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
      ['step,split,time,loss', '1,train,100,0.5', '2,train,200,0.4', ''].join('\n'),
    );
  });
});
