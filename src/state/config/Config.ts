/**
 * The runner's Config: the spec's `Config`, camelCased. Known keys are typed and validated; every
 * other key belongs to the user (`optim`, `model`, `data`, ...) and is kept as given.
 */
import * as t from 'io-ts/lib/index.js';
import { isJson, type Json, type JsonObject } from '../Json.js';

// ---------------------------------------------------------------------------------------------
// Refined codecs. Each carries the phrase used in error messages ("a positive integer").

const refine = <A>(name: string, is: (u: unknown) => u is A): t.Type<A, A> =>
  new t.Type<A, A, unknown>(
    name,
    is,
    (u, c) => (is(u) ? t.success(u) : t.failure(u, c)),
    t.identity,
  );

/** An integer >= 0. */
export const NonNegativeInt = refine(
  'a non-negative integer',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= 0,
);
/** An integer > 0. */
export const PositiveInt = refine(
  'a positive integer',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u > 0,
);
/** Any integer. */
export const Int = refine(
  'an integer',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u),
);
/** A finite number > 0. */
export const PositiveNumber = refine(
  'a positive number',
  (u): u is number => typeof u === 'number' && Number.isFinite(u) && u > 0,
);
/** A non-empty string. */
export const NonEmptyString = refine(
  'a non-empty string',
  (u): u is string => typeof u === 'string' && u.length > 0,
);
/** The longest folder name most file systems take, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

/** The length of `s` in UTF-8 bytes. */
export const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

/**
 * Whether `s` can be one folder name: not empty, not `.` or `..`, no `/`, `\\` or NUL, at most
 * {@link MAX_NAME_BYTES} bytes. Name-like keys become folders under `projectRoot`, so a `../`
 * in them would write outside it.
 */
export const isFolderName = (s: string): boolean =>
  s.length > 0 && s !== '.' && s !== '..' && !/[/\\\0]/.test(s) && utf8Length(s) <= MAX_NAME_BYTES;

/** A string that can be one folder name (see {@link isFolderName}). */
export const FolderName = refine(
  'a folder name (no slash, backslash, NUL or ".."; at most 255 bytes)',
  (u): u is string => typeof u === 'string' && isFolderName(u),
);
/** A pino log level. */
export const LogLevel = refine(
  'one of trace, debug, info, warn, error, fatal, silent',
  (u): u is string =>
    typeof u === 'string' &&
    ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(u),
);
/** A boolean. */
export const Bool = refine('a boolean', (u): u is boolean => typeof u === 'boolean');
/** A finite number >= 0. */
export const NonNegativeNumber = refine(
  'a non-negative number',
  (u): u is number => typeof u === 'number' && Number.isFinite(u) && u >= 0,
);
/** How the score is ranked: `auto` (inferred from its name), `min` or `max`. */
export const ScoreModeSetting = refine(
  'one of auto, min, max',
  (u): u is 'auto' | 'min' | 'max' => u === 'auto' || u === 'min' || u === 'max',
);
export const LogFormatSetting = refine(
  'one of text, json',
  (u): u is 'text' | 'json' => u === 'text' || u === 'json',
);
/** The TensorFlow.js backend the loop runs on. */
export const BackendSetting = refine(
  'one of cpu, wasm',
  (u): u is 'cpu' | 'wasm' => u === 'cpu' || u === 'wasm',
);
/** Any JSON value. */
export const JsonValue = refine('a JSON value', isJson);

/** The kinds of learning-rate schedule (`schedule.kind`). */
export const SCHEDULE_KINDS = [
  'constant',
  'step',
  'exponential',
  'cosine',
  'linear',
  'plateau',
] as const;

/** A learning-rate schedule's kind. */
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/**
 * A learning-rate schedule (`config.schedule`): a pure function of the state (the optimizer step,
 * and for `plateau` the results history), so a resume gets the same rate. Optional linear warm-up
 * from `minLr` to the base rate over `warmupSteps` optimizer steps, then `kind`:
 * `constant`; `step` (times `gamma`, default 0.1, every `stepSize` steps); `exponential` (times
 * `gamma` every step); `cosine` / `linear` (down to `minLr` at `totalSteps`, default the run's
 * end); `plateau` (times `factor`, default 0.1, after `patience` results, default 10, without an
 * improvement of the score by more than `threshold`, default 0). Never below `minLr` (default 0).
 */
export interface ScheduleConfig {
  readonly kind: ScheduleKind;
  /** The base rate; default: the optimizer's rate when the loop starts. */
  readonly lr?: number;
  readonly warmupSteps?: number;
  readonly minLr?: number;
  readonly stepSize?: number;
  readonly gamma?: number;
  readonly totalSteps?: number;
  readonly factor?: number;
  readonly patience?: number;
  readonly threshold?: number;
}

const SCHEDULE_FIELDS: Readonly<Record<string, (u: unknown) => boolean>> = {
  kind: (u) => SCHEDULE_KINDS.includes(u as ScheduleKind),
  lr: (u) => PositiveNumber.is(u),
  warmupSteps: (u) => NonNegativeInt.is(u),
  minLr: (u) => NonNegativeNumber.is(u),
  stepSize: (u) => PositiveInt.is(u),
  gamma: (u) => PositiveNumber.is(u),
  totalSteps: (u) => PositiveInt.is(u),
  factor: (u) => PositiveNumber.is(u) && u < 1,
  patience: (u) => PositiveInt.is(u),
  threshold: (u) => NonNegativeNumber.is(u),
};

