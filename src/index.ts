/**
 * danling: the DanLing experiment runner for TypeScript.
 *
 * @packageDocumentation
 */
export { isJson, isPlainObject, deepFreeze } from './state/Json.js';
export type { Json, JsonArray, JsonObject, JsonPrimitive } from './state/Json.js';
export {
  KNOWN_KEYS,
  CONFIG_DEFAULTS,
  configName,
  configId,
  NonNegativeInt,
  PositiveInt,
  Int,
  PositiveNumber,
  NonEmptyString,
  Bool,
  JsonValue,
} from './state/Config.js';
export type { Config, KnownConfig, KnownKey, KeySpec, DataloaderConfig } from './state/Config.js';
export {
  decodeConfig,
  decodeConfigWithWarnings,
  editDistance,
  camelCase,
  suggestKey,
  deriveRunId,
  canonicalJson,
  describeValue,
  configError,
  formatProblems,
  BOOKKEEPING_KEYS,
} from './state/decodeConfig.js';
export type {
  ConfigError,
  ConfigProblem,
  ConfigWarning,
  DecodedConfig,
} from './state/decodeConfig.js';
export { yamls, fromYamls, jsons, fromJsons, parseYaml, parseJson } from './state/configText.js';
export type { ConfigSyntaxError, ConfigTextError } from './state/configText.js';
export { parseArgs, parseScalar, applyOverrides } from './state/overrides.js';
export type { Override, ParsedArgs, ArgsError } from './state/overrides.js';
export { readConfigFile } from './effects/configFile.js';
export type { ConfigFileError } from './effects/configFile.js';
export { uuid5, sha1, experimentNamespace } from './state/uuid.js';
export { seedRng, drawRaw } from './state/rng.js';
export type { RngState } from './state/rng.js';
export { getIn, setIn, mergeDeep, splitPath } from './state/merge.js';
export type { MergeOptions } from './state/merge.js';
