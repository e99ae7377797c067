/**
 * The spec's save_result: `results.json`, `latest.json` and `best.json` of a run, written
 * atomically in its run dir, and the epoch journal `results.jsonl` beside them (issue 13): each
 * epoch appends its new results as lines to `results.jsonl` instead of rewriting `results.json`
 * whole. `results.json` is rewritten whole at the first save of each process, at `close()` and
 * on `saveResult()`, and records in `journal.offset` how many bytes of `results.jsonl` it already
 * holds; {@link readResults} merges the two (a later line of the same index wins). The rename of
 * `results.json` is the only commit point: lines before its offset (a run rolled back by a
 * resume, a torn line of a crash) are never read again.
 */
import { dirname as folderOf, join, relative } from 'node:path';
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
import {
  fsyncDir,
  nodeFs,
  tryFs,
  writeAll,
  writeJsonAtomic,
  type DurableGroup,
  type FileSystem,
  type FsError,
} from '../storage/atomic.js';
import { CHECKPOINT_EXT } from '../checkpoint/checkpointStore.js';
import { parseJsonl, type JsonlCorrupt, type JsonlTornLine } from '../storage/jsonl.js';

/** Options of the result and config writers. */
export interface RunWriteOptions {
  /** Write even on a non-main rank (the spec's `main_process_only=False`). */
  readonly allProcesses?: boolean;
  /** `saveResult`: write `best.json` for the best result even when it is not the latest. */
  readonly bestAlways?: boolean;
  /** The file system ({@link nodeFs} when left out). */
  readonly fs?: FileSystem;
  /** Leave the folder fsync to this batch (the files of one epoch): see `durableGroup`. */
  readonly group?: DurableGroup;
}

/** The journal of `results.json`: the file of the lines appended since, and where they start. */
export interface ResultsJournal {
  readonly file: string;
  /** Bytes of the journal that `results.json` already holds: read the lines after them. */
  readonly offset: number;
}

/** The name of the epoch journal beside `results.json`. */
export const RESULTS_JOURNAL = 'results.jsonl';

/**
 * The rank gate of every run-level write, in one place: the main process writes, other ranks
 * write nothing (the spec's `main_process_only`) unless `allProcesses`. The writers below the
 * run level (atomic files, the checkpoint folder) always write.
 */
export const writesHere = (state: RunnerState, options: RunWriteOptions = {}): boolean =>
  options.allProcesses === true || isMainProcess(state);

const resultPaths = (state: RunnerState, options: RunWriteOptions) => {
  const folder = dir(state);
  const paths = [join(folder, 'results.json'), join(folder, 'latest.json')];
  const best =
    (isBest(state) && state.results.entries.size > 0) ||
    (options.bestAlways === true && state.best.position !== null);
  if (best) paths.push(join(folder, 'best.json'));
  return { folder, paths, best };
};

const headOf = (state: RunnerState) => ({
  name: name(state),
  id: id(state),
  timestamp: state.timestamp,
});

/** `latest.json` and (when `best`) `best.json`, each atomically. */
const writeAliases = async (
  state: RunnerState,
  folder: string,
  best: boolean,
  options: RunWriteOptions,
): Promise<E.Either<FsError, void>> => {
  const head = headOf(state);
  const bestPosition = state.best.position;
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
  const write = writeOptions(options);
  // Independent files of one batch: written concurrently (fewer round trips to the thread pool,
  // which a busy training loop serves one per batch), made durable by the batch's commit.
  const written = await Promise.all([
    writeJsonAtomic(join(folder, 'latest.json'), body('latest'), write),
    ...(best ? [writeJsonAtomic(join(folder, 'best.json'), body('best'), write)] : []),
  ]);
  return written.find(E.isLeft) ?? E.right(undefined);
};

const writeOptions = (options: RunWriteOptions) => ({
  indent: 4,
  ...(options.fs === undefined ? {} : { fs: options.fs }),
  ...(options.group === undefined ? {} : { group: options.group }),
});

/** The size of `file`, 0 when it does not exist. */
const sizeOf = async (fs: FileSystem, file: string): Promise<E.Either<FsError, number>> => {
  const st = await tryFs('stat', file, () => fs.stat(file));
  if (E.isRight(st)) return E.right(st.right.size);
  return st.left._tag === 'FileNotFound' ? E.right(0) : st;
};

