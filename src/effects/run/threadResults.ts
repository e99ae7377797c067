/**
 * How a snapshot's results history crosses to the checkpoint writer thread: only the entries
 * the thread has not been sent yet. The history grows by one entry an epoch and every
 * checkpoint holds all of it, so sending it whole made each save's structured clone on the main
 * thread O(epochs) (0.35 ms at epoch 200 of an Iris run, against a 7 ms epoch). The main side
 * remembers, per run, the entries vector it last posted to this thread; a newer history that
 * starts with the same entry objects (grown by `appendResult`) sends the rest, any other (a
 * restore, a replaced entry, a new thread) sends everything. The thread keeps the history it
 * rebuilt, per run, and extends it. Functions over the two maps.
 */
import {
  appendEntry,
  restoreResults,
  type ResultEntry,
  type ResultsHistory,
} from '../../state/runner/results.js';
import { deepFreeze } from '../../state/Json.js';
import { sliceFrom, startsWith, type Vec } from '../../state/runner/vector.js';

/** The part of a history posted with a save: `run`'s entries from position `from` on. */
export interface ResultsDelta {
  /** The run it belongs to (its checkpoint folder: one runner writes there at a time). */
  readonly run: string;
  readonly from: number;
  readonly entries: readonly ResultEntry[];
}

/** Main side, one per thread: per run, the entries vector last posted. */
export type SentResults = Map<string, Vec<ResultEntry>>;

/** Main side: what to post of `history` for `run`. Call {@link markSent} once it is posted. */
export const resultsDelta = (
  sent: SentResults,
  run: string,
  history: ResultsHistory,
): ResultsDelta => {
  const before = sent.get(run);
  const from = before !== undefined && startsWith(history.entries, before) ? before.size : 0;
  return { run, from, entries: sliceFrom(history.entries, from) };
};

/** Main side: `history` of `run` is posted (the thread will hold every entry of it). */
export const markSent = (sent: SentResults, run: string, history: ResultsHistory): void => {
  sent.set(run, history.entries);
};

/** Thread side: per run, the history rebuilt so far. */
export type ReceivedResults = Map<string, ResultsHistory>;

/**
 * Thread side: the whole history of a delta, the entries received before extended by its own
 * (as `appendResult` extends it: O(new entries), not O(history)); `undefined` when they do not
 * line up (a delta from a position this thread never reached: the two sides are out of step,
 * which the ordered channel between them rules out).
 */
export const receiveResults = (
  received: ReceivedResults,
  delta: ResultsDelta,
): ResultsHistory | undefined => {
  if (delta.from === 0) {
    const history = restoreResults(delta.entries);
    received.set(delta.run, history);
    return history;
  }
  const have = received.get(delta.run);
  if (have === undefined || have.entries.size !== delta.from) return undefined;
  const history = delta.entries.reduce((h, e) => appendEntry(h, deepFreeze(e)), have);
  received.set(delta.run, history);
  return history;
};
