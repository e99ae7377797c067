/** `danling runs [projectRoot]`: one line per run dir, oldest first. */
import * as path from 'node:path';
import { runCommand, table, type CommandDef, type CommandIo } from './args.js';
import { listRuns, showBest, showProgress, type RunInfo } from './runDirs.js';

export const RUNS: CommandDef = {
  name: 'runs',
  usage: 'danling runs [projectRoot] [--json]',
  help: `Lists the run dirs under projectRoot (default: experiments), oldest first: when each
started, its name and id, its progress (epochs done / epochEnd, or step / stepEnd), its best
score (split/name value, direction, epoch) and its status:
  running      the run lock is held by a live process
  finished     it reached epochEnd / stepEnd (or patience stopped it)
  crashed      an error in the run.log tail, or its process died holding the lock
  interrupted  closed before its end (a graceful stop by SIGINT / SIGTERM, or an early return)
--json prints one JSON array (dir, name, id, timestamp, progress, best, latest, status, why).`,
  flags: { booleans: ['json'] },
};

/** The JSON form of a run (no state). */
export const runJson = (r: RunInfo): Record<string, unknown> => ({
  dir: r.dir,
  name: r.name,
  id: r.id,
  timestamp: r.timestamp,
  started: r.started,
  progress: r.progress,
  best: r.best ?? null,
  latest: r.latest ?? null,
  status: r.status,
  why: r.why,
  problems: r.problems,
});

export const runsCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(RUNS, argv, io, async ({ positional, flags }) => {
    if (positional.length > 1) {
      io.err(`danling runs: expected at most one projectRoot, got ${positional.length}\n`);
      return 2;
    }
    const root = path.resolve(io.cwd ?? process.cwd(), positional[0] ?? 'experiments');
    const runs = await listRuns(root);
    if (flags['json'] === true) {
      io.out(`${JSON.stringify(runs.map(runJson), null, 2)}\n`);
      return 0;
    }
    if (runs.length === 0) {
      io.out(`no runs under ${root}\n`);
      return 0;
    }
    io.out(
      `${table([
        ['STARTED', 'NAME', 'ID', 'PROGRESS', 'BEST', 'STATUS', 'DIR'],
        ...runs.map((r) => [
          r.started,
          r.name,
          r.id,
          showProgress(r.progress),
          showBest(r.best),
          r.status,
          path.relative(root, r.dir),
        ]),
      ])}\n`,
    );
    return 0;
  });
