/**
 * End to end, with a real TensorFlow.js model in real child processes: training N epochs without
 * stopping equals training, being killed with SIGKILL part-way, resuming with autoResume and
 * finishing. Final weights bitwise equal, results equal, random stream equal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalOf as final, finish, latestIndex, startDemo } from '../helpers/demoRun.js';

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-e2e-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const EPOCHS = 40;

const start = (projectRoot: string, extra: string[] = []) =>
  startDemo(projectRoot, ['--epochEnd', String(EPOCHS), '--saveInterval', '0', ...extra]);

describe('exact resume of a real tfjs run', () => {
  it('killed with SIGKILL part-way, resumed, equals never stopping', async () => {
    const straight = join(root, 'straight');
    const killed = join(root, 'killed');
    const done = await finish(start(straight));
    expect(done.code, done.out).toBe(0);

    // Kill at a random moment after a random epoch between 3 and 12.
    const killAt = 3 + Math.floor(Math.random() * 10);
    const child = start(killed);
    const exited = finish(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (latestIndex(killed) >= killAt) {
          clearInterval(timer);
          // Somewhere inside the next epoch (an Iris epoch takes tens of milliseconds).
          setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, Math.random() * 30);
        }
      }, 5);
      void exited.then((r) => {
        clearInterval(timer);
        if (r.signal !== 'SIGKILL')
          reject(new Error(`the run ended before it was killed:\n${r.out}`));
      });
    });
    const first = await exited;
    expect(first.signal).toBe('SIGKILL');
    const before = latestIndex(killed);
    expect(before).toBeLessThan(EPOCHS - 1);

    const resumed = await finish(start(killed, ['--autoResume', 'true']));
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain('run resumed');

    const [a, b] = [await final(straight), await final(killed)];
    expect(b.epoch).toBe(EPOCHS - 1);
    expect(b.bytes).toEqual(a.bytes);
    expect(b.results).toEqual(a.results);
    expect(b.rng).toEqual(a.rng);
    expect(b.step).toBe(a.step);
    expect(b.rows).toEqual(a.rows);
  });
});
