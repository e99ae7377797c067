/**
 * JSON values: what every piece of the runner state, every action and every user config value is
 * made of, so that `JSON.parse(JSON.stringify(x))` gives `x` back.
 */

/** A JSON primitive. Numbers are finite (JSON has no NaN, Infinity or -0). */
export type JsonPrimitive = string | number | boolean | null;

/** A JSON object, read-only. */
export interface JsonObject {
  readonly [key: string]: Json;
}

/** A JSON array, read-only. */
export type JsonArray = readonly Json[];

/** Any JSON value. */
export type Json = JsonPrimitive | JsonArray | JsonObject;

/**
 * Whether `value` is a plain object: created by an object literal or `Object.create(null)`, not an
 * array, class instance, `Date` or `Map`.
 */
export const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/**
 * Whether `value` is JSON data that survives `JSON.stringify` / `JSON.parse` unchanged: plain
 * objects, arrays, strings, booleans, `null` and finite numbers other than `-0`.
 */
export const isJson = (value: unknown): value is Json => {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      if (value === null) return true;
      if (Array.isArray(value)) {
        // A for loop, not every(): every() skips the holes of a sparse array, which JSON turns into null.
        for (let i = 0; i < value.length; i++) if (!isJson(value[i])) return false;
        return true;
      }
      return isPlainObject(value) && Object.values(value).every(isJson);
    default:
      return false;
  }
};

/**
 * Deep-freezes a JSON-like value in place and returns it. Already-frozen subtrees are skipped, so
 * freezing a state that shares structure with a frozen one costs only the new parts.
 */
export const deepFreeze = <T>(value: T): T => {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
};

/**
 * Sets an own, enumerable property, even one named `__proto__` (plain assignment would set the
 * prototype instead and lose the key, e.g. for `JSON.parse('{"__proto__": 1}')` input).
 */
export const setOwn = <T>(obj: Record<string, T>, key: string, value: T): void => {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else obj[key] = value;
};

/** `value` with every -0 replaced by 0 (JSON cannot carry -0); the same object when it has none. */
export const withoutNegativeZero = <T>(value: T): T => {
  if (typeof value === 'number') return (Object.is(value, -0) ? 0 : value) as T;
  if (Array.isArray(value)) {
    const items = value.map(withoutNegativeZero);
    return (items.every((x, i) => Object.is(x, value[i])) ? value : items) as T;
  }
  if (isPlainObject(value)) {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const w = withoutNegativeZero(v);
      if (!Object.is(w, v)) changed = true;
      setOwn(out, k, w);
    }
    return (changed ? out : value) as T;
  }
  return value;
};

/** How deep objects and arrays may nest in a config or a parsed config file; the root is level 1. */
export const MAX_DEPTH = 64;

/**
 * How many values (objects, arrays and primitives, a shared value counted each time it is reached)
 * a config may hold: shared YAML aliases cannot blow a small file up into an exponential walk.
 */
export const MAX_VALUES = 10_000_000;

/**
 * Why a value's shape cannot be walked safely: a cycle, nesting deeper than {@link MAX_DEPTH}, or
 * more than {@link MAX_VALUES} values.
 */
export interface ShapeProblem {
  readonly kind: 'cycle' | 'depth' | 'size';
  /** The keys from the root to the offending value. */
  readonly path: readonly string[];
  /** For a cycle: the keys from the root to the object it refers back to. */
  readonly target?: readonly string[];
}

/**
 * Finds the first cycle or over-deep nesting in `value`, without recursion (an explicit stack, so
 * a 100k-deep or cyclic value cannot overflow the call stack). Shared, acyclic references (YAML
 * aliases) are fine and each visited once. `undefined` when the value is a tree of at most
 * `maxDepth` levels of objects and arrays.
 *
 * @example
 * const a: Record<string, unknown> = {}; a['self'] = a;
 * shapeProblem({ model: a }) // { kind: 'cycle', path: ['model', 'self'], target: ['model'] }
 */
export const shapeProblem = (
  value: unknown,
  maxDepth = MAX_DEPTH,
  maxValues = MAX_VALUES,
): ShapeProblem | undefined => {
  if (typeof value !== 'object' || value === null) return undefined;
  // Objects on the current path (to detect cycles) and objects already checked, with the height
  // of the deepest nesting below them (so a shared value is walked once, not once per path).
  const onPath = new Map<object, number>();
  const height = new Map<object, number>();
  const size = new Map<object, number>();
  const path: string[] = [];
  interface Frame {
    readonly node: object;
    readonly entries: readonly (readonly [string, unknown])[];
    next: number;
    below: number;
    count: number;
  }
  const entriesOf = (node: object): readonly (readonly [string, unknown])[] =>
    Array.isArray(node)
      ? Array.from(node, (v: unknown, i) => [String(i), v] as const)
      : Object.entries(node);
  const stack: Frame[] = [{ node: value, entries: entriesOf(value), next: 0, below: 0, count: 1 }];
  onPath.set(value, 0);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as Frame;
    const entry = frame.entries[frame.next];
    if (entry === undefined) {
      if (frame.count > maxValues) return { kind: 'size', path: [...path] };
      stack.pop();
      onPath.delete(frame.node);
      height.set(frame.node, frame.below + 1);
      size.set(frame.node, frame.count);
      path.pop();
      const parent = stack[stack.length - 1];
      if (parent !== undefined) {
        parent.below = Math.max(parent.below, frame.below + 1);
        parent.count += frame.count;
      }
      continue;
    }
    frame.next++;
    const [k, child] = entry;
    if (typeof child !== 'object' || child === null) {
      frame.count++;
      continue;
    }
    const level = stack.length + 1;
    const back = onPath.get(child);
    if (back !== undefined) {
      return { kind: 'cycle', path: [...path, k], target: path.slice(0, back) };
    }
    const known = height.get(child);
    if (known !== undefined) {
      if (level + known - 1 > maxDepth) {
        return { kind: 'depth', path: [...path, k] };
      }
      frame.below = Math.max(frame.below, known);
      frame.count += size.get(child) ?? 1;
      continue;
    }
    if (level > maxDepth) return { kind: 'depth', path: [...path, k] };
    path.push(k);
    onPath.set(child, path.length);
    stack.push({ node: child, entries: entriesOf(child), next: 0, below: 0, count: 1 });
  }
  return undefined;
};
