/**
 * fast-check arbitraries for configs, built from KNOWN_KEYS so they cannot drift from the codecs.
 */
import fc from 'fast-check';
import { FolderName, KNOWN_KEYS, Schedule, type KeySpec } from '../../src/state/config/Config.js';
import type { Json, JsonObject } from '../../src/state/Json.js';

const known = KNOWN_KEYS as Record<string, KeySpec>;

/** A valid value for a known key, by the codec's name. */
const valueFor = (codecName: string): fc.Arbitrary<Json> => {
  switch (codecName) {
    case 'a non-negative integer':
      return fc.nat();
    case 'a positive integer':
      return fc.integer({ min: 1, max: 1_000_000 });
    case 'an integer':
      return fc.integer({ min: -1000, max: 1000 });
    case 'a positive number':
      return fc.double({ min: 1e-6, max: 1e6, noNaN: true });
    case 'a non-empty string':
      return fc.string({ minLength: 1, maxLength: 12 });
    case 'a non-negative number':
      return fc.double({ min: 0, max: 1e6, noNaN: true }).map((x) => (x === 0 ? 0 : x));
    case 'one of auto, min, max':
      return fc.constantFrom('auto', 'min', 'max');
    case 'one of text, json':
      return fc.constantFrom('text', 'json');
    case FolderName.name:
      return fc.string({ minLength: 1, maxLength: 12 }).filter((s) => FolderName.is(s));
    case 'a boolean':
      return fc.boolean();
    case 'one of trace, debug, info, warn, error, fatal, silent':
      return fc.constantFrom('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent');
    case 'one of cpu, wasm':
      return fc.constantFrom('cpu', 'wasm');
    case Schedule.name:
      return fc.oneof(
        fc.record(
          {
            kind: fc.constantFrom('constant', 'cosine', 'linear', 'plateau'),
            warmupSteps: fc.nat({ max: 100 }),
            minLr: fc.constant(0),
          },
          { requiredKeys: ['kind'] },
        ),
        fc.record({ kind: fc.constant('step'), stepSize: fc.integer({ min: 1, max: 100 }) }),
      );
    default:
      throw new Error(`no arbitrary for ${codecName}`);
  }
};

/** A JSON value without -0 (JSON cannot carry it). */
export const jsonValue: fc.Arbitrary<Json> = fc
  .jsonValue({ maxDepth: 3 })
  .map((v) => JSON.parse(JSON.stringify(v)) as Json);

/** User keys: anything that is not a known key. */
const userKey = fc
  .string({ minLength: 1, maxLength: 8 })
  .filter((k) => !Object.hasOwn(known, k) && k !== 'dataloader' && k !== '__proto__');

/** A raw config input: some known keys with valid values plus user keys with JSON values. */
export const configInput: fc.Arbitrary<JsonObject> = fc
  .record({
    known: fc.record(
      Object.fromEntries(Object.entries(known).map(([k, spec]) => [k, valueFor(spec.codec.name)])),
      { requiredKeys: [] },
    ),
    user: fc.dictionary(userKey, jsonValue, { maxKeys: 4 }),
    batchSize: fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }),
  })
  .map(({ known: k, user, batchSize }) => ({
    ...user,
    ...k,
    ...(batchSize === undefined ? {} : { dataloader: { batchSize } }),
  }));