const isSchedule = (u: unknown): u is ScheduleConfig => {
  if (typeof u !== 'object' || u === null || Array.isArray(u)) return false;
  const o = u as Record<string, unknown>;
  if (!Object.hasOwn(o, 'kind')) return false;
  for (const [k, v] of Object.entries(o)) {
    const ok = Object.hasOwn(SCHEDULE_FIELDS, k) ? SCHEDULE_FIELDS[k] : undefined;
    if (ok === undefined || !ok(v)) return false;
  }
  if (o['kind'] === 'step' && o['stepSize'] === undefined) return false;
  if (o['kind'] === 'exponential' && o['gamma'] === undefined) return false;
  if (typeof o['lr'] === 'number' && typeof o['minLr'] === 'number' && o['minLr'] > o['lr']) {
    return false;
  }
  return true;
};

/** A {@link ScheduleConfig}. */
export const Schedule = refine(
  'a schedule object: kind (constant, step, exponential, cosine, linear, plateau) and its fields',
  isSchedule,
);

// ---------------------------------------------------------------------------------------------
// Known keys.

/** One known config key: its codec, its default (if any) and a one-line doc for `--help`. */
export interface KeySpec {
  readonly codec: t.Mixed;
  readonly default?: Json;
  readonly doc: string;
}

const key = (codec: t.Mixed, doc: string, dflt?: Json): KeySpec =>
  dflt === undefined ? { codec, doc } : { codec, doc, default: dflt };

/**
 * Every known top-level config key with its codec, default and doc, in display order.
 * `dataloader` is a user object whose `batchSize` is checked (see {@link DataloaderConfig}).
 */
export const KNOWN_KEYS = {
  experimentName: key(FolderName, 'Name of the experiment.', 'DanLing'),
  runName: key(FolderName, 'Name of the run within the experiment.', 'Run'),
  experimentId: key(
    FolderName,
    'Experiment id; the shell fills in the git commit hash.',
    'xxxxxxxxxxxxxxxx',
  ),
  runId: key(FolderName, 'Run id; derived from the config content when not given.'),
  name: key(FolderName, 'Overrides the derived name `experimentName-runName`.'),
  seed: key(NonNegativeInt, 'Random seed (0 is a valid seed); drawn once when not given.'),
  deterministic: key(Bool, 'Ask the backend for deterministic kernels.', false),
  log: key(Bool, 'Write the run log.', true),
  tensorboard: key(Bool, 'Write TensorBoard event files.', false),
  logFormat: key(
    LogFormatSetting,
    'Console format: `text`, one compact line per event, or `json` lines for log collectors (run.log is always JSON).',
    'text',
  ),
  logLevel: key(
    LogLevel,
    'Least severe log level shown on the console (run.log keeps debug and up).',
    'info',
  ),
  epochEnd: key(PositiveInt, 'Epoch to stop at (exclusive).'),
  stepEnd: key(PositiveInt, 'Optimizer step to stop at (exclusive).'),
  scoreSplit: key(NonEmptyString, 'Split whose metric is the score; inferred when not given.'),
  scoreName: key(NonEmptyString, 'Metric that is the score (its direction: `scoreMode`).', 'loss'),
  scoreMode: key(
    ScoreModeSetting,
    '`min`, `max`, or `auto`: minimise `loss`, names ending in `loss`/`error` and error metrics (mae, mse, rmse, perplexity, wer, ...), maximise the rest.',
    'auto',
  ),
  minDelta: key(
    NonNegativeNumber,
    'Early stopping: the least change of the score that counts as an improvement.',
    0,
  ),
  saveInterval: key(
    Int,
    'Keep an `epoch-N` checkpoint every N epochs; <= 0 keeps only latest and best.',
  ),
  saveSteps: key(
    PositiveInt,
    'Also save `latest` every N optimizer steps, mid-epoch (a resume continues at the next batch); off by default.',
  ),
  evalInterval: key(
    PositiveInt,
    'Evaluate the splits other than the training one every N epochs (and in the last); every epoch by default.',
  ),
  evalSteps: key(
    PositiveInt,
    'Also evaluate them every N optimizer steps inside an epoch (logged and written as metric rows, not appended to the results); off by default.',
  ),
  restartCount: key(
    NonNegativeInt,
    'How often the launcher restarted this run (set from `SLURM_RESTART_COUNT` / `TORCHELASTIC_RESTART_COUNT`).',
  ),
  keepBest: key(
    PositiveInt,
    'Keep a `best-N` checkpoint for each of the K best-scoring epochs (besides `best`); none by default.',
  ),
  keepEvery: key(
    PositiveInt,
    'Never delete the `epoch-N` checkpoints of every M-th epoch, whatever `maxToKeep` says.',
  ),
  logInterval: key(
    PositiveInt,
    'Steps between progress lines; by default a tenth of the split, and only the last of a split of up to ten.',
  ),
  maxToKeep: key(
    PositiveInt,
    'How many epoch-N checkpoints to keep (latest and best always stay); all by default.',
  ),
  patience: key(
    PositiveInt,
    'Early stopping: epochs without a new best score before training stops.',
  ),
  checkpointDirName: key(
    FolderName,
    'Name of the checkpoint folder under the run dir.',
    'checkpoints',
  ),
  projectRoot: key(NonEmptyString, 'Folder that holds all runs.', 'experiments'),
  dir: key(NonEmptyString, 'Overrides the run dir `projectRoot/name-id/timestamp`.'),
  checkpointDir: key(NonEmptyString, 'Overrides the checkpoint dir `dir/checkpointDirName`.'),
  logPath: key(NonEmptyString, 'Overrides the log file `dir/run.log`.'),
  checkpoint: key(NonEmptyString, 'Checkpoint to resume from.'),
  pretrained: key(NonEmptyString, 'Checkpoint to load model weights from.'),
  autoResume: key(Bool, 'Resume from the newest valid checkpoint of the run dir.', false),
  accumSteps: key(PositiveInt, 'Iterations accumulated into one optimizer step.', 1),
  lrScaleFactor: key(PositiveNumber, 'Learning-rate scale factor (linear scaling rule).'),
  batchSizeBase: key(PositiveNumber, 'Base batch size of the linear scaling rule.'),
  schedule: key(
    Schedule,
    'Learning-rate schedule, set by the loop before each optimizer step (see "Learning-rate schedules"); constant by default.',
  ),
  clipNorm: key(
    PositiveNumber,
    'Clip the averaged gradients to this global L2 norm before each optimizer step.',
  ),
  backend: key(
    BackendSetting,
    'TensorFlow.js backend trainTfjs switches to (import `@tensorflow/tfjs-backend-wasm` for wasm); the one in use by default.',
  ),
  clipValue: key(
    PositiveNumber,
    'Clip every averaged gradient value to [-clipValue, clipValue] before each optimizer step.',
  ),
} as const satisfies Record<string, KeySpec>;

