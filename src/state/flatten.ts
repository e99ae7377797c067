/**
 * The spec's write_result flattening, pure: a result becomes `[name, value]` pairs, nested names
 * joined with `/` (and `.` in a name becoming `/`), sequences as `name/i`, mappings as
 * `name/key`. Only numbers are kept (stored `"NaN"` / `"Infinity"` strings count as numbers).
 */
import { decodeMetric } from './runner/metric.js';

/**
 * Flattens a result into scalar pairs.
 *
 * @example
 * flattenResult({ loss: 0.1, per_class: [0.9, 0.8], f1: { macro: 0.7 } })
 * // [['loss', 0.1], ['per_class/0', 0.9], ['per_class/1', 0.8], ['f1/macro', 0.7]]
 */
export const flattenResult = (result: unknown, prefix = ''): [string, number][] => {
  const out: [string, number][] = [];
  const walk = (value: unknown, name: string): void => {
    const n = decodeMetric(value as never);
    if (n !== undefined) {
      if (name !== '') out.push([name, n]);
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        walk(v, name === '' ? String(i) : `${name}/${String(i)}`);
      });
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        if (k === 'index') continue;
        const key = k.replace(/\./g, '/');
        walk(v, name === '' ? key : `${name}/${key}`);
      }
    }
  };
  walk(result, prefix);
  return out;
};
