/** `danling runs` and the run selectors, on run dirs made by real demo runs. */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { cli, fixtures, type Fixtures } from './fixtures.js';

let f: Fixtures;
beforeAll(async () => {
  f = await fixtures();
}, 120_000);

describe('danling runs', () => {
  it('prints one line per run with progress, best score and status, oldest first', async () => {
    const r = await cli(['runs', f.root]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^STARTED\s+NAME\s+ID\s+PROGRESS\s+BEST\s+STATUS\s+DIR$/);
    expect(lines).toHaveLength(6);
    const line = (dir: string): string =>
      lines.find((l) => l.endsWith(relative(f.root, dir))) ?? '';
    expect(line(f.a)).toMatch(
      /iris-a\s+\w{16}\s+epoch 3\/3\s+val\/accuracy 0\.\d{4} \(max, epoch \d\)\s+finished\s/,
    );
    expect(line(f.b)).toMatch(/iris-b\s+\w{16}\s+epoch 3\/3\s+val\/accuracy .* finished\s/);
    expect(line(f.killed)).toMatch(
      /iris-killed\s+\w{16}\s+epoch \d+\/60\s+val\/accuracy .* crashed\s/,
    );
    expect(line(f.sigterm)).toMatch(
      /iris-sigterm\s+\w{16}\s+epoch \d+\/60\s+val\/accuracy .* interrupted\s/,
    );
    expect(line(f.stopped)).toMatch(
      /iris-stopped\s+\w{16}\s+epoch 3\/3\s+val\/accuracy .* crashed\s/,
    );
    const started = lines.slice(1).map((l) => l.slice(0, 19));
    expect([...started].sort()).toEqual(started);
  });

  it('--json gives the same runs with the reason for each status', async () => {
    const r = await cli(['runs', f.root, '--json']);
    expect(r.code).toBe(0);
    const runs = JSON.parse(r.out) as {
      dir: string;
      status: string;
      why: string;
      progress: { epoch: number; epochEnd: number };
      best: { split: string; name: string; mode: string; value: number } | null;
    }[];
    const by = new Map(runs.map((x) => [x.dir, x]));
    expect(by.get(f.a)?.status).toBe('finished');
    expect(by.get(f.a)?.progress).toMatchObject({ epoch: 3, epochEnd: 3 });
    expect(by.get(f.a)?.best).toMatchObject({ split: 'val', name: 'accuracy', mode: 'max' });
    expect(by.get(f.killed)?.status).toBe('crashed');
    expect(by.get(f.killed)?.why).toMatch(/^pid \d+ died holding the lock/);
    expect(by.get(f.killed)?.progress.epoch).toBeGreaterThanOrEqual(1);
    expect(by.get(f.killed)?.progress.epoch).toBeLessThan(60);
    // Every checkpoint save failed (its checkpoints folder is a file); training went on.
    expect(by.get(f.stopped)?.status).toBe('crashed');
    expect(by.get(f.stopped)?.why).toMatch(
      /^reached its end, but run\.log: the run ends with a failed checkpoint save: /,
    );
    expect(by.get(f.sigterm)?.status).toBe('interrupted');
    expect(by.get(f.sigterm)?.why).toMatch(
      /^run\.log: interrupted by SIGTERM at epoch \d+, step \d+; resume with --autoResume true$/,
    );
  });

  it('says so for a folder without runs, and exits 2 on bad input', async () => {
    expect((await cli(['runs', `${f.root}/nothing-here`])).out).toBe(
      `no runs under ${f.root}/nothing-here\n`,
    );
    const bad = await cli(['runs', f.root, '--jsn']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain(
      'danling runs: unknown option --jsn; this command takes --help, --json',
    );
    expect((await cli(['runs', 'a', 'b'])).code).toBe(2);
    const help = await cli(['runs', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: danling runs \[projectRoot\] \[--json\]\n/);
  });
});

describe('a live run', () => {
  it('is running while a live process holds its lock, and crashed once that process is killed', async () => {
    const root = await mkdtemp(join(tmpdir(), 'danling-live-'));
    const dir = join(root, 'iris-stopped');
    await cp(f.stopped, dir, { recursive: true });
    // A real process takes the run lock (as createRunner does) and holds it until killed.
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/lockHolder.ts', dir],
      {
        cwd: new URL('../..', import.meta.url).pathname,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const pid = await new Promise<number>((resolve) => {
      holder.stdout.once('data', (d: Buffer) => {
        resolve((JSON.parse(d.toString()) as { pid: number }).pid);
      });
    });
    try {
      const live = JSON.parse((await cli(['runs', root, '--json'])).out) as {
        status: string;
        why: string;
      }[];
      expect(live[0]).toMatchObject({ status: 'running' });
      expect(live[0]?.why).toMatch(new RegExp(`^the lock is held by pid ${pid} on `));
      expect((await cli(['clean', root])).out).toBe(`nothing to clean under ${root}\n`);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.on('close', r));
    }
    const dead = JSON.parse((await cli(['runs', root, '--json'])).out) as {
      status: string;
      why: string;
    }[];
    expect(dead[0]?.status).toBe('crashed');
    expect(dead[0]?.why).toContain(`pid ${pid} died holding the lock`);
  });
});

describe('run selectors', () => {
  it('take a run dir, a name, or an id prefix', async () => {
    for (const sel of [f.a, 'iris-a', relative(f.root, f.a)]) {
      const r = await cli(['show', sel, '--root', f.root, '--json']);
      expect(r.code, r.err).toBe(0);
      expect((JSON.parse(r.out) as { dir: string }).dir).toBe(f.a);
    }
    const id = (
      JSON.parse((await cli(['show', 'iris-b', '--root', f.root, '--json'])).out) as {
        id: string;
      }
    ).id;
    const byId = await cli(['show', id.slice(0, 12), '--root', f.root, '--json']);
    expect((JSON.parse(byId.out) as { dir: string }).dir).toBe(f.b);
  });

  it('name the candidates when a selector is ambiguous or matches nothing', async () => {
    // Every fixture run shares its experimentId (the commit): an 8-character prefix matches all.
    const id = (
      JSON.parse((await cli(['show', 'iris-a', '--root', f.root, '--json'])).out) as {
        id: string;
      }
    ).id;
    const amb = await cli(['show', id.slice(0, 8), '--root', f.root]);
    expect(amb.code).toBe(2);
    expect(amb.err).toContain(`"${id.slice(0, 8)}" is ambiguous: it matches 5 runs`);
    for (const d of [f.a, f.b, f.killed, f.sigterm, f.stopped])
      expect(amb.err).toContain(relative(f.root, d));
    const none = await cli(['show', 'iris-zzz', '--root', f.root]);
    expect(none.code).toBe(2);
    expect(none.err).toContain(`no run matches "iris-zzz" under ${f.root}`);
    expect(none.err).toContain('iris-killed');
  });
});
