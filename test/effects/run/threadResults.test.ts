/**
 * The writer thread's results transport (threadResults.ts), as a property: over random
 * sequences of saves of two runs whose histories grow, are restored (the same values as other
 * objects) or have an entry replaced, with failed saves and new threads between, the history
 * the thread rebuilds is always the one the main thread saved (its entries, and the index to
 * position map as a restore computes it), and a history grown by appends
 * since the last save of its run is sent as just the appended entries.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  markSent,
  receiveResults,
  resultsDelta,
  type ReceivedResults,
  type SentResults,
} from '../../../src/effects/run/threadResults.js';
import {
  computePositions,
  emptyResults,
  restoreResults,
  type ResultEntry,
  type ResultsHistory,
} from '../../../src/state/runner/results.js';
import { push, set, toArray } from '../../../src/state/runner/vector.js';

type Op =
  | { readonly kind: 'append' | 'restore' | 'save' | 'failedSave' | 'newThread' }
  | { readonly kind: 'replace'; readonly at: number }
  | { readonly kind: 'switch' };

const op = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Op>({ kind: 'append' }) },
  { weight: 4, arbitrary: fc.constant<Op>({ kind: 'save' }) },
  fc.constant<Op>({ kind: 'restore' }),
  fc.constant<Op>({ kind: 'failedSave' }),
  fc.constant<Op>({ kind: 'newThread' }),
  fc.constant<Op>({ kind: 'switch' }),
  fc.nat({ max: 100 }).map((at): Op => ({ kind: 'replace', at })),
);

describe('the results sent to the writer thread', () => {
  it('rebuilds the saved history in the thread, and sends only what was appended since', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        let sent: SentResults = new Map();
        let received: ReceivedResults = new Map();
        const histories: Record<string, ResultsHistory> = { a: emptyResults(), b: emptyResults() };
        // Per run: entries appended since its last successful save, or null when anything else
        // changed the history (or the thread) since.
        const appended: Record<string, number | null> = { a: null, b: null };
        let run = 'a';
        let n = 0;
        const entry = (): ResultEntry => ({ index: n, result: { val: { loss: n++ } } });
        for (const o of ops) {
          const h = histories[run] ?? emptyResults();
          if (o.kind === 'append') {
            histories[run] = { ...h, entries: push(h.entries, entry()) };
            const k = appended[run];
            appended[run] = k === null || k === undefined ? null : k + 1;
          } else if (o.kind === 'restore') {
            histories[run] = restoreResults(toArray(h.entries).map((e) => ({ ...e })));
            appended[run] = null;
          } else if (o.kind === 'replace' && h.entries.size > 0) {
            histories[run] = { ...h, entries: set(h.entries, o.at % h.entries.size, entry()) };
            appended[run] = null;
          } else if (o.kind === 'switch') {
            run = run === 'a' ? 'b' : 'a';
          } else if (o.kind === 'newThread') {
            sent = new Map();
            received = new Map();
            appended['a'] = null;
            appended['b'] = null;
          } else if (o.kind === 'failedSave') {
            // Posted and received, then failed in the thread: the main side forgets the run.
            const delta = resultsDelta(sent, run, h);
            expect(receiveResults(received, delta)).toBeDefined();
            sent.delete(run);
            appended[run] = null;
          } else if (o.kind === 'save') {
            const delta = resultsDelta(sent, run, h);
            const k = appended[run];
            if (k !== null && k !== undefined) expect(delta.entries).toHaveLength(k);
            const rebuilt = receiveResults(received, delta);
            expect(rebuilt).toBeDefined();
            expect(toArray(rebuilt?.entries ?? emptyResults().entries)).toEqual(toArray(h.entries));
            expect(rebuilt?.positions).toEqual(computePositions(h));
            markSent(sent, run, h);
            appended[run] = 0;
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a delta from a position the thread never reached is refused', () => {
    const received: ReceivedResults = new Map();
    const delta = { run: 'a', from: 3, entries: [] };
    expect(receiveResults(received, delta)).toBeUndefined();
    expect(receiveResults(received, { run: 'a', from: 0, entries: [] })).toEqual(emptyResults());
  });
});
