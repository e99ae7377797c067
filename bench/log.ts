/**
 * The action log (`history.jsonl`) benchmark.
 *
 *   npx tsx bench/log.ts dispatch [DIR] [ROUNDS]  per-step cost of runner.dispatch with the log
 *                                             on and off, reduce alone and a mutable yardstick
 *                                             (interleaved rounds after warm-up; wall and CPU);
 *                                             run dirs in DIR (default os.tmpdir(); /dev/shm
 *                                             takes the disk's page-cache write cost out)
 *   npx tsx bench/log.ts write N FILE        writes a demo-shaped log of N actions
 *   npx tsx bench/log.ts replay FILE         replayLog to the end from disk: time and peak RSS
 *   npx tsx bench/log.ts resume FILE         openHistory on an existing log (a resume): time, RSS
 *
 * What it measures: the loop's real path (two `dispatch` calls per step, `stepProgress` +
 * `updateMeters` built by the action creators, as `trainTfjs` makes them), through
 * `createRunner`, including the kernel's page-cache write of each batch and the log's default
 * periodic fsync (one per 100k lines, started on the thread pool); reading from the page cache.
 * What it leaves out: checkpoints and their fsync, a cold-disk read, tfjs itself, and the
 * loop's other actions (a few per epoch). The loss is `1 / i`, a full-precision double like
 * tfjs's float32 losses (its decimal text is the log's largest per-step cost after the write).
 * Timings on a shared 2-core machine are noisy: compare the columns of one run, not runs.
 */
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as E from 'fp-ts/lib/Either.js';
import { openHistory, replayLog } from '../src/effects/run/history.js';
import { actions, reduce, type Action } from '../src/reducers/actions.js';
import { createState } from '../src/state/runner/RunnerState.js';
import { machine, printSteps, timeSteps } from './common.js';

const rss = (): string => `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB peak RSS`;

/** The demo's shape: 8 train steps, 2 eval steps and one result per epoch. */
const epochActions = (e: number): Action[] => {
  const xs: Action[] = [actions.startEpoch(e), actions.setMode('train'), actions.resetMeters()];
  for (let i = 0; i < 8; i++)
    xs.push(
      actions.stepProgress(),
      actions.updateMeters({ loss: 1 / (i + e + 1), accuracy: 0.5 }, 16),
    );
  xs.push(actions.setMode('eval'), actions.resetMeters());
  for (let i = 0; i < 2; i++) xs.push(actions.updateMeters({ loss: 0.3, accuracy: 0.9 }, 16));
  xs.push(actions.appendResult({ val: { loss: 0.3, accuracy: 0.9 } }));
  return xs;
};

const writeBench = async (n: number, file: string): Promise<void> => {
  let s = createState({ projectRoot: tmpdir(), epochEnd: 1_000_000 });
  const opened = await openHistory(file, s, { fsync: 'never' });
  if (E.isLeft(opened)) throw new Error(opened.left.message);
  const w = opened.right.writer;
  const t0 = performance.now();
  let e = 0;
  while (w.count() < n) {
    for (const a of epochActions(e++)) {
      if (w.count() >= n) break;
      s = reduce(s, a);
      w.append(a, s);
    }
  }
  await w.close();
  const bytes = statSync(file).size;
  console.log(
    `wrote ${n} actions (${e} epochs) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${bytes} bytes, ${(bytes / n).toFixed(1)} bytes/action`,
  );
};

const replayBench = async (file: string): Promise<void> => {
  const t0 = performance.now();
  const r = await replayLog(file);
  if (E.isLeft(r)) throw new Error(r.left.message);
  console.log(
    `replayLog ${file}: ${r.right.actions} actions (${r.right.replayed} applied after the last snapshot, ${r.right.state.results.entries.size} results) in ${(performance.now() - t0).toFixed(0)} ms, ${rss()}`,
  );
};

const resumeBench = async (file: string): Promise<void> => {
  const s = createState({ projectRoot: tmpdir(), epochEnd: 1 });
  const t0 = performance.now();
  const opened = await openHistory(file, s);
  if (E.isLeft(opened)) throw new Error(opened.left.message);
  const ms = performance.now() - t0;
  console.log(
    `openHistory (resume) ${file}: ${opened.right.writer.count()} actions counted in ${ms.toFixed(0)} ms, ${rss()}`,
  );
  await opened.right.writer.close();
};

const [mode, a, b] = process.argv.slice(2);
if (mode === 'dispatch') {
  console.log(machine());
  printSteps(await timeSteps(a ?? tmpdir(), Number(b ?? 20)));
  console.log(machine());
} else if (mode === 'write') await writeBench(Number(a), b ?? 'history.jsonl');
else if (mode === 'replay') await replayBench(a ?? 'history.jsonl');
else if (mode === 'resume') await resumeBench(a ?? 'history.jsonl');
else console.log('usage: tsx bench/log.ts dispatch | write N FILE | replay FILE | resume FILE');
