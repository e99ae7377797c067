import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { parallelContext } from '../../../src/effects/shell/parallel.js';

describe('parallelContext', () => {
  it.each([
    [{}, { rank: 0, worldSize: 1, localRank: 0 }],
    [
      { RANK: '3', WORLD_SIZE: '8', LOCAL_RANK: '1' },
      { rank: 3, worldSize: 8, localRank: 1 },
    ],
    [
      { SLURM_PROCID: '2', SLURM_NTASKS: '4', SLURM_LOCALID: '0' },
      { rank: 2, worldSize: 4, localRank: 0 },
    ],
    [
      { OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '1' },
      { rank: 1, worldSize: 2, localRank: 1 },
    ],
    [
      { RANK: '1', WORLD_SIZE: '2', SLURM_PROCID: '1', SLURM_NTASKS: '2' },
      { rank: 1, worldSize: 2, localRank: 0 },
    ],
  ])('%j -> %j', (env, expected) => {
    expect(parallelContext(env)).toEqual(E.right(expected));
  });

  it.each([
    [{ RANK: 'one' }, 'invalid launcher environment:\nRANK="one": expected a non-negative integer'],
    [
      { RANK: '-1', WORLD_SIZE: '2' },
      'invalid launcher environment:\nRANK="-1": expected a non-negative integer',
    ],
    [
      { RANK: '2', WORLD_SIZE: '2' },
      'invalid launcher environment:\nRANK=2 is not below WORLD_SIZE=2: ranks run from 0 to worldSize - 1',
    ],
    [
      { RANK: '1' },
      'invalid launcher environment:\nRANK=1 is not below WORLD_SIZE=1 (unset: 1): ranks run from 0 to worldSize - 1',
    ],
    [
      { SLURM_PROCID: '3' },
      'invalid launcher environment:\nSLURM_PROCID=3 is not below SLURM_NTASKS=1 (unset: 1): ranks run from 0 to worldSize - 1',
    ],
    [
      { RANK: '9007199254740993', WORLD_SIZE: '9007199254740995' },
      'invalid launcher environment:\nRANK="9007199254740993": expected an integer of at most 2^53 - 1\nWORLD_SIZE="9007199254740995": expected an integer of at most 2^53 - 1',
    ],
    [
      { WORLD_SIZE: '0' },
      'invalid launcher environment:\nWORLD_SIZE=0: expected at least 1 process',
    ],
    [
      { RANK: '1', WORLD_SIZE: '4', SLURM_PROCID: '2', SLURM_NTASKS: '4' },
      "invalid launcher environment:\nRANK=1 and SLURM_PROCID=2 disagree; unset one of them, or read one launcher only ({ launcher: 'torchrun' }, e.g. torchrun inside a Slurm job)",
    ],
    [
      { LOCAL_RANK: '3', WORLD_SIZE: '2' },
      'invalid launcher environment:\nLOCAL_RANK=3 is not below the world size 2',
    ],
  ])('%j is an error naming the variables', (env, message) => {
    const r = parallelContext(env);
    expect(E.isLeft(r) && r.left.message).toBe(message);
  });

  it('reads one launcher only when told (torchrun inside a Slurm job)', () => {
    const env = {
      RANK: '5',
      WORLD_SIZE: '8',
      LOCAL_RANK: '1',
      SLURM_PROCID: '1',
      SLURM_NTASKS: '2',
    };
    expect(parallelContext(env, { launcher: 'torchrun' })).toEqual(
      E.right({ rank: 5, worldSize: 8, localRank: 1 }),
    );
  });
});