/**
 * The spec's save_result: `results.json` ({name, id, timestamp, results: {index: result},
 * journal}), `latest.json` and, when the latest result is the best, `best.json`, each written
 * atomically in `dir(state)`. `results.json` is written whole, with `journal` saying where the
 * lines of `results.jsonl` that are newer than it start (its current size: none yet).
 * `latest.json` and `best.json` say what made them: `{name, id, timestamp, index, epoch, score:
 * {split, name, mode, value}, checkpoint, ...result}`, `checkpoint` being the checkpoint file they
 * match (relative to the run dir). Metric values are written as stored (NaN and the infinities as
 * strings). Returns the paths written (or, on a non-main rank, that would have been).
 */
export const saveResult = async (
  state: RunnerState,
  options: RunWriteOptions = {},
): Promise<E.Either<FsError, readonly string[]>> => {
  const { folder, paths, best } = resultPaths(state, options);
  if (!writesHere(state, options)) return E.right(paths);
  const offset = await sizeOf(options.fs ?? nodeFs, join(folder, RESULTS_JOURNAL));
  if (E.isLeft(offset)) return offset;
  const all: Record<string, Json> = {};
  for (const e of toArray(state.results.entries)) all[String(e.index)] = e.result;
  const journal: ResultsJournal = { file: RESULTS_JOURNAL, offset: offset.right };
  const r1 = await writeJsonAtomic(
    paths[0] ?? '',
    { ...headOf(state), results: all, journal: { ...journal } },
    writeOptions(options),
  );
  if (E.isLeft(r1)) return r1;
  const aliases = await writeAliases(state, folder, best, options);
  return E.isLeft(aliases) ? aliases : E.right(paths);
};

/**
 * The per-epoch save_result (issue 13): appends the results at positions `from` and after, one
 * line `{index, result}` each, to `results.jsonl` (fsynced; a failed append is cut back, so no
 * torn line is left), then writes `latest.json` and `best.json` as {@link saveResult} does.
 * `results.json` is not touched: the bytes written per epoch do not grow with the run. Call it
 * only after a {@link saveResult} of this process (the offset of `results.json` must be older
 * than the lines appended). Returns the paths written.
 */
export const appendResults = async (
  state: RunnerState,
  from: number,
  options: RunWriteOptions = {},
): Promise<E.Either<FsError, readonly string[]>> => {
  const { folder, best } = resultPaths(state, options);
  const journal = join(folder, RESULTS_JOURNAL);
  const paths = [
    journal,
    join(folder, 'latest.json'),
    ...(best ? [join(folder, 'best.json')] : []),
  ];
  if (!writesHere(state, options)) return E.right(paths);
  const lines = toArray(state.results.entries)
    .slice(from)
    .map((e) => `${JSON.stringify({ index: e.index, result: e.result })}\n`)
    .join('');
  const [appended, aliases] = await Promise.all([
    lines === ''
      ? Promise.resolve(E.right(undefined))
      : appendDurably(options.fs ?? nodeFs, journal, lines, options.group),
    writeAliases(state, folder, best, options),
  ]);
  if (E.isLeft(appended)) return appended;
  return E.isLeft(aliases) ? aliases : E.right(paths);
};

/** Appends `text` to `file` and fsyncs it; on failure cuts the file back to its size before. */
const appendDurably = async (
  fs: FileSystem,
  file: string,
  text: string,
  group: DurableGroup | undefined,
): Promise<E.Either<FsError, void>> => {
  const opened = await tryFs('append to', file, () => fs.open(file, 'a', 0o644));
  if (E.isLeft(opened)) return opened;
  const handle = opened.right;
  let before = -1;
  const written = await tryFs('append to', file, async () => {
    before = (await handle.stat()).size;
    await writeAll(handle, [Buffer.from(text, 'utf8')]);
    await handle.sync();
  });
  if (E.isLeft(written) && before >= 0) await handle.truncate(before).catch(() => undefined);
  await handle.close().catch(() => undefined);
  if (E.isLeft(written)) return written;
  // A new file's name must reach the disk too: its folder joins the batch.
  if (before === 0) {
    if (group !== undefined) group.touched(folderOf(file));
    else {
      const synced = await tryFs('fsync the folder of', file, () => fsyncDir(fs, folderOf(file)));
      if (E.isLeft(synced)) return synced;
    }
  }
  return E.right(undefined);
};

/** `results.json` or a line of `results.jsonl` is not what danling writes: the file, the field, the fix. */
export interface ResultsCorrupt {
  readonly _tag: 'ResultsCorrupt';
  readonly path: string;
  /** The field (`results`, `journal.offset`) or `line N`. */
  readonly field: string;
  readonly message: string;
}

const resultsCorrupt = (path: string, field: string, problem: string): ResultsCorrupt => ({
  _tag: 'ResultsCorrupt',
  path,
  field,
  message: `${path}: ${field} ${problem}`,
});

