/**
 * danling: the DanLing experiment runner for TypeScript.
 *
 * @packageDocumentation
 */
export { isJson, isPlainObject, deepFreeze } from './state/Json.js';
export type { Json, JsonArray, JsonObject, JsonPrimitive } from './state/Json.js';
export { KNOWN_KEYS, CONFIG_DEFAULTS } from './state/Config.js';
export type { Config, KnownConfig, KnownKey, KeySpec, DataloaderConfig } from './state/Config.js';
export {
  decodeConfig,
  deriveRunId,
  canonicalJson,
  describeValue,
  configError,
  formatProblems,
  BOOKKEEPING_KEYS,
} from './state/decodeConfig.js';
export type { ConfigError, ConfigProblem } from './state/decodeConfig.js';
export { uuid5, sha1, experimentNamespace } from './state/uuid.js';
export { seedRng, drawRaw } from './state/rng.js';
export type { RngState } from './state/rng.js';
export { getIn, setIn, mergeDeep, splitPath } from './state/merge.js';
export type { MergeOptions } from './state/merge.js';
