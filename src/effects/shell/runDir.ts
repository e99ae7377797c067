/**
 * The run dir at start-up, for `createRunner`: the code it runs (git), its time stamp, and what a
 * run dir already holds (another run's files, or those of an ended start of this run).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as E from 'fp-ts/lib/Either.js';
import { parseYaml } from '../../state/config/configText.js';
import { isPlainObject } from '../../state/Json.js';
import type { RunnerState } from '../../state/runner/RunnerState.js';
import { dir } from '../../state/runner/selectors.js';
import { isPidAlive } from '../storage/atomic.js';
import { readText } from '../storage/configFile.js';
import { LOCK_NAME } from '../storage/lock.js';

const run = promisify(execFile);

/** The git commit hash of the repository around `cwd`, or `undefined` outside one. */
export const gitCommit = async (cwd: string): Promise<string | undefined> => {
  try {
    const { stdout } = await run('git', ['rev-parse', 'HEAD'], { cwd, timeout: 5000 });
    const hash = stdout.trim();
    return /^[0-9a-f]{40}$/.test(hash) ? hash : undefined;
  } catch {
    return undefined;
  }
};

/** The code a run ran with: the commit, whether the tree had uncommitted changes, and their diff. */
export interface GitInfo {
  readonly commit: string;
  readonly dirty: boolean;
  /** `git diff HEAD` (uncommitted changes to tracked files); empty when clean. */
  readonly diff: string;
}

/** The commit, dirty flag and uncommitted diff of the repository around `cwd`, or `undefined`. */
export const gitInfo = async (cwd: string): Promise<GitInfo | undefined> => {
  const commit = await gitCommit(cwd);
  if (commit === undefined) return undefined;
  try {
    const { stdout } = await run('git', ['diff', 'HEAD', '--no-color', '--no-ext-diff'], {
      cwd,
      timeout: 10_000,
      maxBuffer: 64 << 20,
    });
    return { commit, dirty: stdout.length > 0, diff: stdout };
  } catch {
    return { commit, dirty: false, diff: '' };
  }
};

/** The spec's time string: `YYYYMMDD-HHMMSS` in local time. */
export const timeString = (date: Date): string => {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
};

/** A config the shell cannot start: no end, no model part for `pretrained`. */
export interface RunnerConfigProblem {
  readonly _tag: 'NoEnd' | 'NoModelPart';
  readonly message: string;
}

/** The run dir holds the files of another run (another runId). */
export interface RunDirTaken {
  readonly _tag: 'RunDirTaken';
  readonly path: string;
  readonly runId: string;
  readonly otherRunId: string;
  readonly message: string;
}

export const startError = (
  tag: RunnerConfigProblem['_tag'],
  message: string,
): RunnerConfigProblem => ({
  _tag: tag,
  message,
});

/**
 * The spec's check_dir at start-up: a run dir whose `config.yaml` belongs to another run (a
 * shared `--dir`) would have its results, checkpoints and history overwritten or mixed.
 */
export const otherRunIn = async (state: RunnerState): Promise<RunDirTaken | undefined> => {
  const file = join(dir(state), 'config.yaml');
  const text = await readText(file);
  if (E.isLeft(text)) return undefined; // no config.yaml yet: a new run dir
  const parsed = parseYaml(text.right);
  const other =
    E.isRight(parsed) && isPlainObject(parsed.right) ? parsed.right['runId'] : undefined;
  if (typeof other !== 'string' || other === state.config.runId) return undefined;
  const otherName =
    E.isRight(parsed) && isPlainObject(parsed.right)
      ? (parsed.right['name'] ?? parsed.right['experimentName'])
      : undefined;
  return {
    _tag: 'RunDirTaken',
    path: dir(state),
    runId: state.config.runId,
    otherRunId: other,
    message: `${dir(state)} holds another run (runId ${other}${typeof otherName === 'string' ? `, ${otherName}` : ''}, see its config.yaml); this run is runId ${state.config.runId}. Choose another dir (--dir), resume that run with its own config, or remove ${dir(state)}`,
  };
};

/** Whether `folder` holds the files of a start that has ended (no live holder of its lock). */
export const endedRunIn = (folder: string): boolean => {
  if (!existsSync(join(folder, 'config.yaml'))) return false;
  try {
    const holder = JSON.parse(readFileSync(join(folder, LOCK_NAME), 'utf8')) as {
      pid?: unknown;
      hostname?: unknown;
    };
    const live =
      holder.hostname === hostname() && typeof holder.pid === 'number' && isPidAlive(holder.pid);
    return !live;
  } catch {
    return true; // no lock (released), or not readable: not a live run's
  }
};
