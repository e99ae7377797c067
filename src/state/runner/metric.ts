/**
 * Metric values in the JSON-safe state. JSON has no NaN, Infinity or -0, so at the boundary
 * (appendResult, updateMeters) a number is encoded: finite numbers stay numbers (-0 becomes 0),
 * NaN and the infinities become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`. Selectors
 * decode them back to numbers.
 */
import { isPlainObject, setOwn, type Json } from '../Json.js';

/** A number as stored in the state. */
export type MetricValue = number | 'NaN' | 'Infinity' | '-Infinity';

/** Encodes a number for the state: `NaN` -> `"NaN"`, `-0` -> `0`, finite numbers unchanged. */
export const encodeMetric = (x: number): MetricValue => {
  if (Number.isFinite(x)) return x === 0 ? 0 : x;
  if (Number.isNaN(x)) return 'NaN';
  return x > 0 ? 'Infinity' : '-Infinity';
};

/**
 * Decodes a stored value to a number: numbers as they are, the three strings to NaN and the
 * infinities, anything else (missing, text, objects) to `undefined`.
 */
export const decodeMetric = (value: Json | undefined): number | undefined => {
  if (typeof value === 'number') return value;
  if (value === 'NaN') return Number.NaN;
  if (value === 'Infinity') return Number.POSITIVE_INFINITY;
  if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
  return undefined;
};

/** What a user may put in a result: numbers (any), and JSON-like nesting of them. */
export type ResultInput =
  | number
  | string
  | boolean
  | null
  | readonly ResultInput[]
  | { readonly [key: string]: ResultInput | undefined };

/**
 * Encodes a user's result for the state: every number through {@link encodeMetric}, `undefined`
 * entries dropped, anything that is not JSON-like (functions, class instances) dropped too.
 */
export const encodeResult = (input: ResultInput): Json => {
  if (typeof input === 'number') return encodeMetric(input);
  if (Array.isArray(input)) return (input as readonly ResultInput[]).map(encodeResult);
  if (isPlainObject(input)) {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(input)) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && !isPlainObject(v)) continue;
      setOwn(out, k, encodeResult(v as ResultInput));
    }
    return out;
  }
  if (typeof input === 'string' || typeof input === 'boolean' || input === null) return input;
  return null;
};

/** The inverse of {@link encodeResult} for display: stored metric strings become numbers. */
export const decodeResult = (value: Json): unknown => {
  const n = decodeMetric(value);
  if (n !== undefined) return n;
  if (Array.isArray(value)) return value.map(decodeResult);
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeResult(v)]));
  }
  return value;
};
