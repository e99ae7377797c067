/**
 * Benchmark of the crash-safe storage layer, side by side with bare `fs` in the same run.
 *
 *   npx tsx bench/files.ts [--dir /path/on/the/disk/to/test] [--runs 5]
 *
 * 1. Save / load a 100 MB state (25M float32) as a checkpoint vs `fs.writeFile` / `fs.readFile` of
 *    the same 100 MB (bare write shown both without and with fsync). A `sync` runs before every
 *    timed op (so no op pays for pages an earlier one left dirty), and ours and bare alternate
 *    which runs first, round by round.
 * 2. Median latency of saving a small checkpoint (latest + best) whose state holds a 1,000-epoch
 *    results history (a JSON stand-in).
 * 3. JSON Lines appends per fsync policy (`openJsonl`, one awaited append per line; the action
 *    log's batched appender is timed in bench/log.ts).
 * 4. Checksum throughput: CRC-32 (used) vs SHA-256, one pass at a time.
 *
 * What it leaves out: cold reads (loads read what the page cache holds from the saves), other
 * file systems and disks than `--dir`'s, concurrent writers, and a power loss (what fsync buys).
 */
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import * as E from 'fp-ts/lib/Either.js';
import {
  loadCheckpointFile,
  saveCheckpointFile,
} from '../src/effects/checkpoint/checkpointFile.js';
import { saveCheckpointFiles } from '../src/effects/checkpoint/checkpointStore.js';
import { openJsonl, type FsyncPolicy } from '../src/effects/storage/jsonl.js';
import type { Json } from '../src/state/Json.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const RUNS = Number(arg('runs', '5'));
const root = await fsp.mkdtemp(path.join(arg('dir', tmpdir()), 'danling-bench-'));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const time = async (run: () => Promise<unknown>): Promise<number> => {
  const t = performance.now();
  await run();
  return performance.now() - t;
};
const must = <A>(e: E.Either<{ message: string }, A>): A => {
  if (E.isLeft(e)) throw new Error(e.left.message);
  return e.right;
};

// ---------------------------------------------------------------- 1. 100 MB
const N = 25_000_000;
const weights = new Float32Array(N);
for (let i = 0; i < N; i++) weights[i] = i % 1000;
const bytes = new Uint8Array(weights.buffer);
const MB = bytes.byteLength / 1e6;
const payload = {
  state: { epoch: 1 },
  parts: {
    model: { tensors: { w: { dtype: 'F32' as const, shape: [5000, 5000], data: weights } } },
  },
};
const ckpt = path.join(root, 'latest.safetensors');
const bare = path.join(root, 'bare.bin');

const t: Record<string, number[]> = {
  'ours save (fsync)': [],
  'ours save (no fsync)': [],
  'bare writeFile (no fsync)': [],
  'bare writeFile + fsync': [],
  'ours load (verify crc)': [],
  'bare readFile': [],
};
const bareFsync = async (): Promise<void> => {
  const h = await fsp.open(bare, 'w');
  try {
    await h.writeFile(bytes);
    await h.sync();
  } finally {
    await h.close();
  }
};
// Each timed op starts on a clean page cache: `sync` writes back what earlier ops left dirty
// (which would otherwise be charged to whichever op comes next). Ours and bare alternate which
// goes first, round by round.
const timed = async (k: string, run: () => Promise<unknown>): Promise<void> => {
  execSync('sync');
  t[k]?.push(await time(run));
};
const saves: [string, () => Promise<unknown>][] = [
  ['ours save (fsync)', async () => must(await saveCheckpointFile(ckpt, payload))],
  ['bare writeFile (no fsync)', () => fsp.writeFile(bare, bytes)],
  [
    'ours save (no fsync)',
    async () => must(await saveCheckpointFile(ckpt, payload, { fsync: false })),
  ],
  ['bare writeFile + fsync', bareFsync],
];
const loads: [string, () => Promise<unknown>][] = [
  [
    'ours load (verify crc)',
    async () => {
      const loaded = must(await loadCheckpointFile(ckpt));
      if (loaded.parts.model?.tensors?.w?.data.length !== N) throw new Error('bad load');
    },
  ],
  ['bare readFile', () => fsp.readFile(bare)],
];
for (let r = 0; r < RUNS; r++) {
  for (const [k, run] of r % 2 === 0 ? saves : [...saves].reverse()) await timed(k, run);
  for (const [k, run] of r % 2 === 0 ? loads : [...loads].reverse()) await timed(k, run);
}
const ms = (k: string): number => median(t[k] ?? []);
const row = (k: string): string =>
  `| ${k} | ${ms(k).toFixed(0)} | ${(MB / (ms(k) / 1000)).toFixed(0)} |`;
