/**
 * Run dirs made by real runs of the demo (examples/iris.ts), shared by the CLI tests: built
 * once per vitest run (the first test file to ask builds them under a lock folder, the others
 * wait), then read-only. Tests that change a run copy it first.
 *   finished-a  --epochEnd 3 --runName a --saveInterval 1 (epoch-0, epoch-1, epoch-2 kept)
 *   finished-b  --epochEnd 3 --runName b --optim.lr 0.05 --model.hidden [8]
 *   killed      --epochEnd 60, SIGKILLed once its first epoch result is written (crashed: the
 *               lock is left behind by a dead pid)
 *   sigterm     --epochEnd 60, SIGTERMed once its first epoch result is written (interrupted: a
 *               graceful stop, logged in run.log)
 *   stopped     --epochEnd 3 into a dir whose checkpoints folder is a file: every checkpoint save
 *               fails, training goes on to its end, the demo exits 2 (crashed: an error at the end)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = new URL('../..', import.meta.url).pathname;

/** Where the fixture runs are. */
export interface Fixtures {
  readonly root: string;
  readonly a: string;
  readonly b: string;
  readonly killed: string;
  readonly sigterm: string;
  readonly stopped: string;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const demo = (args: string[]) =>
  spawn(process.execPath, ['--import', 'tsx', 'examples/iris.ts', ...args], {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'pipe'],
  });

const exited = (child: ReturnType<typeof demo>): Promise<{ code: number | null; err: string }> =>
  new Promise((resolve) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      resolve({ code, err });
    });
  });

/** The one run dir (`name-id/timestamp`) under root whose folder starts with `prefix`. */
const runDir = async (root: string, prefix: string): Promise<string | undefined> => {
  for (const n of await readdir(root).catch(() => [] as string[]))
    if (n.startsWith(prefix)) {
      const [stamp] = await readdir(join(root, n)).catch(() => [] as string[]);
      return stamp === undefined ? undefined : join(root, n, stamp);
    }
  return undefined;
};

const build = async (root: string): Promise<Fixtures> => {
  const stopped = join(root, 'iris-stopped');
  await mkdir(stopped, { recursive: true });
  await writeFile(join(stopped, 'checkpoints'), 'not a folder\n');
  const common = ['--projectRoot', root, '--tensorboard', 'false'];
  const runs = [
    demo([...common, '--epochEnd', '3', '--runName', 'a', '--saveInterval', '1']),
    demo([
      ...common,
      '--epochEnd',
      '3',
      '--runName',
      'b',
      '--optim.lr',
      '0.05',
      '--model.hidden',
      '[8]',
    ]),
    demo([...common, '--epochEnd', '3', '--runName', 'stopped', '--dir', stopped]),
  ].map(exited);
  const [ra, rb, rs] = await Promise.all(runs);
  if (ra?.code !== 0 || rb?.code !== 0) throw new Error(`a demo run failed: ${ra?.err} ${rb?.err}`);
  if (rs?.code !== 2) throw new Error(`the stopped run should exit 2, got ${rs?.code}: ${rs?.err}`);

  // Two long runs, stopped once their first epoch result is written: one SIGKILLed, one
  // SIGTERMed (a graceful stop: it saves, logs why, releases its lock and exits 128 + 15).
  const stopAfterFirstResult = async (runName: string, signal: NodeJS.Signals) => {
    const child = demo([...common, '--epochEnd', '60', '--runName', runName]);
    const done = exited(child);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const dir = await runDir(root, `iris-${runName}-`);
      if (dir !== undefined && existsSync(join(dir, 'latest.json'))) break;
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`the run to ${signal} did not write its first result`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill(signal);
    return done;
  };
  const [, term] = await Promise.all([
    stopAfterFirstResult('killed', 'SIGKILL'),
    stopAfterFirstResult('sigterm', 'SIGTERM'),
  ]);
  if (term.code !== 143)
    throw new Error(`the SIGTERMed run should exit 143, got ${term.code}: ${term.err}`);
  const get = async (p: string): Promise<string> => {
    const d = await runDir(root, p);
    if (d === undefined) throw new Error(`no run dir ${p}* under ${root}`);
    return d;
  };
  return {
    root,
    a: await get('iris-a-'),
    b: await get('iris-b-'),
    killed: await get('iris-killed-'),
    sigterm: await get('iris-sigterm-'),
    stopped,
  };
};

/** The fixture runs: built by the first caller of this vitest run, awaited by the others. */
export const fixtures = async (): Promise<Fixtures> => {
  const base = join(tmpdir(), `danling-cli-fixtures-${process.ppid}`);
  const root = join(base, 'experiments');
  const doneFile = join(base, 'done.json');
  let builder = false;
  try {
    await mkdir(base);
    builder = true;
  } catch {
    // another test file builds them
  }
  if (builder) {
    // Fixture folders of earlier vitest runs (their process is gone) are removed.
    for (const n of await readdir(tmpdir())) {
      const m = /^danling-cli-fixtures-(\d+)$/.exec(n);
      if (m !== null && Number(m[1]) !== process.ppid && !alive(Number(m[1])))
        await rm(join(tmpdir(), n), { recursive: true, force: true });
    }
    try {
      const f = await build(root);
      await writeFile(doneFile, JSON.stringify(f));
      return f;
    } catch (e) {
      await writeFile(doneFile, JSON.stringify({ error: String(e) }));
      throw e;
    }
  }
  const deadline = Date.now() + 120_000;
  while (!existsSync(doneFile)) {
    if (Date.now() > deadline)
      throw new Error(`the fixture runs in ${base} were not built in time`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const v = JSON.parse(await readFile(doneFile, 'utf8')) as Fixtures & { error?: string };
  if (v.error !== undefined) throw new Error(`building the fixture runs failed: ${v.error}`);
  return v;
};

/** Runs the CLI in this process, capturing its output. */
export const cli = async (
  argv: string[],
  cwd = repo,
): Promise<{ code: number; out: string; err: string }> => {
  const { main } = await import('../../src/cli/cli.js');
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), cwd });
  return { code, out, err };
};
