/**
 * Persistent, JSON-safe containers for histories that grow by one element a step: a 32-way
 * trie vector (push, get and set copy at most one path, O(log32 n), so at most 4 levels below a
 * million elements) and a digit trie from integer keys to numbers. Both are nested plain arrays
 * and objects: they survive `JSON.parse(JSON.stringify(x))` and are never mutated.
 */
import type { Json, JsonObject } from '../Json.js';

const BITS = 5;
const WIDTH = 1 << BITS;
const MASK = WIDTH - 1;

/** A node: elements at depth 0, child nodes above. */
type Node = readonly Json[];

/** A persistent vector of JSON values. */
export interface Vec<T extends Json = Json> {
  readonly size: number;
  /** Levels of inner nodes above the leaves (0: the root is a leaf). */
  readonly depth: number;
  readonly root: Node;
  /** Phantom: the element type. Never present at run time. */
  readonly __element?: T;
}

/** The empty vector. */
export const emptyVec = <T extends Json>(): Vec<T> => EMPTY as Vec<T>;
const EMPTY: Vec = Object.freeze({ size: 0, depth: 0, root: Object.freeze([]) });

const pathTo = (depth: number, value: Json): Node => {
  let node: Node = Object.freeze([value]);
  for (let d = 0; d < depth; d++) node = Object.freeze([node]);
  return node;
};

const pushAt = (node: Node, depth: number, i: number, value: Json): Node => {
  if (depth === 0) return Object.freeze([...node, value]);
  const slot = (i >>> (BITS * depth)) & MASK;
  const child = node[slot] as Node | undefined;
  const next = child === undefined ? pathTo(depth - 1, value) : pushAt(child, depth - 1, i, value);
  const copy = node.slice();
  copy[slot] = next;
  return Object.freeze(copy);
};

/** A vector with `value` appended. `vec` is not touched. */
export const push = <T extends Json>(vec: Vec<T>, value: T): Vec<T> => {
  const { size, depth, root } = vec;
  if (size === WIDTH ** (depth + 1)) {
    return Object.freeze({
      size: size + 1,
      depth: depth + 1,
      root: Object.freeze([root, pathTo(depth, value)]),
    });
  }
  return Object.freeze({ size: size + 1, depth, root: pushAt(root, depth, size, value) });
};

/** The leaf node that holds position `i` (which must exist). */
const leafOf = (vec: Vec, i: number): Node => {
  let node: Node = vec.root;
  for (let d = vec.depth; d > 0; d--) node = node[(i >>> (BITS * d)) & MASK] as Node;
  return node;
};

/** The element at position `i`, or `undefined` when out of range. */
export const get = <T extends Json>(vec: Vec<T>, i: number): T | undefined => {
  if (!Number.isInteger(i) || i < 0 || i >= vec.size) return undefined;
  return leafOf(vec, i)[i & MASK] as T;
};

const setAt = (node: Node, depth: number, i: number, value: Json): Node => {
  const slot = (i >>> (BITS * depth)) & MASK;
  const copy = node.slice();
  copy[slot] = depth === 0 ? value : setAt(node[slot] as Node, depth - 1, i, value);
  return Object.freeze(copy);
};

/** A vector with position `i` (which must exist) replaced by `value`. */
export const set = <T extends Json>(vec: Vec<T>, i: number, value: T): Vec<T> => {
  if (!Number.isInteger(i) || i < 0 || i >= vec.size) {
    throw new RangeError(`vector position ${i} is out of range [0, ${vec.size})`);
  }
  return Object.freeze({
    size: vec.size,
    depth: vec.depth,
    root: setAt(vec.root, vec.depth, i, value),
  });
};

/** Every element in order. O(n). */
export const toArray = <T extends Json>(vec: Vec<T>): T[] => {
  const out: T[] = [];
  const walk = (node: Node, depth: number): void => {
    if (depth === 0) for (const x of node) out.push(x as T);
    else for (const child of node) walk(child as Node, depth - 1);
  };
  walk(vec.root, vec.depth);
  return out;
};

/** The elements from position `from` on, in order. O((size - from) log32 size). */
export const sliceFrom = <T extends Json>(vec: Vec<T>, from: number): T[] => {
  const out: T[] = [];
  for (let i = Math.max(0, Math.floor(from)); i < vec.size; i++) out.push(get(vec, i) as T);
  return out;
};

/**
 * Whether the first `prefix.size` elements of `vec` are `prefix`'s own, by identity: true for a
 * vector grown from `prefix` by `push`, whose full leaves are `prefix`'s nodes (so this is one
 * node comparison per 32 elements, plus the elements of a leaf that differs); false once an
 * element was `set` to another value or the vectors were built apart (a restored history).
 */
export const startsWith = <T extends Json>(vec: Vec<T>, prefix: Vec<T>): boolean => {
  if (prefix.size > vec.size) return false;
  if (vec === prefix) return true;
  for (let i = 0; i < prefix.size; i += WIDTH) {
    const a = leafOf(vec, i);
    const b = leafOf(prefix, i);
    if (a === b) continue;
    const end = Math.min(WIDTH, prefix.size - i);
    for (let j = 0; j < end; j++) if (a[j] !== b[j]) return false;
  }
  return true;
};

/** A vector of the elements of `items`, in order. */
export const fromArray = <T extends Json>(items: readonly T[]): Vec<T> =>
  items.reduce<Vec<T>>((v, x) => push(v, x), emptyVec<T>());

/** Whether `value` has the shape of a {@link Vec} (used when decoding saved states). */
export const isVec = (value: unknown): value is Vec => {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const { size, depth, root } = v;
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(depth) || !Array.isArray(root)) {
    return false;
  }
  const n = size as number;
  const d = depth as number;
  if (n < 0 || d < 0 || d > 10) return false;
  if (n <= WIDTH ? d !== 0 : n > WIDTH ** (d + 1) || n <= WIDTH ** d) return false;
  let count = 0;
  const walk = (node: unknown, level: number): boolean => {
    if (!Array.isArray(node) || node.length === 0 || node.length > WIDTH) return false;
    if (level === 0) {
      count += node.length;
      return true;
    }
    return node.every((child) => walk(child, level - 1));
  };
  return n === 0 ? root.length === 0 : walk(root, d) && count === n;
};

// ---------------------------------------------------------------------------------------------
// Digit trie: integer key -> number. One node per decimal digit of the key (a leading '-' for
// negative keys): at most 17 levels, each a small object, so set and get are O(digits).

/** A persistent map from integer keys to numbers, as nested plain objects. */
export type IntMap = JsonObject;

/** The empty map. */
export const emptyIntMap: IntMap = Object.freeze({});

const VALUE = 'v';

/** The value for `key`, or `undefined`. */
export const intMapGet = (map: IntMap, key: number): number | undefined => {
  let node: JsonObject | undefined = map;
  for (const ch of String(key)) {
    node = node[ch] as JsonObject | undefined;
    if (node === undefined) return undefined;
  }
  const v = node[VALUE];
  return typeof v === 'number' ? v : undefined;
};

/** A map with `key` set to `value`. `map` is not touched. */
export const intMapSet = (map: IntMap, key: number, value: number): IntMap => {
  const digits = String(key);
  const go = (node: JsonObject, i: number): JsonObject => {
    const ch = digits[i];
    if (ch === undefined) return Object.freeze({ ...node, [VALUE]: value });
    const child = (node[ch] as JsonObject | undefined) ?? emptyIntMap;
    return Object.freeze({ ...node, [ch]: go(child, i + 1) });
  };
  return go(map, 0);
};