console.log(`\n100 MB state (${MB.toFixed(1)} MB of float32), median of ${RUNS} runs, dir ${root}`);
console.log('| operation | ms | MB/s |\n|---|---|---|');
for (const k of Object.keys(t)) console.log(row(k));
const ratio = (a: string, b: string): string => (ms(b) / ms(a)).toFixed(2);
console.log(
  `\nsave (fsync) throughput vs bare writeFile without fsync: ${ratio('ours save (fsync)', 'bare writeFile (no fsync)')}x (target >= 0.7)`,
);
console.log(
  `save (fsync) throughput vs bare writeFile + fsync:       ${ratio('ours save (fsync)', 'bare writeFile + fsync')}x`,
);
console.log(
  `save (no fsync) vs bare writeFile (no fsync):           ${ratio('ours save (no fsync)', 'bare writeFile (no fsync)')}x`,
);
console.log(
  `load (full verification) vs bare readFile:              ${ratio('ours load (verify crc)', 'bare readFile')}x (target >= 0.8)`,
);
await fsp.rm(ckpt);
await fsp.rm(bare);

// ---------------------------------------------------------------- 2. small checkpoint, 1,000 epochs
const results: Record<string, Json> = {};
for (let e = 0; e < 1000; e++)
  results[String(e)] = {
    train: { loss: 1 / (e + 1), accuracy: e / 1000 },
    val: { loss: 1.1 / (e + 1), accuracy: e / 1001 },
  };
const small = {
  state: { config: { lr: 0.01, epochs: 1000 }, epoch: 999, results, rng: [1, 2, 3, 4] },
  parts: {
    model: {
      tensors: { w: { dtype: 'F32' as const, shape: [4, 16], data: new Float32Array(64) } },
    },
  },
};
const stateJson = JSON.stringify(small.state);
const smallDir = path.join(root, 'small');
const lat: number[] = [];
const latBare: number[] = [];
for (let r = 0; r < 60; r++) {
  lat.push(
    await time(async () => must(await saveCheckpointFiles(smallDir, small, ['latest', 'best']))),
  );
  latBare.push(await time(() => fsp.writeFile(path.join(root, 'state.json'), stateJson)));
}
console.log(
  `\nsmall checkpoint with a 1,000-epoch history (state JSON ${(stateJson.length / 1e3).toFixed(0)} kB): ` +
    `median save latest+best (fsync) ${median(lat.slice(10)).toFixed(2)} ms; bare writeFile of the state JSON (no fsync) ${median(latBare.slice(10)).toFixed(2)} ms (50 runs after 10 warm-up)`,
);

// ---------------------------------------------------------------- 3. JSON Lines
const line = {
  type: 'stepEnd',
  step: 0,
  loss: 0.123456,
  lr: 0.001,
  meters: { loss: { sum: 12.3, count: 100 } },
};
for (const policy of ['always', { every: 100 }, 'never'] as FsyncPolicy[]) {
  const file = path.join(root, `log-${JSON.stringify(policy).replace(/\W/g, '')}.jsonl`);
  const { writer } = must(await openJsonl(file, { fsync: policy }));
  const n = policy === 'always' ? 500 : 10_000;
  const ms2 = await time(async () => {
    for (let i = 0; i < n; i++) must(await writer.append({ ...line, step: i }));
  });
  must(await writer.close());
  console.log(
    `jsonl fsync ${JSON.stringify(policy)}: ${((n / ms2) * 1000).toFixed(0)} lines/s (${n} lines)`,
  );
}

// ---------------------------------------------------------------- 4. checksums
// One pass at a time (synchronous work inside Promise.all would run back to back and be timed
// together), 5 passes each, alternating.
const crcRuns: number[] = [];
const shaRuns: number[] = [];
for (let r = 0; r < 5; r++) {
  crcRuns.push(await time(() => Promise.resolve(crc32(bytes))));
  shaRuns.push(await time(() => Promise.resolve(createHash('sha256').update(bytes).digest())));
}
const crcMs = median(crcRuns);
const shaMs = median(shaRuns);
console.log(
  `\nchecksum of 100 MB: crc32 ${(MB / (crcMs / 1000)).toFixed(0)} MB/s, sha256 ${(MB / (shaMs / 1000)).toFixed(0)} MB/s`,
);
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
await fsp.rm(root, { recursive: true, force: true });
