/**
 * `danling history <run>`: the state of a run at any past point, rebuilt from `history.jsonl`
 * with `replayLog`, and what changed between two points.
 */
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { stringify } from 'yaml';
import { replayLog, type ReplayTarget, type Replayed } from '../effects/run/historyReader.js';
import type { ConfigChange } from '../state/config/configDiff.js';
import type { Json, JsonObject } from '../state/Json.js';
import type { RunnerState } from '../state/runner/RunnerState.js';
import {
  bestIndex,
  bestScore,
  meters,
  results,
  scoreSplit,
  stateDict,
} from '../state/runner/selectors.js';
import { intFlag, runCommand, usageError, type CommandDef, type CommandIo } from './args.js';
import { leafDiff, selectRunDirs } from './runDirs.js';

export const HISTORY: CommandDef = {
  name: 'history',
  usage:
    'danling history <run> [--epoch N | --action K | --step S] [--json]\n       danling history <run> --diff A B [--json]',
  help: `Replays the run's action log (history.jsonl) and prints the state at a point:
  (none)      the end of the log
  --epoch N   the end of epoch N (before the first action that moved past it)
  --action K  after the first K actions
  --step S    the first point where the step counter reaches S
The state: actions applied, progress, mode and split, meters (average), results by epoch,
the best score, the random generator state.
--diff A B prints what changed between two points, by dotted path (progress, meters, results,
rng, config); a point is epoch:N, action:K, step:S or end.
--json prints the same as JSON (with the config).
<run> is a run dir, a run name, a name-id folder or an id prefix (searched under --root,
default: experiments).`,
  flags: { booleans: ['json', 'diff'], values: ['epoch', 'action', 'step', 'root'] },
};

/** A point in the log. */
export type Point = ReplayTarget | { readonly step: number } | { readonly end: true };

/** Parses `epoch:3`, `action:120`, `step:40`, `end`. */
export const parsePoint = (text: string): E.Either<string, Point> => {
  if (text === 'end') return E.right({ end: true });
  const m = /^(epoch|action|step):(\d+)$/.exec(text);
  if (m === null)
    return E.left(`${JSON.stringify(text)} is not a point; use epoch:N, action:K, step:S or end`);
  const n = Number(m[2]);
  return E.right(m[1] === 'epoch' ? { epoch: n } : m[1] === 'action' ? { action: n } : { step: n });
};

const showPoint = (p: Point): string =>
  'end' in p
    ? 'end'
    : 'epoch' in p
      ? `epoch:${p.epoch}`
      : 'action' in p
        ? `action:${p.action}`
        : `step:${p.step}`;

/** Replays to a point; a step target is found by bisection over action counts. */
export const replayTo = async (file: string, point: Point): Promise<E.Either<string, Replayed>> => {
  if ('end' in point)
    return E.mapLeft((e: { message: string }) => e.message)(await replayLog(file));
  if ('step' in point) {
    const end = await replayLog(file);
    if (E.isLeft(end)) return E.left(end.left.message);
    if (end.right.state.progress.step < point.step)
      return E.left(
        `${file}: cannot replay to step ${point.step}: the log ends at step ${end.right.state.progress.step}`,
      );
    let lo = 0;
    let hi = end.right.actions; // invariant: step at hi >= target
    let best: Replayed = end.right;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const r = await replayLog(file, { action: mid });
      if (E.isLeft(r)) return E.left(r.left.message);
      if (r.right.state.progress.step >= point.step) {
        hi = mid;
        best = r.right;
      } else lo = mid + 1;
    }
    return E.right(best);
  }
  return E.mapLeft((e: { message: string }) => e.message)(await replayLog(file, point));
};

/** The state as the CLI shows it: JSON, with results keyed by epoch so a diff reads by path. */
export const stateSummary = (state: RunnerState, actions: number): JsonObject => {
  const persisted = stateDict(state) as unknown as JsonObject;
  const best = bestScore(state);
  return {
    actions,
    progress: persisted['progress'] as Json,
    mode: state.mode,
    split: state.split,
    meters: Object.fromEntries(
      Object.entries(meters(state)).map(([k, m]) => [k, { avg: m.avg, count: m.count }]),
    ),
    results: Object.fromEntries(results(state).map((r) => [String(r.index), r.result as Json])),
    best:
      best === undefined
        ? null
        : {
            split: scoreSplit(state),
            name: state.config.scoreName,
            value: best,
            epoch: bestIndex(state),
          },
    rng: persisted['rng'] as Json,
    config: persisted['config'] as Json,
  };
};

export const historyCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(HISTORY, argv, io, async ({ positional, flags }) => {
    const isDiff = flags['diff'] === true;
    const targets = (['epoch', 'action', 'step'] as const).filter(
      (k) => typeof flags[k] === 'string',
    );
    if (positional.length !== (isDiff ? 3 : 1))
      return usageError(HISTORY, io, isDiff ? 'expected <run> --diff A B' : 'expected one run');
    if (targets.length > 1 || (isDiff && targets.length > 0))
      return usageError(HISTORY, io, 'give one point: --epoch, --action, --step, or --diff A B');
    const points: Point[] = [];
    if (isDiff) {
      for (const t of positional.slice(1)) {
        const p = parsePoint(t);
        if (E.isLeft(p)) return usageError(HISTORY, io, p.left);
        points.push(p.right);
      }
    } else if (targets.length === 1) {
      const k = targets[0] as 'epoch' | 'action' | 'step';
      const n = intFlag(k, flags[k] as string);
      if (E.isLeft(n)) return usageError(HISTORY, io, n.left);
      points.push(
        k === 'epoch'
          ? { epoch: n.right }
          : k === 'action'
            ? { action: n.right }
            : { step: n.right },
      );
    } else points.push({ end: true });

    const selected = await selectRunDirs('history', positional.slice(0, 1), flags, io);
    if (selected === undefined) return 2;
    const { cwd } = selected;
    const file = path.join(selected.dirs[0] as string, 'history.jsonl');
    const shown = path.relative(cwd, file).startsWith('..') ? file : path.relative(cwd, file);
    const states: JsonObject[] = [];
    for (const p of points) {
      const r = await replayTo(file, p);
      if (E.isLeft(r)) {
        io.err(`danling history: ${r.left}\n`);
        return 1;
      }
      for (const w of r.right.warnings) io.err(`danling history: warning: ${w.message}\n`);
      states.push(stateSummary(r.right.state, r.right.actions));
    }
    if (!isDiff) {
      const s = states[0] as JsonObject;
      if (flags['json'] === true) io.out(`${JSON.stringify(s, null, 2)}\n`);
      else {
        const { config: _c, ...rest } = s;
        io.out(
          `# ${shown} at ${showPoint(points[0] as Point)}\n${stringify(rest, { lineWidth: 0 })}`,
        );
      }
      return 0;
    }
    const changes: ConfigChange[] = leafDiff(states[0], states[1]);
    if (flags['json'] === true) {
      io.out(
        `${JSON.stringify({ from: showPoint(points[0] as Point), to: showPoint(points[1] as Point), changes }, null, 2)}\n`,
      );
      return 0;
    }
    const show = (v: Json | undefined): string => (v === undefined ? '(unset)' : JSON.stringify(v));
    io.out(
      `# ${shown}: ${showPoint(points[0] as Point)} -> ${showPoint(points[1] as Point)} (${changes.length} change${changes.length === 1 ? '' : 's'})\n` +
        changes.map((c) => `${c.path}: ${show(c.before)} -> ${show(c.after)}\n`).join(''),
    );
    return 0;
  });
