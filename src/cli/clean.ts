/**
 * `danling clean <projectRoot>`: stale run locks (their pid is dead) and the temporary files of
 * dead writers. A dry run unless `--yes`.
 */
import { readdir, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { listCheckpoints } from '../effects/checkpoint/checkpointStore.js';
import { isPidAlive } from '../effects/storage/atomic.js';
import { readConfigFile } from '../effects/storage/configFile.js';
import { LOCK_NAME } from '../effects/storage/lock.js';
import { intFlag, runCommand, usageError, type CommandDef, type CommandIo } from './args.js';
import { findRunDirs, readLock } from './runDirs.js';

export const CLEAN: CommandDef = {
  name: 'clean',
  usage: 'danling clean <projectRoot> [--yes] [--keep N] [--orphans] [--json]',
  help: `Finds what crashed runs leave behind under projectRoot:
  - stale run locks: a .lock whose process (on this host) is no longer running;
  - temporary files of dead writers: .name.tmp-<pid>-<random> whose pid is not running, and
    .lock.stale-* files of an interrupted lock take-over;
  - epoch-N checkpoints beyond the keep rule: the run's maxToKeep (or --keep N) highest epochs
    stay; latest and best always stay;
  - with --orphans, run dirs of runs that ended before their first checkpoint (no checkpoint,
    no results.json, no live lock): nothing in them can be resumed.
Prints what it would remove; --yes removes it. Locks of live processes and of other hosts, and
the checkpoints of running runs, are never touched.`,
  flags: { booleans: ['yes', 'json', 'orphans'], values: ['keep'] },
};

const TEMP = /^\..+\.tmp-(\d+)-[0-9a-f]{8}$/;
const STALE = /^\.lock\.stale-(\d+)-[0-9a-f]{8}$/;

/** One thing clean would remove, and why. */
export interface Leftover {
  readonly path: string;
  readonly why: string;
  /** A whole run dir (removed with everything in it). */
  readonly dir?: true;
}

/** The leftovers under `root`, at most `depth` folders down. */
export const findLeftovers = async (root: string, depth = 5): Promise<Leftover[]> => {
  const out: Leftover[] = [];
  const walk = async (dir: string, left: number): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      if (n === LOCK_NAME) {
        const lock = await readLock(dir);
        if (lock !== undefined && !lock.alive)
          out.push({
            path: p,
            why:
              lock.pid < 0
                ? 'an unreadable lock'
                : `a stale lock: pid ${lock.pid} on ${lock.hostname || hostname()} is not running`,
          });
        continue;
      }
      const temp = TEMP.exec(n) ?? STALE.exec(n);
      if (temp !== null) {
        const pid = Number(temp[1]);
        if (!isPidAlive(pid))
          out.push({ path: p, why: `a temporary file of pid ${pid}, which is not running` });
        continue;
      }
      if (left > 0 && !n.startsWith('.')) {
        try {
          if ((await stat(p)).isDirectory()) await walk(p, left - 1);
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  await walk(root, depth);
  return out;
};

/**
 * The epoch-N checkpoints of the runs under `root` beyond their keep rule: `keep` (or each run's
 * `maxToKeep`; none without one) highest epochs stay. Runs with a live lock are left alone.
 */
export const findPrunable = async (root: string, keep?: number): Promise<Leftover[]> => {
  const out: Leftover[] = [];
  for (const dir of await findRunDirs(root)) {
    if ((await readLock(dir))?.alive === true) continue;
    const read = await readConfigFile(path.join(dir, 'config.yaml'));
    const config = E.isRight(read) && typeof read.right === 'object' ? read.right : {};
    const n = keep ?? (typeof config['maxToKeep'] === 'number' ? config['maxToKeep'] : undefined);
    if (n === undefined) continue;
    const name =
      typeof config['checkpointDirName'] === 'string' ? config['checkpointDirName'] : 'checkpoints';
    const listed = await listCheckpoints(path.join(dir, name));
    if (E.isLeft(listed)) continue;
    const epochs = listed.right
      .filter((c) => c.kind === 'epoch' && c.epoch !== null)
      .sort((a, b) => (b.epoch ?? 0) - (a.epoch ?? 0));
    const kept = epochs.slice(0, n).map((c) => c.name);
    for (const c of epochs.slice(n))
      out.push({
        path: c.path,
        why: `beyond the keep rule (${keep === undefined ? 'maxToKeep' : '--keep'} ${n}: ${kept.length === 0 ? 'none' : kept.join(', ')} stay)`,
      });
  }
  return out;
};

/**
 * Run dirs under `root` of runs that ended before their first checkpoint: no checkpoint file in
 * the checkpoint folder, no `results.json`, no live lock. Nothing in them can be resumed.
 */
export const findOrphans = async (root: string): Promise<Leftover[]> => {
  const out: Leftover[] = [];
  for (const dir of await findRunDirs(root)) {
    if ((await readLock(dir))?.alive === true) continue;
    const names = await readdir(dir).catch(() => [] as string[]);
    if (names.includes('results.json')) continue;
    const read = await readConfigFile(path.join(dir, 'config.yaml'));
    const config = E.isRight(read) && typeof read.right === 'object' ? read.right : {};
    const folder =
      typeof config['checkpointDirName'] === 'string' ? config['checkpointDirName'] : 'checkpoints';
    const listed = await listCheckpoints(path.join(dir, folder));
    if (E.isRight(listed) && listed.right.length > 0) continue;
    out.push({
      path: dir,
      dir: true,
      why: 'a run dir whose run ended before its first checkpoint (nothing to resume)',
    });
  }
  return out;
};

export const cleanCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(CLEAN, argv, io, async ({ positional, flags }) => {
    if (positional.length !== 1) return usageError(CLEAN, io, 'expected one projectRoot');
    const root = path.resolve(io.cwd ?? process.cwd(), positional[0] as string);
    try {
      if (!(await stat(root)).isDirectory())
        return usageError(CLEAN, io, `${root} is not a folder`);
    } catch {
      return usageError(CLEAN, io, `${root} does not exist`);
    }
    const keep = typeof flags['keep'] === 'string' ? intFlag('keep', flags['keep']) : undefined;
    if (keep !== undefined && E.isLeft(keep)) return usageError(CLEAN, io, keep.left);
    const orphans = flags['orphans'] === true ? await findOrphans(root) : [];
    // Files inside an orphaned run dir go with it.
    const inside = (p: string): boolean =>
      orphans.some((o) => p.startsWith(`${o.path}${path.sep}`));
    const found = [
      ...orphans,
      ...[...(await findLeftovers(root)), ...(await findPrunable(root, keep?.right))].filter(
        (f) => !inside(f.path),
      ),
    ];
    const yes = flags['yes'] === true;
    const removed: string[] = [];
    const failed: string[] = [];
    if (yes)
      for (const f of found) {
        try {
          if (f.dir === true) await rm(f.path, { recursive: true });
          else await unlink(f.path);
          removed.push(f.path);
        } catch (cause) {
          failed.push(`${f.path}: ${String(cause)}`);
        }
      }
    if (flags['json'] === true) {
      io.out(`${JSON.stringify({ root, dryRun: !yes, found, removed, failed }, null, 2)}\n`);
      return failed.length === 0 ? 0 : 1;
    }
    if (found.length === 0) io.out(`nothing to clean under ${root}\n`);
    for (const f of found)
      io.out(
        `${yes ? (removed.includes(f.path) ? 'removed' : 'FAILED ') : 'would remove'}  ${path.relative(root, f.path)}  (${f.why})\n`,
      );
    for (const f of failed) io.err(`danling clean: ${f}\n`);
    if (!yes && found.length > 0)
      io.out(
        `dry run: ${found.length} file${found.length === 1 ? '' : 's'}; run again with --yes to remove them\n`,
      );
    return failed.length === 0 ? 0 : 1;
  });
