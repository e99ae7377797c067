/** `danling show <run>`: what one run is: config changes, results, checkpoints, starts. */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { loadCheckpointFile } from '../effects/checkpoint/checkpointFile.js';
import { listCheckpoints } from '../effects/checkpoint/checkpointStore.js';
import { CONFIG_DEFAULTS } from '../state/config/Config.js';
import type { ConfigChange } from '../state/config/configDiff.js';
import { flattenResult } from '../state/flatten.js';
import { bestResult, latestResult } from '../state/runner/selectors.js';
import { runCommand, table, usageError, type CommandDef, type CommandIo } from './args.js';
import {
  findRunDirs,
  fmt,
  leafDiff,
  readRun,
  readRunLog,
  selectRunDirs,
  showBest,
  showProgress,
  type RunInfo,
} from './runDirs.js';

export const SHOW: CommandDef = {
  name: 'show',
  usage: 'danling show <run> [--root projectRoot] [--json]',
  help: `Shows one run: where it is, its status and progress, its config where it differs from the
defaults, its latest and best results, its checkpoints (size, and whether each verifies: header,
checksum, tensors, state), every start and resume recorded in run.log, and the other
starts of the same config (sibling timestamp folders under projectRoot/name-id).
<run> is a run dir, a run name, a name-id folder or an id prefix (searched under --root,
default: experiments).`,
  flags: { booleans: ['json'], values: ['root'] },
};

/** Keys left out of "differs from the defaults": identity bookkeeping shown elsewhere. */
const NOT_CONFIG = new Set(['experimentId', 'runId', 'timestamp']);

/** The config keys of a run that differ from the defaults, by dotted path. */
export const changedFromDefaults = (config: RunInfo['config']): ConfigChange[] =>
  leafDiff(CONFIG_DEFAULTS, config).filter((c) => !NOT_CONFIG.has(c.path));

/** One result as `train: loss 0.4479 accuracy 0.8167  val: ...`. */
export const showResult = (result: Readonly<Record<string, unknown>> | null): string => {
  if (result === null) return '-';
  const { index: _i, ...rest } = result;
  const bySplit = new Map<string, string[]>();
  for (const [name, value] of flattenResult(rest)) {
    const [split, ...metric] = name.split('/');
    const key = metric.length === 0 ? '' : (split ?? '');
    const list = bySplit.get(key) ?? [];
    list.push(`${metric.length === 0 ? (split ?? '') : metric.join('/')} ${fmt(value)}`);
    bySplit.set(key, list);
  }
  return [...bySplit]
    .map(([s, items]) => `${s === '' ? '' : `${s}: `}${items.join(' ')}`)
    .join('  ');
};

/** A checkpoint file and whether it verifies. */
export interface CheckpointCheck {
  readonly file: string;
  readonly bytes: number;
  readonly ok: boolean;
  readonly detail: string;
}

/** Lists and fully verifies the checkpoints of a run dir. */
export const checkCheckpoints = async (
  dir: string,
  checkpointDirName: string,
): Promise<CheckpointCheck[]> => {
  const listed = await listCheckpoints(path.join(dir, checkpointDirName));
  if (E.isLeft(listed)) return [];
  const out: CheckpointCheck[] = [];
  for (const c of [...listed.right].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const loaded = await loadCheckpointFile(c.path);
    let detail: string;
    if (E.isLeft(loaded)) detail = loaded.left.message;
    else {
      const p = (loaded.right.state as { progress?: { epoch?: number; step?: number } }).progress;
      detail = `ok: epoch ${String(p?.epoch ?? '?')}, step ${String(p?.step ?? '?')}`;
    }
    out.push({
      file: path.relative(dir, c.path),
      bytes: (await stat(c.path)).size,
      ok: E.isRight(loaded),
      detail,
    });
  }
  return out;
};

const showValue = (v: unknown): string => (v === undefined ? '(unset)' : JSON.stringify(v));

export const showCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(SHOW, argv, io, async ({ positional, flags }) => {
    if (positional.length !== 1) return usageError(SHOW, io, 'expected one run');
    const selected = await selectRunDirs('show', positional, flags, io);
    if (selected === undefined) return 2;
    const dir = selected.dirs[0] as string;
    const run = await readRun(dir);
    const changes = changedFromDefaults(run.config);
    const ckptDir =
      typeof run.config['checkpointDirName'] === 'string'
        ? run.config['checkpointDirName']
        : 'checkpoints';
    const checkpoints = await checkCheckpoints(dir, ckptDir);
    const starts = (await readRunLog(dir))
      .filter((l) => l.msg.startsWith('run started') || l.msg.startsWith('run resumed from'))
      .map((l) => ({ time: new Date(l.time).toISOString(), msg: l.msg }));
    // Other starts of the same config: sibling timestamp folders under projectRoot/name-id.
    const parent = path.dirname(dir);
    const restarts =
      path.basename(parent) === `${run.name}-${run.id}`
        ? await Promise.all(
            (await findRunDirs(parent, 1))
              .filter((d) => d !== dir)
              .map(async (d) => {
                const r = await readRun(d);
                return {
                  dir: d,
                  started: r.started,
                  status: r.status,
                  progress: showProgress(r.progress),
                };
              }),
          )
        : [];
    const latest = run.state === undefined ? null : latestResult(run.state);
    const best = run.state === undefined ? null : bestResult(run.state);
    if (flags['json'] === true) {
      io.out(
        `${JSON.stringify(
          {
            dir,
            name: run.name,
            id: run.id,
            timestamp: run.timestamp,
            status: run.status,
            why: run.why,
            progress: run.progress,
            config: changes,
            latest,
            best,
            bestScore: run.best ?? null,
            checkpoints,
            starts,
            restarts,
            problems: run.problems,
          },
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const lines = [
      `run       ${run.name}  id ${run.id}`,
      `dir       ${dir}`,
      `started   ${run.started}`,
      `status    ${run.status}: ${run.why}`,
      `progress  ${showProgress(run.progress)}, step ${run.progress.step}${run.actions === undefined ? '' : `, ${run.actions} actions`}`,
      '',
      'config (what differs from the defaults):',
      ...(changes.length === 0
        ? ['  (nothing)']
        : changes.map(
            (c) =>
              `  ${c.path}: ${showValue(c.after)}${c.before === undefined ? '' : ` (default ${showValue(c.before)})`}`,
          )),
      '',
      `latest    ${latest === null ? '-' : `epoch ${latest.index}  ${showResult(latest)}`}`,
      `best      ${showBest(run.best)}${best === null ? '' : `  ${showResult(best)}`}`,
      '',
      'checkpoints:',
      ...(checkpoints.length === 0
        ? ['  (none)']
        : table(checkpoints.map((c) => [`  ${c.file}`, `${c.bytes} B`, c.detail])).split('\n')),
      '',
      'starts:',
      ...(starts.length === 0
        ? ['  (none in run.log)']
        : starts.map((s) => `  ${s.time}  ${s.msg}`)),
      ...(restarts.length === 0
        ? []
        : [
            '',
            'other starts of this config (same name-id folder):',
            ...restarts.map(
              (r) => `  ${path.basename(r.dir)}  ${r.started}  ${r.progress}  ${r.status}`,
            ),
          ]),
      ...(run.problems.length === 0 ? [] : ['', 'problems:', ...run.problems.map((p) => `  ${p}`)]),
    ];
    io.out(`${lines.join('\n')}\n`);
    return 0;
  });
