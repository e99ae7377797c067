/** `results.json` and its epoch journal `results.jsonl` (issue 13): writing and reading them. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { appendResult, startEpoch } from '../../../src/reducers/reducers.js';
import { createState, type RunnerState } from '../../../src/state/runner/RunnerState.js';
import { dir } from '../../../src/state/runner/selectors.js';
import { appendResults, readResults, saveResult } from '../../../src/effects/run/resultFiles.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-results-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const stateIn = (): RunnerState =>
  createState(
    { projectRoot: root, experimentName: 'e', runName: 'r', seed: 0 },
    { timestamp: '2026-12-02T00-00-00' },
  );
const epochs = (state: RunnerState, from: number, to: number): RunnerState => {
  let s = state;
  for (let e = from; e < to; e++)
    s = appendResult(startEpoch(s, e), { val: { loss: 1 / (e + 1) } });
  return s;
};
const ok = async <A>(p: Promise<E.Either<{ message: string }, A>>): Promise<A> => {
  const r = await p;
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};
const loss = (e: number) => ({ val: { loss: 1 / (e + 1) } });

describe('readResults', () => {
  it('merges results.json and the lines appended since, equal to one whole write', async () => {
    let s = epochs(stateIn(), 0, 2);
    await ok(saveResult(s));
    for (let e = 2; e < 5; e++) {
      const from = s.results.entries.size;
      s = epochs(s, e, e + 1);
      await ok(appendResults(s, from));
    }
    const merged = await ok(readResults(dir(s)));
    expect(merged.results).toEqual({ 0: loss(0), 1: loss(1), 2: loss(2), 3: loss(3), 4: loss(4) });
    expect(merged.name).toBe('e-r');
    const whole = JSON.parse(await readFile(join(dir(s), 'results.json'), 'utf8')) as object;
    expect(Object.keys((whole as { results: object }).results)).toEqual(['0', '1']);
    await ok(saveResult(s));
    expect((await ok(readResults(dir(s)))).results).toEqual(merged.results);
  });

  it('a whole write passes over older lines (a resume rolled back to an earlier epoch)', async () => {
    let s = epochs(stateIn(), 0, 1);
    await ok(saveResult(s));
    const from = s.results.entries.size;
    const ahead = epochs(s, 1, 3);
    await ok(appendResults(ahead, from));
    // Resumed from epoch 0's checkpoint: epochs 1 and 2 are redone with other results.
    await ok(saveResult(s));
    s = appendResult(startEpoch(s, 1), { val: { loss: 9 } });
    await ok(appendResults(s, from));
    expect((await ok(readResults(dir(s)))).results).toEqual({
      0: loss(0),
      1: { val: { loss: 9 } },
    });
  });

  it('reads a results.json without a journal (danling before issue 13) as it is', async () => {
    const run = join(root, 'old');
    await mkdir(run);
    const old = { name: 'n', id: 'i', timestamp: 't', results: { 0: loss(0) } };
    await writeFile(join(run, 'results.json'), JSON.stringify(old));
    // A stray journal is not read without a journal field.
    await writeFile(join(run, 'results.jsonl'), 'not json\n');
    expect(await readResults(run)).toEqual(E.right({ ...old, warnings: [] }));
  });

  it('skips a torn last line (a crash mid-append) with a warning', async () => {
    const s = epochs(stateIn(), 0, 1);
    await ok(saveResult(s));
    await appendFile(join(dir(s), 'results.jsonl'), '{"index":1,"res');
    const read = await ok(readResults(dir(s)));
    expect(read.results).toEqual({ 0: loss(0) });
    expect(read.warnings.map((w) => w._tag)).toEqual(['JsonlTornLine']);
  });

  const journalFile = (run: string) => join(run, 'results.jsonl');
  it.each([
    [
      'a line that is not a result',
      async (run: string) => {
        await appendFile(journalFile(run), '{"index":"one"}\n');
      },
      (run: string) =>
        `${journalFile(run)}: line 1 after byte 0 is not {"index": N, "result": {...}}; restore the file, or cut it before that line and resume the run`,
    ],
    [
      'a missing journal that results.json holds part of',
      async (run: string) => {
        const f = join(run, 'results.json');
        const doc = JSON.parse(await readFile(f, 'utf8')) as object;
        await writeFile(
          f,
          JSON.stringify({ ...doc, journal: { file: 'results.jsonl', offset: 7 } }),
        );
      },
      (run: string) =>
        `${journalFile(run)}: the file is missing but ${join(run, 'results.json')} holds 7 bytes of it (journal.offset); restore it, or remove journal from ${join(run, 'results.json')} to read it alone`,
    ],
    [
      'a bad offset',
      async (run: string) => {
        const f = join(run, 'results.json');
        const doc = JSON.parse(await readFile(f, 'utf8')) as object;
        await writeFile(
          f,
          JSON.stringify({ ...doc, journal: { file: 'results.jsonl', offset: -1 } }),
        );
      },
      (run: string) =>
        `${join(run, 'results.json')}: journal.offset should be a byte count (an integer >= 0), got -1; remove journal from the file to read it alone`,
    ],
  ])(
    '%s is a ResultsCorrupt naming the file, the field and the fix',
    async (_, damage, message) => {
      const s = epochs(stateIn(), 0, 1);
      await ok(saveResult(s));
      await damage(dir(s));
      const read = await readResults(dir(s));
      expect(E.isLeft(read) && read.left.message).toBe(message(dir(s)));
    },
  );
});
