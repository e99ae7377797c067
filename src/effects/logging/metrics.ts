/**
 * Metric output at the edge: `metrics.jsonl` and `metrics.csv` in the run dir, TensorBoard when
 * enabled, and the spec's write_result / write_score fanning out to them. On resume, rows at or
 * past the resumed step are purged so curves never double back.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { flattenResult } from '../../state/flatten.js';
import { encodeMetric } from '../../state/runner/metric.js';
import { fsError, writeFileAtomic, type FsError } from '../storage/atomic.js';
import type { EventWriter } from './tensorboard.js';
import { warning, type Warning } from '../../state/warning.js';

/** One row of metrics.jsonl. */
export interface MetricsRow {
  readonly step: number;
  /** The epoch the row was written in (absent in rows of danling 0.1). */
  readonly epoch?: number;
  readonly split: string;
  readonly time: number;
  readonly metrics: Readonly<Record<string, number | string>>;
  /**
   * How many results the run's state held when the row was written (absent in rows of
   * earlier versions): a resume from a checkpoint with fewer drops the row, as one written
   * after that checkpoint at its own step (an epoch's result rows after a stop in evaluation).
   */
  readonly resultCount?: number;
}

/** The metric files of a run. */
export interface MetricsFiles {
  readonly jsonl: string;
  readonly csv: string;
  /** Appends a row to both files (the CSV is rebuilt when a new metric name appears). */
  write(row: MetricsRow): Promise<E.Either<FsError | MetricsCorrupt, void>>;
  /**
   * Removes every row with `step >= from` from both files, atomically, and with `resultCount`
   * every row written when the state held more results than that.
   */
  purgeFrom(
    from: number,
    resultCount?: number,
  ): Promise<E.Either<FsError | MetricsCorrupt, number>>;
  /** Torn last lines skipped while reading (each names the file and the line). */
  warnings(): readonly Warning<'MetricsTornLine'>[];
}

const csvCell = (v: number | string | undefined): string => {
  if (v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/**
 * Appends `text` to `file` whole or not at all: on a failed write (a full disk) the file is cut
 * back to its size before, so no torn row is left for the next row to run into. Returns the size
 * before the append (to undo it) or the error naming the file.
 */
const appendWhole = (file: string, text: string): E.Either<FsError, number> => {
  let fd: number;
  let before: number;
  try {
    fd = openSync(file, 'a');
    before = fstatSync(fd).size;
  } catch (cause) {
    return E.left(fsError('append to', file, cause));
  }
  try {
    const bytes = Buffer.from(text, 'utf8');
    let done = 0;
    while (done < bytes.byteLength) {
      const n = writeSync(fd, bytes, done, bytes.byteLength - done);
      if (n <= 0) throw new Error('write made no progress');
      done += n;
    }
    return E.right(before);
  } catch (cause) {
    try {
      ftruncateSync(fd, before);
    } catch {
      // best effort: the reader skips a torn last line
    }
    return E.left(fsError('append to', file, cause));
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing was lost: every byte was written or cut back
    }
  }
};

/** Cuts `file` back to `size` bytes (undoes an append), best effort. */
const cutBack = (file: string, size: number): void => {
  try {
    const fd = openSync(file, 'r+');
    try {
      ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
  } catch {
    // the row stays in the JSONL; the CSV is rebuilt from it at the next write
  }
};

/** A line of `metrics.jsonl` that is not a row (not a torn last line): the file and the line. */
export interface MetricsCorrupt {
  readonly _tag: 'MetricsCorrupt';
  readonly path: string;
  readonly line: number;
  readonly message: string;
}

/**
 * The rows of `metrics.jsonl`. Only a torn last line (no newline after it: a crash mid-append)
 * is skipped, with a warning; any other line that is not a row is an error naming the file and
 * the line, so a purge never rewrites the file without it.
 */
const readRows = (
  path: string,
): E.Either<
  FsError | MetricsCorrupt,
  { rows: MetricsRow[]; warnings: Warning<'MetricsTornLine'>[] }
> => {
  if (!existsSync(path)) return E.right({ rows: [], warnings: [] });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    return E.left(fsError('read', path, cause));
  }
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const rows: MetricsRow[] = [];
  const isRow = (v: unknown): v is MetricsRow =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as MetricsRow).step === 'number' &&
    typeof (v as MetricsRow).split === 'string' &&
    typeof (v as MetricsRow).metrics === 'object';
  for (const [i, l] of lines.entries()) {
    if (l.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      v = undefined;
    }
    if (!isRow(v)) {
      return E.left({
        _tag: 'MetricsCorrupt',
        path,
        line: i + 1,
        message: `${path}:${String(i + 1)}: not a metrics row {step, split, time, metrics}; fix or remove the line (the file is left as it is)`,
      });
    }
    rows.push(v);
  }
  const warnings: Warning<'MetricsTornLine'>[] = [];
  if (last.trim() !== '') {
    warnings.push(
      warning(
        'MetricsTornLine',
        `${path}:${String(lines.length + 1)}: skipped a torn last line (a crash mid-append)`,
      ),
    );
  }
  return E.right({ rows, warnings });
};

/** The CSV text of `rows`: columns step, split, time, then every metric name in order seen. */
export const metricsCsv = (rows: readonly MetricsRow[]): { text: string; columns: string[] } => {
  const columns: string[] = [];
  for (const r of rows)
    for (const k of Object.keys(r.metrics)) if (!columns.includes(k)) columns.push(k);
  const lines = [['step', 'epoch', 'split', 'time', ...columns].map(csvCell).join(',')];
  for (const r of rows) {
    lines.push(
      [r.step, r.epoch, r.split, r.time, ...columns.map((c) => r.metrics[c])]
        .map(csvCell)
        .join(','),
    );
  }
  return { text: `${lines.join('\n')}\n`, columns };
};