/** The results of a run dir as {@link readResults} merges them. */
export interface ReadResults {
  readonly name: Json;
  readonly id: Json;
  readonly timestamp: Json;
  /** `{ index: result }`, `results.json`'s and then the journal's (a later line wins). */
  readonly results: Readonly<Record<string, Json>>;
  /** A torn last line of the journal (a crash mid-append), skipped. */
  readonly warnings: readonly JsonlTornLine[];
}

const isRecord = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads the results of a run dir: `results.json`, then the lines of `results.jsonl` after its
 * `journal.offset` (a `results.json` without `journal`, as danling wrote before issue 13, is all
 * there is). A missing `results.json` is a `FileNotFound` naming it; a file or line that is not
 * what danling writes is a `ResultsCorrupt` naming the file, the field or line, and the fix.
 *
 * @example
 * ```ts
 * const read = await readResults('experiments/iris-mlp-.../20261202-183001');
 * if (E.isRight(read)) console.log(Object.keys(read.right.results)); // ['0', '1', ...]
 * ```
 */
export const readResults = async (
  runDir: string,
  options: Pick<RunWriteOptions, 'fs'> = {},
): Promise<E.Either<FsError | ResultsCorrupt | JsonlCorrupt, ReadResults>> => {
  const fs = options.fs ?? nodeFs;
  const file = join(runDir, 'results.json');
  const bytes = await tryFs('read', file, () => fs.readFile(file));
  if (E.isLeft(bytes)) return bytes;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes.right));
  } catch (cause) {
    return E.left(
      resultsCorrupt(
        file,
        'the file',
        `is not JSON (${cause instanceof Error ? cause.message : String(cause)}); restore it, or delete it and resume the run (autoResume rewrites it)`,
      ),
    );
  }
  if (!isRecord(doc) || !isRecord(doc['results']))
    return E.left(
      resultsCorrupt(
        file,
        'results',
        'is not an object of {index: result}; restore the file, or delete it and resume the run (autoResume rewrites it)',
      ),
    );
  const results: Record<string, Json> = { ...doc['results'] };
  const head = {
    name: doc['name'] ?? null,
    id: doc['id'] ?? null,
    timestamp: doc['timestamp'] ?? null,
  };
  const journal = doc['journal'];
  if (journal === undefined) return E.right({ ...head, results, warnings: [] });
  const offset = isRecord(journal) ? journal['offset'] : undefined;
  const jfile = isRecord(journal) ? journal['file'] : undefined;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    return E.left(
      resultsCorrupt(
        file,
        'journal.offset',
        `should be a byte count (an integer >= 0), got ${JSON.stringify(offset)}; remove journal from the file to read it alone`,
      ),
    );
  if (jfile !== RESULTS_JOURNAL)
    return E.left(
      resultsCorrupt(
        file,
        'journal.file',
        `should be ${JSON.stringify(RESULTS_JOURNAL)}, got ${JSON.stringify(jfile)}; remove journal from the file to read it alone`,
      ),
    );
  const lines = join(runDir, RESULTS_JOURNAL);
  const read = await tryFs('read', lines, () => fs.readFile(lines));
  if (E.isLeft(read)) {
    // Nothing appended since results.json was written.
    if (read.left._tag === 'FileNotFound' && offset === 0)
      return E.right({ ...head, results, warnings: [] });
    return E.left(
      read.left._tag === 'FileNotFound'
        ? resultsCorrupt(
            lines,
            'the file',
            `is missing but ${file} holds ${offset} bytes of it (journal.offset); restore it, or remove journal from ${file} to read it alone`,
          )
        : read.left,
    );
  }
  if (read.right.byteLength < offset)
    return E.left(
      resultsCorrupt(
        lines,
        'the file',
        `has ${read.right.byteLength} bytes but ${file} holds ${offset} of them (journal.offset): it was replaced or cut; restore it, or remove journal from ${file} to read it alone`,
      ),
    );
  const parsed = parseJsonl(read.right.subarray(offset), lines);
  if (E.isLeft(parsed)) return parsed;
  let line = 0;
  for (const value of parsed.right.values) {
    line++;
    const index = isRecord(value) ? value['index'] : undefined;
    if (
      !isRecord(value) ||
      typeof index !== 'number' ||
      !Number.isSafeInteger(index) ||
      !isRecord(value['result'])
    )
      return E.left(
        resultsCorrupt(
          lines,
          `line ${line} after byte ${offset}`,
          `is not {"index": N, "result": {...}}; restore the file, or cut it before that line and resume the run`,
        ),
      );
    results[String(index)] = value['result'];
  }
  return E.right({ ...head, results, warnings: parsed.right.warnings });
};
