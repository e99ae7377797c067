/**
 * Finding and reading run dirs for the CLI: the runs under a project root, what each one is
 * (name, id, progress, best score, status), and run selectors (a dir, a name or an id prefix).
 * Read-only: nothing here writes to a run.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { peekCheckpointProgress } from '../effects/checkpoint/checkpointFile.js';
import { replayLog } from '../effects/run/historyReader.js';
import { isPidAlive } from '../effects/storage/atomic.js';
import { readConfigFile } from '../effects/storage/configFile.js';
import { LOCK_NAME } from '../effects/storage/lock.js';
import { CONFIG_DEFAULTS } from '../state/config/Config.js';
import { configDiff, type ConfigChange } from '../state/config/configDiff.js';
import { isPlainObject, type Json, type JsonObject } from '../state/Json.js';
import type { RunnerState } from '../state/runner/RunnerState.js';
import {
  bestIndex,
  bestScore,
  isFinished,
  latestResult,
  latestScore,
  patienceExhausted,
  scoreMode,
  scoreSplit,
} from '../state/runner/selectors.js';

/** What a run is doing, from its files. */
export type RunStatus = 'running' | 'finished' | 'interrupted' | 'crashed';

/** One run dir, as the CLI shows it. */
export interface RunInfo {
  readonly dir: string;
  readonly name: string;
  readonly id: string;
  /** The run dir's timestamp (`20261202-031542`), from the state or the folder name. */
  readonly timestamp: string;
  /** The timestamp as `2026-12-02 03:15:42`. */
  readonly started: string;
  readonly config: JsonObject;
  /** The state rebuilt from `history.jsonl`, when it could be. */
  readonly state?: RunnerState;
  /** Actions in the history. */
  readonly actions?: number;
  readonly status: RunStatus;
  /** Why the status is what it is, in words. */
  readonly why: string;
  readonly progress: {
    readonly epoch: number;
    readonly step: number;
    readonly epochEnd?: number;
    readonly stepEnd?: number;
  };
  readonly best?: {
    readonly split: string | null;
    readonly name: string;
    readonly mode: string;
    readonly value: number;
    readonly epoch: number | null;
  };
  readonly latest?: { readonly value: number | undefined; readonly epoch: number };
  /** Files that could not be read, one message each. */
  readonly problems: readonly string[];
}

const RUN_FILES = ['config.yaml', 'history.jsonl'];

const isDir = async (p: string): Promise<boolean> => {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
};

/** Whether `dir` is a run dir (holds `config.yaml` or `history.jsonl`). */
export const isRunDir = async (dir: string): Promise<boolean> => {
  for (const f of RUN_FILES) {
    try {
      if ((await stat(path.join(dir, f))).isFile()) return true;
    } catch {
      // not this one
    }
  }
  return false;
};

/**
 * The run dirs under `root` (the root itself when it is one), at most `depth` folders down
 * (`projectRoot/name-id/timestamp` is 2), never inside a checkpoints folder. Sorted by path.
 */
export const findRunDirs = async (root: string, depth = 3): Promise<string[]> => {
  const out: string[] = [];
  const walk = async (dir: string, left: number): Promise<void> => {
    if (await isRunDir(dir)) {
      out.push(dir);
      return;
    }
    if (left === 0) return;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      if (n.startsWith('.') || n === 'checkpoints') continue;
      const sub = path.join(dir, n);
      if (await isDir(sub)) await walk(sub, left - 1);
    }
  };
  await walk(path.resolve(root), depth);
  return out;
};

