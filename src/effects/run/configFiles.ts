/**
 * The spec's config and generic files over a runner state: json / yaml / fromJson / fromYaml,
 * save / load, unwrap.
 */
import * as E from 'fp-ts/lib/Either.js';
import type { Config } from '../../state/config/Config.js';
import {
  fromJsons,
  fromYamls,
  jsons,
  parseJson,
  parseYaml,
  yamls,
  type ConfigTextError,
} from '../../state/config/configText.js';
import { stringify as stringifyYaml } from 'yaml';
import type { Json } from '../../state/Json.js';
import {
  initialState,
  type RunnerState,
  type StateContext,
} from '../../state/runner/RunnerState.js';
import { readText } from '../storage/configFile.js';
import { writeFileAtomic, type FsError } from '../storage/atomic.js';
import { writesHere, type RunWriteOptions } from './resultFiles.js';

/** A config file could not be read or is not a valid config: the file and every problem. */
export interface ConfigFileInvalid {
  readonly _tag: 'ConfigFileInvalid';
  readonly path: string;
  readonly error: ConfigTextError | null;
  readonly message: string;
}

const writeConfig = async (
  state: RunnerState,
  file: string,
  text: (c: Config) => string,
  options: RunWriteOptions,
): Promise<E.Either<FsError, string>> =>
  writesHere(state, options)
    ? writeFileAtomic(file, text(state.config))
    : Promise.resolve(E.right(file));

const readConfig = async (
  file: string,
  parse: (text: string) => E.Either<ConfigTextError, Config>,
  context: StateContext,
): Promise<E.Either<ConfigFileInvalid, RunnerState>> => {
  const read = await readText(file);
  if (E.isLeft(read)) {
    return E.left({ _tag: 'ConfigFileInvalid', path: file, error: null, message: read.left });
  }
  const text = read.right;
  return E.bimap(
    (error: ConfigTextError): ConfigFileInvalid => ({
      _tag: 'ConfigFileInvalid',
      path: file,
      error,
      message: `${file}: ${error.message.includes('\n') ? `\n${error.message}` : error.message}`,
    }),
    (config: Config) => initialState(config, context),
  )(parse(text));
};

/** The spec's json: the run's config as a JSON file (main process only unless `allProcesses`). */
export const json = (state: RunnerState, file: string, options: RunWriteOptions = {}) =>
  writeConfig(state, file, jsons, options);

/** The spec's yaml: the run's config as a YAML file (main process only unless `allProcesses`). */
export const yaml = (state: RunnerState, file: string, options: RunWriteOptions = {}) =>
  writeConfig(state, file, yamls, options);

/** The spec's from_json: a fresh state from a JSON config file; errors name the file and line. */
export const fromJson = (file: string, context: StateContext = {}) =>
  readConfig(file, fromJsons, context);

/** The spec's from_yaml: a fresh state from a YAML config file; errors name the file and line. */
export const fromYaml = (file: string, context: StateContext = {}) =>
  readConfig(file, fromYamls, context);

/**
 * The spec's save: writes any JSON value to `file` atomically, as YAML for `.yaml` / `.yml` and
 * JSON otherwise; only on the main process unless `allProcesses`. Returns the path.
 */
export const save = (
  state: RunnerState,
  value: Json,
  file: string,
  options: RunWriteOptions = {},
): Promise<E.Either<FsError, string>> =>
  writesHere(state, options)
    ? writeFileAtomic(
        file,
        /\.ya?ml$/i.test(file) ? stringifyYaml(value) : `${JSON.stringify(value, null, 2)}\n`,
      )
    : Promise.resolve(E.right(file));

/** A file that `load` cannot read or parse. */
export interface LoadFileError {
  readonly _tag: 'FileLoadFailed';
  readonly path: string;
  readonly message: string;
}

/** The spec's load: reads a JSON or YAML file (by extension) into a plain value. */
export const load = async (file: string): Promise<E.Either<LoadFileError, unknown>> => {
  const read = await readText(file);
  if (E.isLeft(read)) return E.left({ _tag: 'FileLoadFailed', path: file, message: read.left });
  const text = read.right;
  const parsed = /\.ya?ml$/i.test(file) ? parseYaml(text) : parseJson(text);
  return E.mapLeft((e: { message: string }) => ({
    _tag: 'FileLoadFailed' as const,
    path: file,
    message: `${file}: ${e.message}`,
  }))(parsed);
};

/** The spec's unwrap: the model inside a wrapper. tfjs models are not wrapped: the identity. */
export const unwrap = <M>(model: M): M => model;
