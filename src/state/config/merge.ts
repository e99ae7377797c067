/**
 * Pure helpers over JSON objects: dotted access and deep merging, as chanfig's `Config` offers.
 */
import { isPlainObject, setOwn, type Json, type JsonObject } from '../Json.js';

/** Splits a dotted path (`'dataloader.batchSize'`) into its keys. */
export const splitPath = (path: string): readonly string[] => (path === '' ? [] : path.split('.'));

/**
 * The value at a dotted path, or `undefined` when any key on the way is missing or not an object.
 *
 * @example
 * getIn({ dataloader: { batchSize: 32 } }, 'dataloader.batchSize') // 32
 */
export const getIn = (obj: JsonObject, path: string): Json | undefined => {
  let cur: Json | undefined = obj;
  for (const k of splitPath(path)) {
    if (!isPlainObject(cur) || !Object.hasOwn(cur, k)) return undefined;
    cur = cur[k];
  }
  return cur;
};

/**
 * A copy of `obj` with the value at a dotted path set, creating objects on the way (a non-object
 * on the way is replaced by one). `obj` is not touched; untouched branches are shared.
 *
 * @example
 * setIn({}, 'optim.lr', 0.01) // { optim: { lr: 0.01 } }
 */
export const setIn = (obj: JsonObject, path: string, value: Json): JsonObject => {
  const keys = splitPath(path);
  const go = (cur: Json | undefined, i: number): Json => {
    const k = keys[i];
    if (k === undefined) return value;
    const base: JsonObject = isPlainObject(cur) ? cur : {};
    return { ...base, [k]: go(base[k], i + 1) };
  };
  return go(obj, 0) as JsonObject;
};

/** Options of {@link mergeDeep}. */
export interface MergeOptions {
  /** `true`: the patch wins on conflicts. `false`: existing values stay, only missing keys are added. */
  readonly overwrite: boolean;
}

/**
 * Deep merge of plain objects; arrays and other values are replaced whole. Neither input is
 * touched; when nothing changes, `base` itself is returned.
 *
 * @example
 * mergeDeep({ optim: { lr: 1, name: 'sgd' } }, { optim: { lr: 2 } }, { overwrite: true })
 * // { optim: { lr: 2, name: 'sgd' } }
 */
export const mergeDeep = (
  base: JsonObject,
  patch: JsonObject,
  options: MergeOptions,
): JsonObject => {
  let out: Record<string, Json> | undefined;
  for (const [k, pv] of Object.entries(patch)) {
    const has = Object.hasOwn(base, k);
    const bv = base[k];
    let next: Json | undefined;
    if (has && isPlainObject(bv) && isPlainObject(pv)) {
      const merged = mergeDeep(bv, pv, options);
      if (merged !== bv) next = merged;
    } else if (!has || (options.overwrite && bv !== pv)) {
      next = pv;
    }
    if (next !== undefined) {
      out ??= { ...base };
      setOwn(out, k, next);
    }
  }
  return out ?? base;
};
