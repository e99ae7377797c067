/** `danling clean` on a copy of the fixture runs: the SIGKILLed run's lock, dead writers' files. */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { appendFile, cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { cli, fixtures, type Fixtures } from './fixtures.js';

let f: Fixtures;
let root = '';
/** A pid that is certainly dead: a child that has exited. */
let deadPid = 0;
beforeAll(async () => {
  f = await fixtures();
  root = join(await mkdtemp(join(tmpdir(), 'danling-clean-')), 'experiments');
  await cp(f.root, root, { recursive: true });
  const child = spawn(process.execPath, ['-e', '0']);
  deadPid = child.pid ?? 0;
  await new Promise((r) => child.on('close', r));
}, 120_000);

describe('danling clean', () => {
  it('lists the stale lock and dead temp files in a dry run, then removes them with --yes', async () => {
    const killed = join(root, relative(f.root, f.killed));
    const temp = join(killed, `.latest.json.tmp-${deadPid}-0123abcd`);
    const live = join(killed, `.metrics.csv.tmp-${process.pid}-0123abcd`);
    await writeFile(temp, 'half');
    await writeFile(live, 'still writing');
    const dry = await cli(['clean', root]);
    expect(dry.code, dry.err).toBe(0);
    const rel = relative(root, killed);
    expect(dry.out).toMatch(
      new RegExp(
        `would remove  ${rel}/\\.lock  \\(a stale lock: pid \\d+ on .+ is not running\\)\\n`,
      ),
    );
    expect(dry.out).toContain(
      `would remove  ${rel}/.latest.json.tmp-${deadPid}-0123abcd  (a temporary file of pid ${deadPid}, which is not running)\n`,
    );
    expect(dry.out).not.toContain('.metrics.csv.tmp-');
    // The SIGKILL may also have left a temporary file of its own (a write it interrupted).
    const listed = dry.out.split('\n').filter((l) => l.startsWith('would remove  ')).length;
    expect(listed).toBeGreaterThanOrEqual(2);
    expect(dry.out).toContain(`dry run: ${listed} files; run again with --yes to remove them\n`);
    expect(existsSync(join(killed, '.lock'))).toBe(true);

    const yes = await cli(['clean', root, '--yes']);
    expect(yes.code).toBe(0);
    expect(yes.out).toContain(`removed  ${rel}/.lock  (`);
    expect(existsSync(join(killed, '.lock'))).toBe(false);
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(await readdir(killed)).toContain('history.jsonl');
    expect((await cli(['clean', root])).out).toBe(`nothing to clean under ${root}\n`);
    // Without its lock the killed run reads as closed early.
    const runs = JSON.parse((await cli(['runs', root, '--json'])).out) as {
      dir: string;
      status: string;
    }[];
    expect(runs.find((r) => r.dir === killed)?.status).toBe('interrupted');
  });

  it("finds epoch-N checkpoints beyond the keep rule: --keep N, or the run's maxToKeep", async () => {
    const copy = join(await mkdtemp(join(tmpdir(), 'danling-keep-')), 'experiments');
    await cp(f.root, copy, { recursive: true });
    const a = join(copy, relative(f.root, f.a));
    const rel = relative(copy, a);
    const dry = await cli(['clean', copy, '--keep', '1']);
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain(
      `would remove  ${rel}/checkpoints/epoch-1.safetensors  (beyond the keep rule (--keep 1: epoch-2 stay))\n`,
    );
    expect(dry.out).toContain(`would remove  ${rel}/checkpoints/epoch-0.safetensors  (`);
    expect(dry.out).not.toContain('epoch-2.safetensors');
    // The run's own rule: maxToKeep in its config.yaml.
    await appendFile(join(a, 'config.yaml'), 'maxToKeep: 2\n');
    const own = await cli(['clean', copy]);
    expect(own.out).toContain(
      `would remove  ${rel}/checkpoints/epoch-0.safetensors  (beyond the keep rule (maxToKeep 2: epoch-2, epoch-1 stay))\n`,
    );
    expect(own.out).not.toContain('epoch-1.safetensors  (');
    expect((await cli(['clean', copy, '--yes'])).code).toBe(0);
    expect((await readdir(join(a, 'checkpoints'))).sort()).toEqual([
      'best.safetensors',
      'epoch-1.safetensors',
      'epoch-2.safetensors',
      'latest.safetensors',
    ]);
    expect((await cli(['ckpt', join(a, 'checkpoints', 'best.safetensors')])).code).toBe(0);
    expect((await cli(['clean', copy, '--keep', 'x'])).code).toBe(2);
  });

  it('--orphans: run dirs of runs that ended before their first checkpoint, removed whole', async () => {
    const own = join(await mkdtemp(join(tmpdir(), 'danling-orphans-')), 'experiments');
    await cp(f.root, own, { recursive: true });
    // A run killed before its first checkpoint: its config, run.log and metrics, nothing else.
    const orphan = join(own, relative(f.root, f.a));
    await rm(join(orphan, 'checkpoints'), { recursive: true });
    await rm(join(orphan, 'results.json'));
    const stopped = join(own, relative(f.root, f.stopped)); // every save failed: no checkpoint
    const without = await cli(['clean', own]);
    expect(without.out).not.toContain('ended before its first checkpoint');
    const dry = await cli(['clean', own, '--orphans']);
    const listed = dry.out
      .split('\n')
      .filter((l) => l.includes('ended before its first checkpoint'))
      .map((l) => l.split('  ')[1]);
    expect(listed.sort()).toEqual([relative(own, orphan), relative(own, stopped)].sort());
    expect(existsSync(orphan)).toBe(true);
    const done = await cli(['clean', own, '--orphans', '--yes']);
    expect(done.code, done.err).toBe(0);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(stopped)).toBe(false);
    for (const kept of [f.b, f.killed, f.sigterm])
      expect(existsSync(join(own, relative(f.root, kept)))).toBe(true);
  });

  it('exits 2 for a missing folder', async () => {
    const r = await cli(['clean', join(root, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`danling clean: ${join(root, 'nope')} does not exist`);
  });
});
