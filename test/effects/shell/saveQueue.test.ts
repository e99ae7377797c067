/**
 * The background checkpoint queue: one write at a time, in order; a newer periodic save replaces
 * a waiting one; epoch-end saves are never dropped; a failure is reported once and kept.
 */
import { describe, expect, it } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { createSaveQueue, type SaveJob } from '../../../src/effects/shell/saveQueue.js';

/** A job that records when it runs and finishes when the test says so. */
const gated = (log: string[], name: string, kind: SaveJob<string>['kind'], fail = false) => {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const job: SaveJob<string> = {
    kind,
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
    const a = gated(log, 'p1', 'periodic');
    const b = gated(log, 'e1', 'epoch');
    const c = gated(log, 'p2', 'periodic');
    const d = gated(log, 'p3', 'periodic');
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
    const a = gated(log, 'e1', 'epoch', true);
    const b = gated(log, 'e2', 'epoch');
    q.push(a.job);
    q.push(b.job);
    a.open();
    b.open();
    expect(await q.idle()).toEqual(E.left('e1 failed'));
    expect(reported).toEqual(['e1 failed']);
    expect(log).toEqual(['start e1', 'end e1', 'start e2', 'end e2']);
  });

  test.prop([fc.array(fc.boolean(), { maxLength: 30 })])(
    'every epoch save runs, in order, and the last job queued always runs',
    async (kinds) => {
      const ran: number[] = [];
      const q = createSaveQueue<string>(() => undefined);
      kinds.forEach((isEpoch, i) => {
        q.push({
          kind: isEpoch ? 'epoch' : 'periodic',
          run: async () => {
            await tick();
            ran.push(i);
            return E.right(undefined);
          },
        });
      });
      await q.idle();
      const epochs = kinds.flatMap((e, i) => (e ? [i] : []));
      expect(ran.filter((i) => kinds[i])).toEqual(epochs);
      expect([...ran].sort((x, y) => x - y)).toEqual(ran);
      if (kinds.length > 0) expect(ran.at(-1)).toBe(kinds.length - 1);
    },
  );
});
