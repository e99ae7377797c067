/**
 * The data a split can be given as, and how the loop reads it one batch at a time: in-memory
 * tensors (shuffled by the loop from the state's random stream), a `tf.data.Dataset`, an
 * iterable or async iterable of batches, or a function making the batches of each pass from the
 * pass's seed (the form whose order, and so whose resume, is exact).
 */
import type * as TF from '@tensorflow/tfjs';

/** One tensor, or several (a model with several inputs or outputs). */
export type Tensors = TF.Tensor | readonly TF.Tensor[];

/** One split's data in memory: inputs and targets with the samples along the first axis. */
export interface SplitData {
  readonly x: TF.Tensor;
  readonly y: TF.Tensor;
}

/** A split in memory for a model with several inputs or outputs (with `task.step`). */
export interface TensorsSplit {
  readonly x: Tensors;
  readonly y: Tensors;
}

/** One batch: its inputs and targets (`{ xs, ys }`, the `model.fitDataset` form, is read too). */
export interface Batch {
  readonly x: Tensors;
  readonly y: Tensors;
}

/** What a stream of batches may be: a `tf.data.Dataset`, an async iterable or an iterable. */
export type BatchStream =
  | TF.data.Dataset<TF.TensorContainer>
  | AsyncIterable<Batch | { readonly xs: Tensors; readonly ys: Tensors }>
  | Iterable<Batch | { readonly xs: Tensors; readonly ys: Tensors }>;

/** One pass over a split: which epoch, and the seed its order should derive from. */
export interface Pass {
  readonly epoch: number;
  /**
   * For the training split, drawn from the state's random stream at the start of the epoch
   * (the same on a resume inside it); 0 for the evaluated splits.
   */
  readonly seed: number;
}

/**
 * Batches made for each pass (`batches(pass)`): the exact form. Make the order a function of
 * `pass.seed` (`dataset.shuffle(buffer, String(pass.seed))`, or your own shuffle of `seed`) and
 * a resume inside an epoch gets the same batches; the loop skips the samples already trained.
 */
export interface BatchSource {
  readonly batches: (pass: Pass) => BatchStream;
  /** Samples in one pass, when known (progress, the split's size, `cosine` / `linear` without stepEnd). */
  readonly size?: number;
  /** Samples per batch, for the number of batches of `size` (default `dataloader.batchSize`). */
  readonly batchSize?: number;
}

/**
 * A split: tensors in memory, a {@link BatchSource}, or a bare stream (a `tf.data.Dataset`, an
 * array or another iterable of batches). A bare stream is read as it is, every pass: a resume
 * inside an epoch is refused unless it is an array (danling cannot know that a dataset or
 * iterator gives the same batches again).
 */
export type SplitInput = SplitData | TensorsSplit | BatchSource | BatchStream;

/** A split as the loop reads it. */
export type Source =
  | { readonly kind: 'tensors'; readonly x: Tensors; readonly y: Tensors; readonly size: number }
  | {
      readonly kind: 'stream';
      readonly open: (pass: Pass) => BatchStream;
      readonly size: number | undefined;
      readonly batchSize: number | undefined;
      /** Whether each pass is made from its seed (a function), or the same for every pass. */
      readonly repeatable: 'seeded' | 'array' | 'unknown';
    };

const isTensorLike = (t: unknown): t is TF.Tensor =>
  typeof t === 'object' && t !== null && 'shape' in t && 'dtype' in t && 'dispose' in t;

const isTensors = (t: unknown): t is Tensors =>
  isTensorLike(t) || (Array.isArray(t) && t.length > 0 && t.every(isTensorLike));

/** Samples along the first axis (of the first tensor). */
export const rowsOf = (t: Tensors): number => {
  const first = isTensorLike(t) ? t : t[0];
  return first?.shape.at(0) ?? 0;
};

/** Disposes one tensor or several. */
export const disposeAll = (t: Tensors): void => {
  if (isTensorLike(t)) t.dispose();
  else for (const x of t) x.dispose();
};

/** Samples in an array of batches, when each is one. */
const arraySize = (batches: readonly unknown[]): number | undefined => {
  let n = 0;
  for (const b of batches) {
    const x = (b as Partial<Batch>).x ?? (b as { xs?: Tensors }).xs;
    if (!isTensors(x)) return undefined;
    n += rowsOf(x);
  }
  return n;
};