/** The `.lock` of a run dir: its holder, and whether that process is alive. */
export const readLock = async (
  dir: string,
): Promise<{ pid: number; hostname: string; startedAt: string; alive: boolean } | undefined> => {
  let text: string;
  try {
    text = await readFile(path.join(dir, LOCK_NAME), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as { pid?: unknown; hostname?: unknown; startedAt?: unknown };
    const pid = typeof v.pid === 'number' ? v.pid : -1;
    const host = typeof v.hostname === 'string' ? v.hostname : '';
    return {
      pid,
      hostname: host,
      startedAt: typeof v.startedAt === 'string' ? v.startedAt : '',
      // A lock from another host cannot be checked from here: count it as alive.
      alive: host !== hostname() || isPidAlive(pid),
    };
  } catch {
    return { pid: -1, hostname: '', startedAt: '', alive: false };
  }
};

/** One line of run.log, as much as the CLI reads of it. */
export interface LogLine {
  readonly level: number;
  readonly time: number;
  readonly msg: string;
}

/** The lines of `run.log` (JSON lines; others skipped); the last `tailBytes` only when given. */
export const readRunLog = async (dir: string, tailBytes?: number): Promise<LogLine[]> => {
  let text: string;
  try {
    const buf = await readFile(path.join(dir, 'run.log'));
    text = (
      tailBytes === undefined ? buf : buf.subarray(Math.max(0, buf.length - tailBytes))
    ).toString('utf8');
  } catch {
    return [];
  }
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as { level?: unknown; time?: unknown; msg?: unknown };
      if (typeof v.level === 'number')
        out.push({
          level: v.level,
          time: typeof v.time === 'number' ? v.time : 0,
          msg: typeof v.msg === 'string' ? v.msg : '',
        });
    } catch {
      // a torn line
    }
  }
  return out;
};

const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: Json | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

/** `20261202-031542` as `2026-12-02 03:15:42` (anything else as it is). */
export const showTimestamp = (t: string): string => {
  const m = /^(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)$/.exec(t);
  return m === null ? t : `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}`;
};

/** A run's name and id from its config (as `configName` / `configId` make them). */
export const runIdentity = (config: JsonObject): { name: string; id: string } => ({
  name:
    str(config['name']) ??
    `${str(config['experimentName']) ?? str(CONFIG_DEFAULTS['experimentName']) ?? '?'}-${
      str(config['runName']) ?? str(CONFIG_DEFAULTS['runName']) ?? '?'
    }`,
  id: `${(str(config['experimentId']) ?? '').slice(0, 8)}${(str(config['runId']) ?? '').slice(0, 8)}`,
});

/** Only what a selector matches on: name and id from config.yaml (no replay). */
const readRunHead = async (dir: string): Promise<{ name: string; id: string; started: string }> => {
  const read = await readConfigFile(path.join(dir, 'config.yaml'));
  const config = E.isRight(read) && isPlainObject(read.right) ? (read.right as JsonObject) : {};
  return { ...runIdentity(config), started: showTimestamp(path.basename(dir)) };
};

/**
 * Reads one run dir: its config, the state replayed from `history.jsonl`, the lock and the tail
 * of run.log, and decides the status:
 * - `running`: the lock is held by a live process;
 * - `finished`: the progress reached `epochEnd` / `stepEnd` (or `patience` stopped it);
 * - `crashed`: an error in the run.log tail, or the lock left by a process that died holding it
 *   (killed, out of memory, power loss);
 * - `interrupted`: closed (lock released) before its end: a graceful stop (SIGINT / SIGTERM,
 *   named from run.log), or the training loop returned early.
 */
