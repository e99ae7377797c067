/**
 * Debugging with the action log: rebuild the state of a finished run at the end of epoch 3 from
 * its history.jsonl, and print what changed between two epochs.
 *
 *   npm run demo && npx tsx examples/replay.ts experiments/<run>/<timestamp>/history.jsonl [3] [4]
 *
 * In your own project, import from 'danling' and 'danling/effects' instead of '../src/...'.
 */
import * as E from 'fp-ts/lib/Either.js';
import { formatEpochResult, latestResult, select } from '../src/index.js';
import { replayLog } from '../src/effects/index.js';

const [path, a = '3', b = '4'] = process.argv.slice(2);
if (path === undefined) {
  process.stderr.write('usage: tsx examples/replay.ts <history.jsonl> [epochA] [epochB]\n');
  process.exit(2);
}
const at = async (epoch: number) => {
  const r = await replayLog(path, { epoch });
  if (E.isLeft(r)) {
    process.stderr.write(`${r.left.message}\n`);
    process.exit(2);
  }
  for (const w of r.right.warnings) process.stderr.write(`warning: ${w.message}\n`);
  return r.right;
};

const [ra, rb] = [await at(Number(a)), await at(Number(b))];
for (const [label, r] of [
  [a, ra],
  [b, rb],
] as const) {
  const latest = latestResult(r.state);
  console.log(
    `state at the end of epoch ${label}: ${r.actions} actions (${r.replayed} replayed from a snapshot), step ${r.state.progress.step}`,
  );
  if (latest !== null) console.log(formatEpochResult(r.state, latest, latest.index));
}
const before = new Set(select.results(ra.state).map((e) => e.index));
const added = select.results(rb.state).filter((e) => !before.has(e.index));
console.log(`\nbetween epochs ${a} and ${b}:`);
console.log(`  steps: ${ra.state.progress.step} -> ${rb.state.progress.step}`);
console.log(`  results added at indices: ${added.map((e) => e.index).join(', ') || 'none'}`);
for (const name of Object.keys(rb.state.meters)) {
  const m0 = ra.state.meters[name];
  const m1 = rb.state.meters[name];
  console.log(
    `  meter ${name}: avg ${String(m0?.avg)} -> ${String(m1?.avg)} (count ${m0?.count ?? 0} -> ${m1?.count ?? 0})`,
  );
}
