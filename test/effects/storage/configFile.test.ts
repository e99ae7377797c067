import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { readConfigArgs, readConfigFile } from '../../../src/effects/storage/configFile.js';

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

describe('readConfigArgs', () => {
  it('the default files unless files are named, then --config files, then the overrides', async () => {
    const base = join(dir, 'args-base.yaml');
    const other = join(dir, 'args-other.json');
    const extra = join(dir, 'args-extra.yaml');
    await writeFile(base, 'epochEnd: 5\noptim:\n  lr: 0.1\n  name: adam\n');
    await writeFile(other, '{"epochEnd": 7, "optim": {"lr": 0.3}}');
    await writeFile(extra, 'seed: 3\noptim:\n  lr: 0.2\n');
    const defaults = { defaults: [base] };
    expect(await readConfigArgs(['--optim.lr', '0.05'], defaults)).toEqual(
      E.right({ epochEnd: 5, optim: { lr: 0.05, name: 'adam' } }),
    );
    // A file named on the command line replaces the defaults; --config files come after it.
    expect(await readConfigArgs([other, '--config', extra, '--epochEnd', '9'], defaults)).toEqual(
      E.right({ epochEnd: 9, optim: { lr: 0.2 }, seed: 3 }),
    );
  });

  it('a missing file or a bad argument: the error names it', async () => {
    const missing = join(dir, 'args-missing.yaml');
    const r = await readConfigArgs([], { defaults: [missing] });
    expect(E.isLeft(r) && r.left.message).toBe(`${missing}: no such file; check the path`);
    const noFile = await readConfigArgs(['--config'], {});
    expect(E.isLeft(noFile) && noFile.left.message).toBe(
      '--config: expected a file after --config, e.g. --config run.yaml',
    );
  });
});
