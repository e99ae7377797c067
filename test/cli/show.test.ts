/** `danling show` and `danling diff` on real demo runs. */
import { beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { cli, fixtures, type Fixtures } from './fixtures.js';

let f: Fixtures;
beforeAll(async () => {
  f = await fixtures();
}, 120_000);

describe('danling show', () => {
  it('prints the config changes, results, verified checkpoints and starts', async () => {
    const r = await cli(['show', f.b, '--root', f.root]);
    expect(r.code, r.err).toBe(0);
    const out = r.out;
    expect(out).toMatch(/^run {7}iris-b {2}id \w{16}\n/);
    expect(out).toContain(`dir       ${f.b}\n`);
    expect(out).toContain('status    finished: reached its end\n');
    expect(out).toMatch(/progress {2}epoch 3\/3, step 24, \d+ actions\n/);
    expect(out).toContain('config (what differs from the defaults):\n');
    expect(out).toContain('  optim.lr: 0.05\n');
    expect(out).toContain('  model.hidden: [8]\n');
    expect(out).toContain('  runName: "b" (default "Run")\n');
    expect(out).toMatch(
      /\nlatest {4}epoch 2 {2}train: loss \d\.\d{4} accuracy \d\.\d{4} {2}val: loss/,
    );
    expect(out).toMatch(/\nbest {6}val\/accuracy \d\.\d{4} \(max, epoch \d\)/);
    expect(out).toMatch(/checkpoints\/latest\.safetensors +\d+ B +ok: epoch 2, step 24\n/);
    expect(out).toMatch(/checkpoints\/best\.safetensors +\d+ B +ok: epoch \d, step \d+\n/);
    expect(out).toMatch(/starts:\n {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}run started in \S+\n/);
  });

  it('says which checkpoint does not verify', async () => {
    const copy = join(await mkdtemp(join(tmpdir(), 'danling-show-')), 'run');
    await cp(f.a, copy, { recursive: true });
    const file = join(copy, 'checkpoints', 'latest.safetensors');
    const bytes = await readFile(file);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 0xff;
    await writeFile(file, bytes);
    const r = await cli(['show', copy]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /checkpoints\/latest\.safetensors +\d+ B +checkpoint .*latest\.safetensors.*checksum/,
    );
    expect(r.out).toMatch(/checkpoints\/best\.safetensors +\d+ B +ok:/);
  });

  it('lists the other starts of the same config (sibling timestamp folders)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'danling-restarts-'));
    const first = join(root, relative(f.root, f.a));
    const second = join(dirname(first), '29990101-000000');
    await cp(f.a, first, { recursive: true });
    await cp(f.killed, second, { recursive: true });
    const r = await cli(['show', first]);
    expect(r.out).toMatch(
      /\nother starts of this config \(same name-id folder\):\n {2}29990101-000000 {2}\S+ \S+ {2}epoch \d+\/60 {2}crashed\n/,
    );
    expect((await cli(['show', f.b])).out).not.toContain('other starts');
  });

  it('shows the crashed and the interrupted run with the reason', async () => {
    const killed = await cli(['show', f.killed]);
    expect(killed.out).toMatch(/status {4}crashed: pid \d+ died holding the lock/);
    const stopped = await cli(['show', f.stopped]);
    // Its checkpoints folder is a file: every save failed; training went on to its end.
    expect(stopped.out).toMatch(
      /status {4}crashed: reached its end, but run\.log: the run ends with a failed checkpoint save: /,
    );
    expect(stopped.out).toContain('checkpoints:\n  (none)\n');
  });

  it('exits 2 without a run', async () => {
    const r = await cli(['show']);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'danling show: expected one run\nUsage: danling show <run> [--root projectRoot] [--json]\nSee danling show --help.\n',
    );
  });
});

describe('danling diff', () => {
  it('prints the config difference by dotted path and the results side by side', async () => {
    const r = await cli(['diff', 'iris-a', 'iris-b', '--root', f.root]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`A  ${relative(f.root, f.a)}  (iris-a `);
    expect(r.out).toContain('config (4 differences):\n');
    expect(r.out).toContain('  model.hidden: [16] -> [8]\n');
    expect(r.out).toContain('  optim.lr: 0.01 -> 0.05\n');
    expect(r.out).toContain('  runName: "a" -> "b"\n');
    expect(r.out).toContain('  saveInterval: 1 -> 5\n');
    expect(r.out).toMatch(/\nstatus +finished +finished\n/);
    expect(r.out).toMatch(/\nval\/accuracy +\d\.\d{4} +\d\.\d{4}\n/);
    const json = JSON.parse(
      (await cli(['diff', 'iris-a', 'iris-b', '--root', f.root, '--json'])).out,
    ) as {
      config: { path: string; before: unknown; after: unknown }[];
    };
    expect(json.config).toContainEqual({ path: 'optim.lr', before: 0.01, after: 0.05 });
  });

  it('exits 2 with one run or an unknown one', async () => {
    expect((await cli(['diff', 'iris-a', '--root', f.root])).code).toBe(2);
    const r = await cli(['diff', 'iris-a', 'nope', '--root', f.root]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('danling diff: no run matches "nope"');
  });
});
