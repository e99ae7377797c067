/**
 * The difference of two configs by dotted path, for messages that say why a run is not the one
 * a user expected (`optim.lr: 0.01 -> 0.05`). Pure.
 */
import { isPlainObject, type Json } from '../Json.js';
import { BOOKKEEPING_KEYS, canonicalJson } from './decodeConfig.js';

/** One difference: the dotted path and both values (`undefined`: absent on that side). */
export interface ConfigChange {
  readonly path: string;
  readonly before: Json | undefined;
  readonly after: Json | undefined;
}

const show = (v: Json | undefined): string => (v === undefined ? '(unset)' : JSON.stringify(v));

/**
 * Every leaf that differs between `before` and `after`, by dotted path, sorted. Objects are
 * compared key by key; arrays and scalars as whole values. With `identity`, only the keys that
 * make a run's identity are compared (the bookkeeping keys of the runId left out).
 *
 * @example
 * configDiff({ optim: { lr: 0.01 } }, { optim: { lr: 0.05 } }) // [{ path: 'optim.lr', before: 0.01, after: 0.05 }]
 */
export const configDiff = (
  before: Json | undefined,
  after: Json | undefined,
  options: { readonly identity?: boolean } = {},
): ConfigChange[] => {
  const out: ConfigChange[] = [];
  const walk = (a: Json | undefined, b: Json | undefined, path: string, depth: number): void => {
    if (isPlainObject(a) && isPlainObject(b) && depth < 64) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const k of keys) {
        if (depth === 0 && options.identity === true && BOOKKEEPING_KEYS.has(k)) continue;
        walk(a[k], b[k], path === '' ? k : `${path}.${k}`, depth + 1);
      }
      return;
    }
    const same =
      a === undefined || b === undefined ? a === b : canonicalJson(a) === canonicalJson(b);
    if (!same) out.push({ path: path || '(root)', before: a, after: b });
  };
  walk(before, after, '', 0);
  return out;
};

/** The changes one a line: `optim.lr: 0.01 -> 0.05`. */
export const formatConfigDiff = (changes: readonly ConfigChange[]): string =>
  changes.map((c) => `${c.path}: ${show(c.before)} -> ${show(c.after)}`).join('\n');
