/**
 * The background checkpoint queue: one write at a time, in order; a waiting save is dropped when
 * a newer one writes every file it would (latest wins), never otherwise; a failure is reported
 * once and kept.
 */
import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { covers, createSaveQueue, type SaveJob } from '../../../src/effects/shell/saveQueue.js';

/** What a save writes: a periodic one only `latest`; an epoch-end one the result files too. */
const PERIODIC = { files: ['latest'], results: false } as const;
const EPOCH = { files: ['latest'], results: true } as const;
type Kind = Pick<SaveJob<string>, 'files' | 'results'>;

/** A job that records when it runs and finishes when the test says so. */
const gated = (log: string[], name: string, kind: Kind, fail = false) => {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const job: SaveJob<string> = {
    ...kind,
    run: async () => {
      log.push(`start ${name}`);
      await gate;
      log.push(`end ${name}`);
      return fail ? E.left(`${name} failed`) : E.right(undefined);
    },
  };
  return {
    job,
    open: () => {
      open();
    },
  };
};

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('save queue', () => {
  it('runs one write at a time; a newer periodic save replaces a waiting one, epoch saves stay', async () => {
    const log: string[] = [];
    const q = createSaveQueue<string>(() => undefined);
    const a = gated(log, 'p1', PERIODIC);
    const b = gated(log, 'e1', EPOCH);
    const c = gated(log, 'p2', PERIODIC);
    const d = gated(log, 'p3', PERIODIC);
    for (const j of [a, b, c, d]) q.push(j.job);
    expect(q.size()).toBe(3); // p1 running; e1 and p3 waiting (p3 replaced p2)
    await tick();
    expect(log).toEqual(['start p1']);
    a.open();
    b.open();
    d.open();
    expect(await q.idle()).toEqual(E.right(undefined));
    expect(log).toEqual(['start p1', 'end p1', 'start e1', 'end e1', 'start p3', 'end p3']);
    expect(q.size()).toBe(0);
  });

  it('a failed write is reported once and kept; later writes still run', async () => {
    const log: string[] = [];
    const reported: string[] = [];
    const q = createSaveQueue<string>((e) => reported.push(e));
    const a = gated(log, 'e1', EPOCH, true);
    const b = gated(log, 'e2', EPOCH);
    q.push(a.job);
    q.push(b.job);
    a.open();
    b.open();
    expect(await q.idle()).toEqual(E.left('e1 failed'));
    expect(reported).toEqual(['e1 failed']);
    expect(log).toEqual(['start e1', 'end e1', 'start e2', 'end e2']);
  });

  it('latest wins: an epoch save is dropped by a newer one that writes all its files, never one with a file of its own', async () => {
    const log: string[] = [];
    const q = createSaveQueue<string>(() => undefined);
    const best = { files: ['latest', 'best'], results: true };
    const jobs = [
      gated(log, 'e0', EPOCH), // running while the others are queued
      gated(log, 'e1 best', best), // dropped by e2: a newer best writes the same files
      gated(log, 'e2 best', best), // kept: no later save makes best
      gated(log, 'e3', EPOCH), // dropped by e4
      gated(log, 'e4 epoch-4', { files: ['latest', 'epoch-4'], results: true }), // its own file
      gated(log, 'p5', PERIODIC), // dropped by e6
      gated(log, 'e6', EPOCH), // the last: runs
    ];
    for (const j of jobs) q.push(j.job);
    for (const j of jobs) j.open();
    expect(await q.idle()).toEqual(E.right(undefined));
    expect(log.filter((l) => l.startsWith('start')).map((l) => l.slice(6))).toEqual([
      'e0',
      'e2 best',
      'e4 epoch-4',
      'e6',
    ]);
  });

  it('a periodic save never drops an epoch save (it writes no result files)', () => {
    expect(
      covers(
        { ...PERIODIC, run: () => Promise.resolve(E.right(0)) },
        { ...EPOCH, run: () => Promise.resolve(E.right(0)) },
      ),
    ).toBe(false);
    expect(
      covers(
        { ...EPOCH, run: () => Promise.resolve(E.right(0)) },
        { ...PERIODIC, run: () => Promise.resolve(E.right(0)) },
      ),
    ).toBe(true);
  });

  const jobArb = fc.record({
    best: fc.boolean(),
    own: fc.boolean(), // an epoch-N or keepBest file of its own
    results: fc.boolean(),
  });
  test.prop([fc.array(jobArb, { maxLength: 30 })])(
    'what runs: the first, then each save no later one covers, in order; every dropped save is covered by a later one that ran',
    async (specs) => {
      const ran: number[] = [];
      const q = createSaveQueue<string>(() => undefined);
      const jobs: SaveJob<string>[] = specs.map((spec, i) => ({
        files: ['latest', ...(spec.best ? ['best'] : []), ...(spec.own ? [`epoch-${i}`] : [])],
        results: spec.results,
        run: async () => {
          await tick();
          ran.push(i);
          return E.right(undefined);
        },
      }));
      for (const j of jobs) q.push(j);
      await q.idle();
      const expected = jobs.flatMap((j, i) =>
        i === 0 || !jobs.slice(i + 1).some((later) => covers(later, j)) ? [i] : [],
      );
      expect(ran).toEqual(expected);
      jobs.forEach((j, i) => {
        if (!ran.includes(i)) {
          expect(ran.some((r) => r > i && covers(jobs[r] as SaveJob<string>, j))).toBe(true);
        }
      });
      if (jobs.length > 0) expect(ran.at(-1)).toBe(jobs.length - 1);
    },
  );
});