/**
 * Opens (or continues) `metrics.jsonl` and `metrics.csv` in `dir`. Rows are appended as they
 * come; when a row brings a metric name the CSV header lacks, the CSV is rebuilt from the JSONL
 * with the new column (earlier rows get an empty cell). NaN and the infinities are written as
 * `NaN`, `Infinity`, `-Infinity`.
 */
export const openMetricsFiles = (dir: string): MetricsFiles => {
  const jsonl = join(dir, 'metrics.jsonl');
  const csv = join(dir, 'metrics.csv');
  const warnings: Warning<'MetricsTornLine'>[] = [];
  const rowsOf = (): E.Either<FsError | MetricsCorrupt, MetricsRow[]> =>
    E.map((r: { rows: MetricsRow[]; warnings: Warning<'MetricsTornLine'>[] }) => {
      for (const w of r.warnings)
        if (!warnings.some((x) => x.message === w.message)) warnings.push(w);
      return r.rows;
    })(readRows(jsonl));
  // Read when first needed, so that opening never throws: a bad file is an error of write/purge.
  let columns: string[] | undefined;
  // Set when a CSV write failed after its JSONL row was undone: rebuild the CSV next time.
  let csvStale = false;
  const rebuild = async (rows: readonly MetricsRow[]): Promise<E.Either<FsError, void>> => {
    const built = metricsCsv(rows);
    columns = built.columns;
    const r = await writeFileAtomic(csv, built.text);
    return E.map(() => undefined)(r);
  };
  return {
    jsonl,
    csv,
    warnings: () => warnings,
    write: async (row) => {
      if (columns === undefined) {
        const rows = rowsOf();
        if (E.isLeft(rows)) return rows;
        columns = metricsCsv(rows.right).columns;
      }
      const known = columns;
      const appended = appendWhole(jsonl, `${JSON.stringify(row)}\n`);
      if (E.isLeft(appended)) return appended;
      // A row is in both files or in neither: a failed CSV write undoes the JSONL append.
      const undo = <A>(
        r: E.Either<FsError | MetricsCorrupt, A>,
      ): E.Either<FsError | MetricsCorrupt, void> => {
        if (E.isRight(r)) return E.right(undefined);
        cutBack(jsonl, appended.right);
        csvStale = true;
        return r;
      };
      const fresh = Object.keys(row.metrics).some((k) => !known.includes(k));
      if (fresh || csvStale || !existsSync(csv)) {
        const rows = rowsOf();
        if (E.isLeft(rows)) return undo(rows);
        const rebuilt = undo(await rebuild(rows.right));
        if (E.isRight(rebuilt)) csvStale = false;
        return rebuilt;
      }
      const cells = [row.step, row.epoch, row.split, row.time, ...known.map((c) => row.metrics[c])];
      return undo(appendWhole(csv, `${cells.map(csvCell).join(',')}\n`));
    },
    purgeFrom: async (from, resultCount) => {
      const read = rowsOf();
      if (E.isLeft(read)) return read;
      const rows = read.right;
      const kept = rows.filter(
        (r) =>
          r.step < from &&
          (resultCount === undefined ||
            r.resultCount === undefined ||
            r.resultCount <= resultCount),
      );
      if (kept.length === rows.length && existsSync(csv)) return E.right(0);
      const text = kept.map((r) => `${JSON.stringify(r)}\n`).join('');
      const w = await writeFileAtomic(jsonl, text);
      if (E.isLeft(w)) return w;
      const c = await rebuild(kept);
      return E.map(() => rows.length - kept.length)(c);
    },
  };
};

/** Where the spec's write_result and write_score send scores. */
export interface ResultWriters {
  readonly files?: MetricsFiles;
  /** TensorBoard, when `config.tensorboard` is set. */
  readonly events?: EventWriter;
  /** The clock in seconds (default `Date.now() / 1000`). */
  readonly now?: () => number;
}

/**
 * The spec's write_score: one scalar as `split/name` at `step` to TensorBoard (if open) and a
 * metrics row.
 */
export const writeScore = async (
  writers: ResultWriters,
  name: string,
  score: number,
  split: string,
  step: number,
): Promise<E.Either<FsError | MetricsCorrupt, void>> =>
  writeResult(writers, { [name]: score }, split, step);

/**
 * The spec's write_result: flattens `result` (nested names joined with `/`, sequences `name/i`,
 * mappings `name/key`) and writes each scalar as `split/name` at `step` to TensorBoard (if open),
 * and one row to the metric files. A file that cannot be written (a full disk) is a `Left` naming
 * it, never a throw: a metric row is then in neither metric file, and once the TensorBoard file
 * has failed every later call returns its first error (the metric files still get their rows).
 */
export const writeResult = async (
  writers: ResultWriters,
  result: unknown,
  split: string,
  step: number,
  epoch?: number,
  resultCount?: number,
): Promise<E.Either<FsError | MetricsCorrupt, void>> => {
  const now = (writers.now ?? (() => Date.now() / 1000))();
  const pairs = flattenResult(result);
  for (const [name, value] of pairs)
    writers.events?.addScalar(`${split}/${name}`, value, step, now);
  const eventsError = writers.events?.error();
  if (writers.files === undefined || pairs.length === 0)
    return eventsError === undefined ? E.right(undefined) : E.left(eventsError);
  const metrics = Object.fromEntries(pairs.map(([k, v]) => [k, encodeMetric(v)]));
  const written = await writers.files.write({
    step,
    ...(epoch === undefined ? {} : { epoch }),
    split,
    time: now,
    metrics,
    ...(resultCount === undefined ? {} : { resultCount }),
  });
  return E.isLeft(written) || eventsError === undefined ? written : E.left(eventsError);
};