export const readRun = async (dir: string): Promise<RunInfo> => {
  const problems: string[] = [];
  let config: JsonObject = {};
  const read = await readConfigFile(path.join(dir, 'config.yaml'));
  if (E.isRight(read) && isPlainObject(read.right)) config = read.right as JsonObject;
  else if (E.isLeft(read)) problems.push(read.left.message);

  let state: RunnerState | undefined;
  let actions: number | undefined;
  const replayed = await replayLog(path.join(dir, 'history.jsonl'));
  if (E.isRight(replayed)) {
    state = replayed.right.state;
    actions = replayed.right.actions;
    if (Object.keys(config).length === 0) config = state.config as unknown as JsonObject;
  } else problems.push(replayed.left.message);

  const { name, id } = runIdentity(config);
  const timestamp = state?.timestamp ?? path.basename(dir);
  const epochEnd = num(config['epochEnd']);
  const stepEnd = num(config['stepEnd']);

  let epoch = 0;
  let step = 0;
  if (state !== undefined) {
    // Epochs done: the latest result's epoch + 1 (an epoch counts once its result is in).
    const latest = latestResult(state);
    epoch = latest === null ? state.progress.epoch : Math.max(latest.index + 1, 0);
    step = state.progress.step;
  } else {
    const peek = await peekCheckpointProgress(path.join(dir, 'checkpoints', 'latest.safetensors'));
    if (peek !== undefined) {
      epoch = peek.epoch + 1;
      step = peek.step;
    }
  }
  const progress = {
    epoch,
    step,
    ...(epochEnd === undefined ? {} : { epochEnd }),
    ...(stepEnd === undefined ? {} : { stepEnd }),
  };

  const lock = await readLock(dir);
  const finished =
    state !== undefined
      ? isFinished(state) || patienceExhausted(state)
      : (epochEnd !== undefined && epoch >= epochEnd) || (stepEnd !== undefined && step >= stepEnd);
  const tail = await readRunLog(dir, 64 * 1024);
  const lastError = [...tail].reverse().find((l) => l.level >= 50);
  // An error logged after the last start (a failed checkpoint save at the end) fails a run
  // that reached its end all the same.
  const lastStart = tail.findLastIndex(
    (l) => l.msg.startsWith('run started') || l.msg.startsWith('run resumed from'),
  );
  const endError = tail.slice(lastStart + 1).find((l) => l.level >= 50);
  let status: RunStatus;
  let why: string;
  if (lock?.alive === true) {
    status = 'running';
    why = `the lock is held by pid ${lock.pid} on ${lock.hostname}`;
  } else if (lock !== undefined) {
    status = 'crashed';
    why = `pid ${lock.pid} died holding the lock (killed, out of memory, or a power loss)`;
  } else if (finished && endError !== undefined) {
    status = 'crashed';
    why = `reached its end, but run.log: ${endError.msg.split('\n')[0] ?? ''}`;
  } else if (finished) {
    status = 'finished';
    why =
      state !== undefined && patienceExhausted(state) && !isFinished(state)
        ? `stopped early (patience ${String(state.config.patience)})`
        : 'reached its end';
  } else if (lastError !== undefined) {
    status = 'crashed';
    why = `run.log: ${lastError.msg.split('\n')[0] ?? ''}`;
  } else {
    status = 'interrupted';
    // A graceful stop (SIGINT / SIGTERM) says so in run.log.
    const stop = [...tail].reverse().find((l) => l.msg.startsWith('interrupted by '));
    why = stop === undefined ? 'closed before its end' : `run.log: ${stop.msg}`;
  }

  let best: RunInfo['best'];
  let latest: RunInfo['latest'];
  if (state !== undefined) {
    const value = bestScore(state);
    if (value !== undefined)
      best = {
        split: scoreSplit(state),
        name: state.config.scoreName,
        mode: scoreMode(state),
        value,
        epoch: bestIndex(state),
      };
    const l = latestResult(state);
    if (l !== null) latest = { value: latestScore(state), epoch: l.index };
  }
  return {
    dir,
    name,
    id,
    timestamp,
    started: showTimestamp(timestamp),
    config,
    ...(state === undefined ? {} : { state }),
    ...(actions === undefined ? {} : { actions }),
    status,
    why,
    progress,
    ...(best === undefined ? {} : { best }),
    ...(latest === undefined ? {} : { latest }),
    problems,
  };
};

/** The runs under `root`, oldest first (by timestamp, then dir). */
export const listRuns = async (root: string): Promise<RunInfo[]> => {
  const dirs = await findRunDirs(root);
  const runs = await Promise.all(dirs.map(readRun));
  return runs.sort((a, b) =>
    a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : a.dir < b.dir ? -1 : 1,
  );
};

/** `epoch 3/3` or `step 40/100`: the progress against the run's end. */
export const showProgress = (p: RunInfo['progress']): string =>
  p.epochEnd !== undefined || p.stepEnd === undefined
    ? `epoch ${p.epoch}/${p.epochEnd === undefined ? '?' : String(p.epochEnd)}`
    : `step ${p.step}/${p.stepEnd}`;

/** A number as the CLI prints scores: 4 decimals. */
export const fmt = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(4));

/** `val/accuracy 0.9000 (max, epoch 0)`. */
export const showBest = (b: RunInfo['best']): string =>
  b === undefined
    ? '-'
    : `${b.split ?? '?'}/${b.name} ${fmt(b.value)} (${b.mode}${b.epoch === null ? '' : `, epoch ${b.epoch}`})`;

