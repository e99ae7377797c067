/**
 * The long kill-and-resume campaign (issues 11 and 13): trains the demo (Iris, batches of 2,
 * 10 epochs, a checkpoint every 7 steps) once without stopping, then for each trial starts it and
 * stops it again and again at random moments, with SIGKILL or SIGTERM (to the process group),
 * resuming with --autoResume true until the run completes; each trial must end with weights,
 * results, random stream and metric rows bitwise equal to the uninterrupted run. CI runs a
 * short version of this in test/e2e/stop.test.ts and test/e2e/resume.test.ts.
 *
 * Run: `npx tsx scripts/kill-campaign.ts [TRIALS] [SEED]` (default 10 trials, seed 1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { finalOf, finish, startDemo } from '../test/helpers/demoRun.js';

const TRIALS = Number(process.argv[2] ?? 10);
let seed = Number(process.argv[3] ?? 1);
/** A small seeded generator (mulberry32), so a campaign can be rerun as it was. */
const random = (): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const ARGS = ['--epochEnd', '10', '--dataloader.batchSize', '2', '--saveInterval', '0'];
const ARGS_RUN = [...ARGS, '--seed', '3', '--logInterval', '4', '--saveSteps', '7'];
const root = mkdtempSync(join(tmpdir(), 'danling-kills-'));
const straight = join(root, 'straight');
const began = Date.now();
const done = await finish(startDemo(straight, ARGS_RUN));
// How long a whole run takes here: the stops land between 35% and 100% of it.
const span = Date.now() - began;
if (done.code !== 0) throw new Error(`the reference run failed:\n${done.out}`);
const reference = await finalOf(straight);

let stops = 0;
let kills = 0;
let terms = 0;
let early = 0;
let failed = 0;
const started = Date.now();
for (let trial = 0; trial < TRIALS; trial++) {
  const dir = join(root, `trial-${trial}`);
  let starts = 0;
  for (;;) {
    starts++;
    const resume = starts > 1 ? ['--autoResume', 'true'] : [];
    const child = startDemo(dir, [...ARGS_RUN, ...resume], { detached: true });
    const exited = finish(child);
    // Stop at a random moment of the run (after most of the start-up: 35% to 100% of the
    // reference run's time), or let it finish after 4 stops.
    const wait = span * (0.35 + 0.65 * random());
    const term = random() < 0.5;
    const timer =
      starts <= 4
        ? setTimeout(() => {
            try {
              process.kill(-(child.pid ?? 0), term ? 'SIGTERM' : 'SIGKILL');
            } catch {
              // it had ended
            }
          }, wait)
        : undefined;
    const r = await exited;
    clearTimeout(timer);
    if (r.code === 0) break;
    if (r.signal === 'SIGKILL') kills++;
    else if (r.code === 143) terms++;
    else if (r.signal === 'SIGTERM')
      early++; // before createRunner installed its handlers
    else throw new Error(`trial ${trial}: exit ${String(r.code)} ${String(r.signal)}\n${r.out}`);
    stops++;
  }
  const after = await finalOf(dir);
  const differs = (['bytes', 'results', 'rng', 'rows', 'step'] as const).filter(
    (k) => !isDeepStrictEqual(after[k], reference[k]),
  );
  const same = differs.length === 0;
  if (!same) failed++;
  console.log(
    `trial ${trial}: ${starts} starts, ${same ? 'bitwise equal' : `DIFFERENT (${differs.join(', ')}; kept in ${dir})`} to the uninterrupted run`,
  );
}
console.log(
  `${TRIALS} trials, ${stops} stops (${kills} SIGKILL, ${terms} SIGTERM graceful, ${early} SIGTERM during start-up), ` +
    `${TRIALS - failed} of ${TRIALS} bitwise equal, ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
if (failed === 0) rmSync(root, { recursive: true, force: true });
else console.log(`the runs are kept in ${root} (the uninterrupted one in ${straight})`);
process.exitCode = failed === 0 ? 0 : 1;
