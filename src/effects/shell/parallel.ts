/**
 * The spec's init_distributed, for launchers: the process's rank, world size and local rank from
 * the environment variables of torchrun-style launchers, Slurm and Open MPI.
 */
import * as E from 'fp-ts/lib/Either.js';
import type { ParallelContext } from '../../state/runner/RunnerState.js';

/** The environment variables a launcher sets for rank, world size and local rank. */
export const LAUNCHERS = [
  { name: 'torchrun', rank: 'RANK', worldSize: 'WORLD_SIZE', localRank: 'LOCAL_RANK' },
  { name: 'Slurm', rank: 'SLURM_PROCID', worldSize: 'SLURM_NTASKS', localRank: 'SLURM_LOCALID' },
  {
    name: 'Open MPI',
    rank: 'OMPI_COMM_WORLD_RANK',
    worldSize: 'OMPI_COMM_WORLD_SIZE',
    localRank: 'OMPI_COMM_WORLD_LOCAL_RANK',
  },
] as const;

/** The launcher's variables do not describe a valid process: which ones, and why. */
export interface LauncherError {
  readonly _tag: 'LauncherEnvInvalid';
  readonly variables: readonly string[];
  readonly message: string;
}

type Field = 'rank' | 'worldSize' | 'localRank';

/**
 * Reads the parallel context from `env` (default `process.env`). Variables of several launchers
 * may be set together as long as they agree; where they legitimately differ (torchrun inside a
 * Slurm job, whose SLURM_PROCID counts nodes), name the launcher to read (`{ launcher }`). Unset means rank 0 of
 * 1. A value that is not a non-negative integer, a world size of 0, a rank not below the world
 * size, or launchers that disagree are errors naming the variables.
 *
 * @example
 * parallelContext({ RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1' }) // Right({ rank: 1, worldSize: 4, localRank: 1 })
 */
export const parallelContext = (
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: { readonly launcher?: (typeof LAUNCHERS)[number]['name'] } = {},
): E.Either<LauncherError, ParallelContext> => {
  const problems: { variables: string[]; text: string }[] = [];
  const found: Record<Field, { value: number; variable: string } | undefined> = {
    rank: undefined,
    worldSize: undefined,
    localRank: undefined,
  };
  const launchers =
    options.launcher === undefined
      ? LAUNCHERS
      : LAUNCHERS.filter((l) => l.name === options.launcher);
  for (const launcher of launchers) {
    for (const field of ['rank', 'worldSize', 'localRank'] as const) {
      const variable = launcher[field];
      const raw = env[variable];
      if (raw === undefined || raw === '') continue;
      if (!/^\d+$/.test(raw.trim())) {
        problems.push({
          variables: [variable],
          text: `${variable}=${JSON.stringify(raw)}: expected a non-negative integer`,
        });
        continue;
      }
      const value = Number(raw.trim());
      if (!Number.isSafeInteger(value)) {
        problems.push({
          variables: [variable],
          text: `${variable}=${JSON.stringify(raw)}: expected an integer of at most 2^53 - 1`,
        });
        continue;
      }
      const seen = found[field];
      if (seen === undefined) found[field] = { value, variable };
      else if (seen.value !== value) {
        problems.push({
          variables: [seen.variable, variable],
          text: `${seen.variable}=${seen.value} and ${variable}=${value} disagree; unset one of them, or read one launcher only ({ launcher: 'torchrun' }, e.g. torchrun inside a Slurm job)`,
        });
      }
    }
  }
  const rank = found.rank?.value ?? 0;
  const worldSize = found.worldSize?.value ?? 1;
  const localRank = found.localRank?.value ?? 0;
  if (found.worldSize !== undefined && worldSize === 0) {
    problems.push({
      variables: [found.worldSize.variable],
      text: `${found.worldSize.variable}=0: expected at least 1 process`,
    });
  } else if (rank >= worldSize) {
    // With no world size set, blame the world-size variable of the launcher that set the rank.
    const rankVar = found.rank?.variable ?? 'RANK';
    const own = LAUNCHERS.find((l) => l.rank === rankVar)?.worldSize ?? 'WORLD_SIZE';
    const vars = [rankVar, found.worldSize?.variable ?? own];
    problems.push({
      variables: vars,
      text: `${vars[0] ?? ''}=${rank} is not below ${vars[1] ?? ''}=${worldSize}${found.worldSize === undefined ? ' (unset: 1)' : ''}: ranks run from 0 to worldSize - 1`,
    });
  }
  if (localRank >= worldSize && found.localRank !== undefined && problems.length === 0) {
    problems.push({
      variables: [found.localRank.variable],
      text: `${found.localRank.variable}=${localRank} is not below the world size ${worldSize}`,
    });
  }
  if (problems.length > 0) {
    return E.left({
      _tag: 'LauncherEnvInvalid',
      variables: problems.flatMap((p) => p.variables),
      message: `invalid launcher environment:\n${problems.map((p) => p.text).join('\n')}`,
    });
  }
  return E.right({ rank, worldSize, localRank });
};

/** The spec's init_distributed: the parallel context of this process (see {@link parallelContext}). */
export const initDistributed = parallelContext;

/** The launcher's restart count of this job, and the variable it came from. */
export interface RestartCount {
  readonly count: number;
  readonly variable: string;
}

/**
 * How often the launcher restarted this job: `SLURM_RESTART_COUNT` (a requeue after preemption)
 * or `TORCHELASTIC_RESTART_COUNT` (torchrun's elastic restarts); `undefined` when neither is set
 * to a non-negative integer.
 */
export const restartCount = (
  env: Readonly<Record<string, string | undefined>>,
): RestartCount | undefined => {
  for (const variable of ['SLURM_RESTART_COUNT', 'TORCHELASTIC_RESTART_COUNT']) {
    const text = env[variable];
    if (text === undefined || !/^\d{1,9}$/.test(text.trim())) continue;
    return { count: Number(text.trim()), variable };
  }
  return undefined;
};