/**
 * Resolves a run selector: a run dir path, a run name (`iris-mlp`), a `name-id` folder, or a
 * prefix of the id, searched under `root`. Ambiguity and no match are errors that name the
 * candidates.
 */
export const selectRuns = async (
  selector: string,
  root: string,
  options: { readonly many?: boolean; readonly cwd?: string } = {},
): Promise<E.Either<string, string[]>> => {
  const asPath = path.resolve(options.cwd ?? process.cwd(), selector);
  if (await isDir(asPath)) {
    const found = await findRunDirs(asPath);
    if (found.length === 1 || (options.many === true && found.length > 0)) return E.right(found);
    if (found.length === 0)
      return E.left(
        `${selector}: no run dir in this folder (a run dir holds config.yaml or history.jsonl)`,
      );
    return E.left(
      `${selector} holds ${found.length} runs; name one of them:\n${found.map((d) => `  ${d}`).join('\n')}`,
    );
  }
  const runs = await Promise.all(
    (await findRunDirs(root)).map(async (d) => ({ d, r: await readRunHead(d) })),
  );
  if (runs.length === 0)
    return E.left(
      `${selector}: not a folder, and there are no runs under ${path.resolve(root)} (use --root DIR)`,
    );
  const rel = (d: string): string => path.relative(path.resolve(root), d);
  const matches = runs.filter(
    ({ d, r }) =>
      r.name === selector ||
      `${r.name}-${r.id}` === selector ||
      (selector.length >= 2 && r.id.startsWith(selector)) ||
      rel(d) === selector ||
      path.dirname(rel(d)) === selector,
  );
  const line = ({
    d,
    r,
  }: {
    d: string;
    r: { name: string; id: string; started: string };
  }): string => `  ${rel(d)}  (${r.name} ${r.id}, ${r.started})`;
  if (matches.length === 0)
    return E.left(
      `no run matches ${JSON.stringify(selector)} under ${path.resolve(root)} (a run dir, a name or an id prefix); the runs are:\n${runs.map(line).join('\n')}`,
    );
  if (matches.length > 1 && options.many !== true)
    return E.left(
      `${JSON.stringify(selector)} is ambiguous: it matches ${matches.length} runs; give the run dir or more of the id:\n${matches.map(line).join('\n')}`,
    );
  return E.right(matches.map((m) => m.d));
};

/** `a` with an empty object wherever `b` has an object and `a` has nothing (for leaf diffs). */
const skeleton = (a: Json | undefined, b: Json | undefined): Json | undefined => {
  if (!isPlainObject(b)) return a;
  if (a === undefined) return skeleton({}, b);
  if (!isPlainObject(a)) return a;
  const out: Record<string, Json> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const s = skeleton(a[k], v);
    if (s !== undefined) out[k] = s;
  }
  return out;
};

/**
 * {@link configDiff} down to the leaves: an object present on one side only is compared key by
 * key against nothing (`optim.lr: (unset) -> 0.01`, not `optim: (unset) -> {...}`).
 */
export const leafDiff = (a: Json | undefined, b: Json | undefined): ConfigChange[] =>
  configDiff(skeleton(a, b), skeleton(b, a));

/**
 * The one run dir each selector names, under `--root` (default `experiments`, from the cwd), for
 * a command that takes runs: a selector that names none or several is reported as
 * `danling <command>: ...` and gives `undefined` (the command exits 2).
 */
export const selectRunDirs = async (
  command: string,
  selectors: readonly string[],
  flags: Readonly<Record<string, unknown>>,
  io: { readonly cwd?: string; readonly err: (text: string) => void },
): Promise<
  { readonly dirs: string[]; readonly cwd: string; readonly root: string } | undefined
> => {
  const cwd = io.cwd ?? process.cwd();
  const root = path.resolve(cwd, typeof flags['root'] === 'string' ? flags['root'] : 'experiments');
  const dirs: string[] = [];
  for (const selector of selectors) {
    const s = await selectRuns(selector, root, { cwd });
    if (E.isLeft(s)) {
      io.err(`danling ${command}: ${s.left}\n`);
      return undefined;
    }
    dirs.push(s.right[0] as string);
  }
  return { dirs, cwd, root };
};