/** Names of the known top-level keys. */
export type KnownKey = keyof typeof KNOWN_KEYS;

/** The `dataloader` section: `batchSize` is checked, other keys are the user's. */
export interface DataloaderConfig {
  readonly batchSize?: number;
  readonly [key: string]: Json | undefined;
}

/** The typed, known part of a {@link Config}. */
export interface KnownConfig {
  readonly experimentName: string;
  readonly runName: string;
  readonly experimentId: string;
  /** Always present after decoding: given, or derived from the config content. */
  readonly runId: string;
  readonly name?: string;
  readonly seed?: number;
  readonly deterministic: boolean;
  readonly log: boolean;
  readonly tensorboard: boolean;
  readonly logFormat: 'text' | 'json';
  readonly logLevel: string;
  readonly epochEnd?: number;
  readonly stepEnd?: number;
  readonly scoreSplit?: string;
  readonly scoreName: string;
  readonly scoreMode: 'auto' | 'min' | 'max';
  readonly minDelta: number;
  readonly saveInterval?: number;
  readonly saveSteps?: number;
  readonly evalInterval?: number;
  readonly evalSteps?: number;
  readonly restartCount?: number;
  readonly logInterval?: number;
  readonly maxToKeep?: number;
  readonly keepBest?: number;
  readonly keepEvery?: number;
  readonly patience?: number;
  readonly checkpointDirName: string;
  readonly projectRoot: string;
  readonly dir?: string;
  readonly checkpointDir?: string;
  readonly logPath?: string;
  readonly checkpoint?: string;
  readonly pretrained?: string;
  readonly autoResume: boolean;
  readonly accumSteps: number;
  readonly lrScaleFactor?: number;
  readonly batchSizeBase?: number;
  readonly schedule?: ScheduleConfig;
  readonly clipNorm?: number;
  readonly clipValue?: number;
  readonly backend?: 'cpu' | 'wasm';
  readonly dataloader?: DataloaderConfig;
}

/**
 * A decoded config: the known keys, typed and defaulted, plus the user's own keys as JSON.
 * Plain JSON data: it survives `JSON.parse(JSON.stringify(config))`.
 */
export type Config = KnownConfig & { readonly [key: string]: Json | undefined };

/** Defaults of the known keys, as a config fragment. */
export const CONFIG_DEFAULTS: JsonObject = Object.freeze(
  Object.fromEntries(
    Object.entries(KNOWN_KEYS as Record<string, KeySpec>).flatMap(([k, spec]) =>
      spec.default === undefined ? [] : [[k, spec.default]],
    ),
  ),
);

/** The run's name: `config.name` when given, else `experimentName-runName` (the spec's `name`). */
export const configName = (config: Config): string =>
  config.name ?? `${config.experimentName}-${config.runName}`;

/** The run's id: the first 8 characters of experimentId then of runId (the spec's `id`). */
export const configId = (config: Config): string =>
  `${config.experimentId.slice(0, 8)}${config.runId.slice(0, 8)}`;
