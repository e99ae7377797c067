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