/** How `input` will be read, or why it cannot be. */
export const sourceOf = (name: string, input: SplitInput): Source | string => {
  const o = input as Partial<TensorsSplit & BatchSource>;
  if (isTensors(o.x) && isTensors(o.y)) {
    return { kind: 'tensors', x: o.x, y: o.y, size: rowsOf(o.x) };
  }
  if (typeof o.batches === 'function') {
    const batches = o.batches;
    return {
      kind: 'stream',
      open: (pass) => batches(pass),
      size: o.size,
      batchSize: o.batchSize,
      repeatable: 'seeded',
    };
  }
  const stream = input as BatchStream;
  const iterable =
    typeof (stream as Partial<TF.data.Dataset<TF.TensorContainer>>).iterator === 'function' ||
    typeof (stream as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function' ||
    typeof (stream as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function';
  if (!iterable) {
    return `splits.${name}: expected { x, y } tensors, { batches: (pass) => ... }, a tf.data.Dataset or an iterable of { x, y } batches`;
  }
  return {
    kind: 'stream',
    open: () => stream,
    size: Array.isArray(stream) ? arraySize(stream) : undefined,
    batchSize: undefined,
    repeatable: Array.isArray(stream) ? 'array' : 'unknown',
  };
};

/** Reads batches one at a time; `next` is synchronous for in-memory data and arrays. */
export interface BatchReader {
  next(): Batch | undefined | Promise<Batch | undefined>;
  /** Done with a batch: disposes it, unless it belongs to the caller (an array's, used again). */
  release(batch: Batch): void;
  /** Ends the pass early (an interrupted epoch): releases the stream. */
  close(): void;
}

const toBatch = (name: string, element: unknown): Batch => {
  const e = element as Partial<Batch & { xs: Tensors; ys: Tensors }>;
  const x = e.x ?? e.xs;
  const y = e.y ?? e.ys;
  if (!isTensors(x) || !isTensors(y)) {
    throw new TypeError(
      `splits.${name}: a batch must be { x, y } or { xs, ys } tensors, got ${element === null ? 'null' : typeof element === 'object' ? `{ ${Object.keys(element).join(', ')} }` : typeof element}`,
    );
  }
  return { x, y };
};

const dispose = (batch: Batch): void => {
  disposeAll(batch.x);
  disposeAll(batch.y);
};

/**
 * A reader over one pass of a stream. The batches of a dataset or an iterator belong to the
 * loop (disposed after use); those of an array to the caller (the next pass reads them again).
 */
export const streamReader = (name: string, stream: BatchStream): BatchReader => {
  const release = Array.isArray(stream) ? () => undefined : dispose;
  const ds = stream as Partial<TF.data.Dataset<TF.TensorContainer>>;
  if (typeof ds.iterator === 'function') {
    const opened = ds.iterator();
    let it: Awaited<typeof opened> | undefined;
    return {
      next: async () => {
        it ??= await opened;
        const r = await it.next();
        return r.done === true ? undefined : toBatch(name, r.value);
      },
      release,
      close: () => undefined,
    };
  }
  const asyncIt = (stream as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator];
  if (typeof asyncIt === 'function') {
    const it = asyncIt.call(stream);
    return {
      next: async () => {
        const r = await it.next();
        return r.done === true ? undefined : toBatch(name, r.value);
      },
      release,
      close: () => void it.return?.(),
    };
  }
  const it = (stream as Iterable<unknown>)[Symbol.iterator]();
  return {
    next: () => {
      const r = it.next();
      return r.done === true ? undefined : toBatch(name, r.value);
    },
    release,
    close: () => void it.return?.(),
  };
};

/**
 * Batches of in-memory tensors: in `order` (a permutation of the rows; gathered) or in row
 * order (sliced), from batch `from`.
 */
export const tensorReader = (
  tf: typeof TF,
  data: { readonly x: Tensors; readonly y: Tensors; readonly size: number },
  batchSize: number,
  options: { readonly order?: readonly number[]; readonly from?: number } = {},
): BatchReader => {
  const { order } = options;
  const indices = order === undefined ? undefined : tf.tensor1d([...order], 'int32');
  const take = (t: Tensors, start: number, size: number): Tensors => {
    const one = (u: TF.Tensor): TF.Tensor =>
      indices === undefined ? u.slice(start, size) : tf.gather(u, indices.slice(start, size));
    return isTensorLike(t) ? tf.tidy(() => one(t)) : t.map((u) => tf.tidy(() => one(u)));
  };
  let b = options.from ?? 0;
  let closed = false;
  const close = (): void => {
    if (!closed) indices?.dispose();
    closed = true;
  };
  return {
    next: () => {
      const start = b * batchSize;
      if (closed || start >= data.size) {
        close();
        return undefined;
      }
      const size = Math.min(batchSize, data.size - start);
      b += 1;
      return { x: take(data.x, start, size), y: take(data.y, start, size) };
    },
    release: dispose,
    close,
  };
};
