/**
 * Checkpoint parts: collecting every part's state dict for a save, comparing a part's tensors with
 * a checkpoint's (names, shapes, dtypes), checking all of them, and restoring them.
 */
import * as E from 'fp-ts/lib/Either.js';
import type { Dtype, TensorData, TensorMap } from '../../state/formats/safetensors.js';
import type {
  CheckpointError,
  LoadedCheckpoint,
  PartProblem,
  StateDict,
  Stateful,
} from './checkpointTypes.js';
import { partThrew } from './checkpointTypes.js';

const shapeText = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/**
 * Compares a part's current tensors with the ones a checkpoint holds for it: every missing,
 * unexpected, wrongly shaped or wrongly typed tensor, named `<part>/<tensor>`.
 */
export const comparePart = (
  part: string,
  current: TensorMap,
  saved: TensorMap,
): readonly PartProblem[] => {
  const problems: PartProblem[] = [];
  for (const [name, want] of Object.entries(current)) {
    const tensor = `${part}/${name}`;
    const got = saved[name];
    if (got === undefined) {
      problems.push({
        tensor,
        problem: 'missing',
        message: `${tensor}: missing from the checkpoint`,
      });
      continue;
    }
    if (shapeText(want.shape) !== shapeText(got.shape))
      problems.push({
        tensor,
        problem: 'shape',
        message: `${tensor}: expected shape ${shapeText(want.shape)}, got ${shapeText(got.shape)}`,
      });
    else if (want.dtype !== got.dtype)
      problems.push({
        tensor,
        problem: 'dtype',
        message: `${tensor}: expected dtype ${want.dtype}, got ${got.dtype satisfies Dtype}`,
      });
  }
  for (const name of Object.keys(saved))
    if (!Object.hasOwn(current, name))
      problems.push({
        tensor: `${part}/${name}`,
        problem: 'unexpected',
        message: `${part}/${name}: in the checkpoint but not in the part`,
      });
  return problems;
};

const owned = new WeakSet<ArrayBufferLike>();

/**
 * Marks a state dict's tensor data as a copy that nothing else holds (a tfjs part's `data()`
 * copy): a queued save may then hand its buffer to the checkpoint writer thread instead of
 * copying it again. Data not marked is copied when it crosses to the thread. Returns `data`.
 */
export const ownedCopy = <T extends TensorData>(data: T): T => {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) owned.add(data.buffer);
  return data;
};

/** The buffers of `dicts`' tensors marked by {@link ownedCopy}, each once. */
export const ownedBuffers = (dicts: Readonly<Record<string, StateDict>>): ArrayBuffer[] => {
  const out = new Set<ArrayBuffer>();
  for (const dict of Object.values(dicts))
    for (const t of Object.values(dict.tensors ?? {}))
      if (owned.has(t.data.buffer) && t.data.buffer instanceof ArrayBuffer) out.add(t.data.buffer);
  return [...out];
};

/**
 * Collects the state dicts of named parts (calls each `stateDict()`); a part that throws is a
 * `PartStateFailed` naming it.
 */
export const collectStateDicts = async (
  parts: Readonly<Record<string, Stateful>>,
  path = '<checkpoint>',
): Promise<E.Either<CheckpointError, Record<string, StateDict>>> => {
  const out: Record<string, StateDict> = {};
  for (const [part, stateful] of Object.entries(parts)) {
    try {
      out[part] = await stateful.stateDict();
    } catch (cause) {
      return E.left(partThrew('save', path, part, 'stateDict', cause));
    }
  }
  return E.right(out);
};

/** Options of {@link restoreParts}. */
export interface RestorePartsOptions {
  /**
   * Check each part's tensors against its current `stateDict()` before loading any (default
   * `true`): names, shapes and dtypes must match.
   */
  readonly strict?: boolean;
}

/**
 * Checks, without loading anything, that every part the checkpoint has a state for matches it:
 * the tensors of each part's current `stateDict()` must have the same names, shapes and dtypes.
 * The error lists every tensor that differs (`model/dense/kernel: expected shape [4,16], got [4,8]`).
 * Use it as `findLatestValid`'s `check` to fall back past a checkpoint that does not fit.
 */
export const checkParts = async (
  parts: Readonly<Record<string, Stateful>>,
  checkpoint: Pick<LoadedCheckpoint, 'path' | 'parts'>,
): Promise<E.Either<CheckpointError, string[]>> => {
  const { path } = checkpoint;
  const present = Object.keys(parts).filter((p) => Object.hasOwn(checkpoint.parts, p));
  for (const part of present) {
    const stateful = parts[part] as Stateful;
    const saved = checkpoint.parts[part] ?? {};
    if (stateful.checkStateDict !== undefined) {
      const own = stateful.checkStateDict(saved).map((message): PartProblem => ({
        tensor: part,
        problem: 'unexpected',
        message: `${part}: ${message}`,
      }));
      if (own.length > 0)
        return E.left({
          _tag: 'CheckpointPartMismatch',
          path,
          part,
          problems: own,
          message: `checkpoint ${path} does not fit part ${part}:\n${own.map((p) => p.message).join('\n')}`,
        });
      continue;
    }
    let current: StateDict;
    try {
      current = await (parts[part] as Stateful).stateDict();
    } catch (cause) {
      return E.left(partThrew('load', path, part, 'stateDict', cause));
    }
    const problems = comparePart(
      part,
      current.tensors ?? {},
      checkpoint.parts[part]?.tensors ?? {},
    );
    if (problems.length > 0)
      return E.left({
        _tag: 'CheckpointPartMismatch',
        path,
        part,
        problems,
        message: `checkpoint ${path} does not fit part ${part}:\n${problems.map((p) => p.message).join('\n')}`,
      });
  }
  return E.right(present);
};

/**
 * Gives each part that the checkpoint has a state for its `loadStateDict`. With `strict` (the
 * default) every part is first checked with {@link checkParts}, so a mismatch loads nothing. Parts
 * that the checkpoint does not have are left alone. Resolves to the names of the parts loaded.
 */
export const restoreParts = async (
  parts: Readonly<Record<string, Stateful>>,
  checkpoint: Pick<LoadedCheckpoint, 'path' | 'parts'>,
  options: RestorePartsOptions = {},
): Promise<E.Either<CheckpointError, string[]>> => {
  const { path } = checkpoint;
  const present = Object.keys(parts).filter((p) => Object.hasOwn(checkpoint.parts, p));
  if (options.strict ?? true) {
    const checked = await checkParts(parts, checkpoint);
    if (E.isLeft(checked)) return checked;
  }
  for (const part of present) {
    try {
      await (parts[part] as Stateful).loadStateDict(checkpoint.parts[part] as StateDict);
    } catch (cause) {
      return E.left(partThrew('load', path, part, 'loadStateDict', cause));
    }
  }
  return E.right(present);
};
