/**
 * Crash safety with real processes: 200 children each resume in a checkpoint dir and save
 * checkpoints in a loop until SIGKILLed 0-30 ms after they report ready. After every kill, every
 * checkpoint name in the dir must load and verify (nothing partial is ever visible), `latest` never
 * goes back, and the temporary files left by the killed child are removed by the next one.
 */
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import * as E from 'fp-ts/lib/Either.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTemp, isTempName } from '../../../src/effects/storage/atomic.js';
import {
  loadCheckpointFile,
  type LoadedCheckpoint,
} from '../../../src/effects/checkpoint/checkpointFile.js';
import {
  findLatestValid,
  listCheckpoints,
} from '../../../src/effects/checkpoint/checkpointStore.js';
import { buildFixtures, type BuiltFixtures } from '../../fixtures/build.js';

const LANES = 4;
const KILLS_PER_LANE = 50;

let fixtures: BuiltFixtures;
let root: string;
beforeAll(async () => {
  fixtures = await buildFixtures();
  root = await fsp.mkdtemp(path.join(tmpdir(), 'danling-crash-'));
});
afterAll(async () => {
  await fixtures.remove();
  await fsp.rm(root, { recursive: true, force: true });
});

interface Ready {
  pid: number;
  start: number;
  cleaned: string[];
}

/** A small deterministic generator for the kill delays (xorshift32). */
const delays = (seed: number): (() => number) => {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % 31;
  };
};

/** Runs one child until it is ready, kills it after `delayMs`, resolves to its ready line. */
const runAndKill = (dir: string, delayMs: number): Promise<Ready> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixtures.script('crashSaver'), dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let ready: Ready | undefined;
    createInterface({ input: child.stdout }).once('line', (text) => {
      ready = JSON.parse(text) as Ready;
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (ready !== undefined && signal === 'SIGKILL') resolve(ready);
      else reject(new Error(`child exited with ${code ?? signal} before being killed: ${stderr}`));
    });
  });

const epochOf = (c: LoadedCheckpoint): number => (c.state as { epoch: number }).epoch;

/** Every tensor of checkpoint k is filled with k: a mixed or partial file would show. */
const consistent = (c: LoadedCheckpoint): boolean => {
  const k = epochOf(c);
  const values = [
    ...Array.from(c.parts.model?.tensors?.w?.data as Float32Array),
    ...Array.from(c.parts.model?.tensors?.b?.data as Float64Array),
    ...Array.from(c.parts.optimizer?.tensors?.step?.data as Int32Array),
  ];
  return values.length === 545 && values.every((v) => v === k);
};

const lane = async (id: number): Promise<{ kills: number; saves: number; leftovers: number }> => {
  const dir = path.join(root, `lane-${id}`);
  const next = delays(0x9e3779b9 + id);
  let lastLatest = -1;
  let leftovers = 0;
  let previousTemps: string[] = [];
  for (let i = 0; i < KILLS_PER_LANE; i++) {
    const ready = await runAndKill(dir, next());
    // The leftovers of the previous kill were removed by this child at its start.
    for (const t of previousTemps) expect(ready.cleaned).toContain(t);
    expect(ready.start).toBe(lastLatest + 1);

    const listed = await listCheckpoints(dir);
    if (E.isLeft(listed)) throw new Error(listed.left.message);
    for (const entry of listed.right) {
      const loaded = await loadCheckpointFile(entry.path);
      if (E.isLeft(loaded))
        throw new Error(`after kill ${i} of lane ${id}: ${loaded.left.message}`);
      expect(consistent(loaded.right)).toBe(true);
    }
    const found = await findLatestValid(dir);
    if (E.isLeft(found)) throw new Error(found.left.message);
    expect(found.right.skipped).toEqual([]);
    const latest = found.right.checkpoint;
    if (latest !== null) {
      expect(path.basename(latest.path)).toBe('latest.safetensors');
      expect(epochOf(latest)).toBeGreaterThanOrEqual(lastLatest);
      lastLatest = epochOf(latest);
    }
    previousTemps = (await fsp.readdir(dir).catch(() => [] as string[]))
      .filter(isTempName)
      .map((n) => path.join(dir, n));
    leftovers += previousTemps.length;
  }
  // The next start cleans up: nothing temporary remains.
  const cleaned = await cleanupTemp(dir);
  expect(E.isRight(cleaned) && cleaned.right.sort()).toEqual(previousTemps.sort());
  expect((await fsp.readdir(dir)).filter(isTempName)).toEqual([]);
  return { kills: KILLS_PER_LANE, saves: lastLatest + 1, leftovers };
};

describe('SIGKILL while saving checkpoints', () => {
  it(`${LANES * KILLS_PER_LANE} kills: the newest valid checkpoint always loads, nothing partial is visible`, async () => {
    const results = await Promise.all(Array.from({ length: LANES }, (_, id) => lane(id)));
    const total = results.reduce(
      (a, r) => ({
        kills: a.kills + r.kills,
        saves: a.saves + r.saves,
        leftovers: a.leftovers + r.leftovers,
      }),
      { kills: 0, saves: 0, leftovers: 0 },
    );
    expect(total.kills).toBeGreaterThanOrEqual(200);
    // Saves did happen between the kills (otherwise the test would show nothing).
    expect(total.saves).toBeGreaterThan(0);
    console.log(
      `crash test: ${total.kills} kills, ${total.saves} checkpoints committed, ${total.leftovers} temporary files left by kills (all cleaned)`,
    );
  }, 120_000);
});
