import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { readConfigFile } from '../../../src/effects/storage/configFile.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'danling-configfile-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const messageOf = async (path: string): Promise<string> => {
  const r = await readConfigFile(path);
  if (E.isRight(r)) throw new Error('expected a Left');
  return r.left.message;
};

describe('readConfigFile', () => {
  it('refuses a FIFO instead of hanging', async () => {
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(await messageOf(fifo)).toBe(
      `${fifo}: not a regular file (a FIFO, device or socket); give a .yaml or .json file`,
    );
  });

  it('refuses a file over 16 MiB before reading it', async () => {
    const big = join(dir, 'big.json');
    await writeFile(big, '');
    await truncate(big, 3 * 1024 ** 3); // sparse: 3 GB that take no disk
    expect(await messageOf(big)).toBe(
      `${big}: 3221225472 bytes, over the 16777216-byte limit of a config file; keep data out of the config`,
    );
  });

  it('reads .json as JSON, .yaml and .yml as YAML, with a BOM', async () => {
    await writeFile(join(dir, 'a.json'), '\uFEFF{"seed": 1}');
    await writeFile(join(dir, 'a.yml'), 'seed: 2\n');
    await writeFile(join(dir, 'a.YAML'), 'seed: 3\n');
    expect(await readConfigFile(join(dir, 'a.json'))).toEqual(E.right({ seed: 1 }));
    expect(await readConfigFile(join(dir, 'a.yml'))).toEqual(E.right({ seed: 2 }));
    expect(await readConfigFile(join(dir, 'a.YAML'))).toEqual(E.right({ seed: 3 }));
  });

  it.each(['run.txt', 'run', 'run.toml'])('refuses the unknown extension of %s', async (name) => {
    const path = join(dir, name);
    await writeFile(path, 'seed: 1\n');
    expect(await messageOf(path)).toBe(
      `${path}: unknown config file extension; use .json (JSON), .yaml or .yml (YAML)`,
    );
  });
});
