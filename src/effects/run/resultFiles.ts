/**
 * The spec's save_result: `results.json`, `latest.json` and `best.json` of a run, written
 * atomically in its run dir.
 */
import { join, relative } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import type { Json } from '../../state/Json.js';
import { type RunnerState } from '../../state/runner/RunnerState.js';
import {
  checkpointDir,
  dir,
  id,
  isBest,
  isMainProcess,
  name,
  scoreMode,
} from '../../state/runner/selectors.js';
import { latestEntry, scoreOf } from '../../state/runner/results.js';
import { encodeMetric } from '../../state/runner/metric.js';
import { get, toArray } from '../../state/runner/vector.js';
import { writeJsonAtomic, type FsError } from '../storage/atomic.js';
import { CHECKPOINT_EXT } from '../checkpoint/checkpointStore.js';

/** Options of the result and config writers. */
export interface RunWriteOptions {
  /** Write even on a non-main rank (the spec's `main_process_only=False`). */
  readonly allProcesses?: boolean;
  /** `saveResult`: write `best.json` for the best result even when it is not the latest. */
  readonly bestAlways?: boolean;
}

/**
 * The rank gate of every run-level write, in one place: the main process writes, other ranks
 * write nothing (the spec's `main_process_only`) unless `allProcesses`. The writers below the
 * run level (atomic files, the checkpoint folder) always write.
 */
export const writesHere = (state: RunnerState, options: RunWriteOptions = {}): boolean =>
  options.allProcesses === true || isMainProcess(state);

/**
 * The spec's save_result: `results.json` ({name, id, timestamp, results: {index: result}}),
 * `latest.json` and, when the latest result is the best, `best.json`, each written atomically in
 * `dir(state)`. `latest.json` and `best.json` say what made them: `{name, id, timestamp, index,
 * epoch, score: {split, name, mode, value}, checkpoint, ...result}`, `checkpoint` being the
 * checkpoint file they match (relative to the run dir). Metric values are written as stored
 * (NaN and the infinities as strings). Returns the paths written (or, on a non-main rank, that
 * would have been).
 */
export const saveResult = async (
  state: RunnerState,
  options: RunWriteOptions = {},
): Promise<E.Either<FsError, readonly string[]>> => {
  const folder = dir(state);
  const paths = [join(folder, 'results.json'), join(folder, 'latest.json')];
  const bestPosition = state.best.position;
  const best =
    (isBest(state) && state.results.entries.size > 0) ||
    (options.bestAlways === true && bestPosition !== null);
  if (best) paths.push(join(folder, 'best.json'));
  if (!writesHere(state, options)) return E.right(paths);
  const head = { name: name(state), id: id(state), timestamp: state.timestamp };
  const all: Record<string, Json> = {};
  for (const e of toArray(state.results.entries)) all[String(e.index)] = e.result;
  const r1 = await writeJsonAtomic(paths[0] ?? '', { ...head, results: all }, { indent: 4 });
  if (E.isLeft(r1)) return r1;
  const ckptDir = relative(folder, checkpointDir(state)) || '.';
  const body = (alias: 'latest' | 'best'): Json => {
    const stored =
      alias === 'best' && bestPosition !== null
        ? get(state.results.entries, bestPosition)
        : latestEntry(state.results);
    return stored === undefined
      ? head
      : {
          ...head,
          ...stored.result,
          index: stored.index,
          epoch: stored.index,
          score: {
            split: state.best.split,
            name: state.config.scoreName,
            mode: scoreMode(state),
            value: encodeMetric(
              scoreOf(stored.result, state.best.split, state.config.scoreName) ?? Number.NaN,
            ),
          },
          checkpoint: join(ckptDir, `${alias}${CHECKPOINT_EXT}`),
        };
  };
  const r2 = await writeJsonAtomic(paths[1] ?? '', body('latest'), { indent: 4 });
  if (E.isLeft(r2)) return r2;
  if (best) {
    const r3 = await writeJsonAtomic(paths[2] ?? '', body('best'), { indent: 4 });
    if (E.isLeft(r3)) return r3;
  }
  return E.right(paths);
};
