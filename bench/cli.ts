/**
 * How fast `danling` starts: spawns `node dist/cli/main.js <args>` N times (after
 * `npm run build`) and prints the median, spread and extremes of the wall time per start, against
 * `node -e 0` (Node's own start-up) measured the same way, interleaved.
 * Run: `npm run build && npx tsx bench/cli.ts [N] [args...]` (default: 30 --help).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const N = Number(process.argv[2] ?? 30);
const args = process.argv.length > 3 ? process.argv.slice(3) : ['--help'];
const main = new URL('../dist/cli/main.js', import.meta.url).pathname;
if (!existsSync(main)) {
  process.stderr.write(`bench/cli: ${main} is missing; run npm run build first\n`);
  process.exit(2);
}

const time = (argv: string[]): number => {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0)
    throw new Error(`${argv.join(' ')} exited ${String(r.status)}: ${String(r.stderr)}`);
  return ms;
};

const cli: number[] = [];
const bare: number[] = [];
time([main, ...args]); // warm the file cache
for (let i = 0; i < N; i++) {
  cli.push(time([main, ...args]));
  bare.push(time(['-e', '0']));
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return {
    median: q(0.5),
    p10: q(0.1),
    p90: q(0.9),
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
  };
};
const show = (name: string, xs: number[]): string => {
  const { median, p10, p90, min, max } = stats(xs);
  return `${name.padEnd(28)} median ${median.toFixed(1)} ms  p10-p90 ${p10.toFixed(1)}-${p90.toFixed(1)} ms  min ${min.toFixed(1)}  max ${max.toFixed(1)}`;
};
console.log(`node ${process.version}, ${N} starts each, interleaved`);
console.log(show(`danling ${args.join(' ')}`, cli));
console.log(show('node -e 0', bare));
console.log(
  `danling's own start-up (median difference): ${(stats(cli).median - stats(bare).median).toFixed(1)} ms`,
);
