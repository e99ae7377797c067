/** `danling history`: states replayed from a real run's history.jsonl. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { join } from 'node:path';
import { replayLog } from '../../src/effects/run/historyReader.js';
import { cli, fixtures, type Fixtures } from './fixtures.js';

let f: Fixtures;
beforeAll(async () => {
  f = await fixtures();
}, 120_000);

describe('danling history', () => {
  it('prints the state at the end of an epoch, as replayLog rebuilds it', async () => {
    const r = await cli(['history', f.a, '--epoch', '1']);
    expect(r.code, r.err).toBe(0);
    const replayed = await replayLog(join(f.a, 'history.jsonl'), { epoch: 1 });
    if (E.isLeft(replayed)) throw new Error(replayed.left.message);
    expect(r.out).toContain(
      `# ${join(f.a, 'history.jsonl')} at epoch:1\nactions: ${replayed.right.actions}\n`,
    );
    expect(r.out).toContain('progress:\n  epoch: 1\n  step: 16\n');
    expect(r.out).toMatch(/\nresults:\n {2}"0":\n {4}train:\n/);
    expect(r.out).not.toContain('"2":');
    const json = JSON.parse((await cli(['history', f.a, '--epoch', '1', '--json'])).out) as {
      actions: number;
      rng: unknown;
      config: { runName: string };
    };
    expect(json.actions).toBe(replayed.right.actions);
    expect(json.rng).toEqual(replayed.right.state.rng);
    expect(json.config.runName).toBe('a');
  });

  it('reaches a step and an action count', async () => {
    const step = JSON.parse((await cli(['history', f.a, '--step', '10', '--json'])).out) as {
      actions: number;
      progress: { step: number; epoch: number };
    };
    expect(step.progress).toMatchObject({ step: 10, epoch: 1 });
    const before = JSON.parse(
      (await cli(['history', f.a, '--action', String(step.actions - 1), '--json'])).out,
    ) as { progress: { step: number } };
    expect(before.progress.step).toBe(9);
  });

  it('--diff prints what changed between two points by dotted path', async () => {
    const r = await cli(['history', f.a, '--diff', 'epoch:0', 'epoch:1']);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/: epoch:0 -> epoch:1 \(\d+ changes\)$/);
    expect(lines).toContain('progress.epoch: 0 -> 1');
    expect(lines).toContain('progress.step: 8 -> 16');
    expect(lines.some((l) => /^results\.1\.val\.accuracy: \(unset\) -> \d/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('rng: ['))).toBe(true);
    expect(lines.some((l) => l.startsWith('config.'))).toBe(false);
  });

  it('replays the log of a SIGKILLed run to its last written action', async () => {
    const r = await cli(['history', f.killed, '--json']);
    expect(r.code, r.err).toBe(0);
    const state = JSON.parse(r.out) as { progress: { epoch: number }; results: object };
    // Killed once its first epoch result was written: at least that result is in the log.
    expect(Object.keys(state.results)).toContain('0');
    expect(state.progress.epoch).toBeLessThan(60);
  });

  it('exits 2 on a bad point and 1 on a point past the log', async () => {
    const bad = await cli(['history', f.a, '--diff', 'epoch:0', 'two']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('"two" is not a point; use epoch:N, action:K, step:S or end');
    expect((await cli(['history', f.a, '--epoch', '-1'])).code).toBe(2);
    expect((await cli(['history', f.a, '--epoch', '1', '--step', '3'])).code).toBe(2);
    const past = await cli(['history', f.a, '--epoch', '9']);
    expect(past.code).toBe(1);
    expect(past.err).toContain('cannot replay to epoch 9: the log ends in epoch 2');
  });
});
