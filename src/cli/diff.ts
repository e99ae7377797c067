/** `danling diff <runA> <runB>`: config difference by dotted path, results side by side. */
import * as path from 'node:path';
import { flattenResult } from '../state/flatten.js';
import { latestResult } from '../state/runner/selectors.js';
import { runCommand, table, usageError, type CommandDef, type CommandIo } from './args.js';
import {
  fmt,
  leafDiff,
  readRun,
  selectRunDirs,
  showBest,
  showProgress,
  type RunInfo,
} from './runDirs.js';

export const DIFF: CommandDef = {
  name: 'diff',
  usage: 'danling diff <runA> <runB> [--root projectRoot] [--json]',
  help: `Compares two runs: every config key that differs, by dotted path (optim.lr: 0.01 -> 0.05;
the ids and the run dir's bookkeeping left out), then status, progress, best score and the
latest result's metrics side by side.
A run is a run dir, a run name, a name-id folder or an id prefix (searched under --root,
default: experiments).`,
  flags: { booleans: ['json'], values: ['root'] },
};

const IGNORED = new Set(['experimentId', 'runId', 'timestamp', 'dir', 'projectRoot']);

const latestFlat = (r: RunInfo): Map<string, number> => {
  const l = r.state === undefined ? null : latestResult(r.state);
  if (l === null) return new Map();
  const { index: _i, ...rest } = l;
  return new Map(flattenResult(rest));
};

export const diffCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(DIFF, argv, io, async ({ positional, flags }) => {
    if (positional.length !== 2)
      return usageError(DIFF, io, `expected two runs, got ${positional.length}`);
    const selected = await selectRunDirs('diff', positional, flags, io);
    if (selected === undefined) return 2;
    const { dirs, root } = selected;
    const [a, b] = (await Promise.all(dirs.map(readRun))) as [RunInfo, RunInfo];
    const changes = leafDiff(a.config, b.config).filter((c) => !IGNORED.has(c.path));
    const la = latestFlat(a);
    const lb = latestFlat(b);
    const metrics = [...new Set([...la.keys(), ...lb.keys()])].sort();
    if (flags['json'] === true) {
      io.out(
        `${JSON.stringify(
          {
            a: {
              dir: a.dir,
              name: a.name,
              id: a.id,
              status: a.status,
              progress: a.progress,
              best: a.best ?? null,
            },
            b: {
              dir: b.dir,
              name: b.name,
              id: b.id,
              status: b.status,
              progress: b.progress,
              best: b.best ?? null,
            },
            config: changes,
            latest: metrics.map((m) => ({ metric: m, a: la.get(m) ?? null, b: lb.get(m) ?? null })),
          },
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const show = (v: unknown): string => (v === undefined ? '(unset)' : JSON.stringify(v));
    const lines = [
      `A  ${path.relative(root, a.dir) || a.dir}  (${a.name} ${a.id})`,
      `B  ${path.relative(root, b.dir) || b.dir}  (${b.name} ${b.id})`,
      '',
      `config (${changes.length} difference${changes.length === 1 ? '' : 's'}):`,
      ...(changes.length === 0
        ? ['  (same)']
        : changes.map((c) => `  ${c.path}: ${show(c.before)} -> ${show(c.after)}`)),
      '',
      table([
        ['', 'A', 'B'],
        ['status', a.status, b.status],
        ['progress', showProgress(a.progress), showProgress(b.progress)],
        ['best', showBest(a.best), showBest(b.best)],
        ['latest epoch', String(a.latest?.epoch ?? '-'), String(b.latest?.epoch ?? '-')],
        ...metrics.map((m) => [m, fmt(la.get(m)), fmt(lb.get(m))]),
      ]),
    ];
    io.out(`${lines.join('\n')}\n`);
    return 0;
  });
