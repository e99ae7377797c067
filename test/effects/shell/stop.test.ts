/**
 * The stop signals' rule with real signals to a real child process: the first asks for a stop,
 * a copy relayed within the window is the same request, a second one later exits at once with
 * 128 + its number.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { buildFixtures, type BuiltFixtures } from '../../fixtures/build.js';
import { onStopSignal, RELAY_WINDOW_MS, signalExitCode } from '../../../src/effects/shell/stop.js';

let fixtures: BuiltFixtures;
beforeAll(async () => {
  fixtures = await buildFixtures();
}, 60_000);
afterAll(async () => {
  await fixtures.remove();
});

/** Runs the waiter, sends `signals` at the given ms after `ready`, returns its exit and output. */
const run = (signals: readonly [number, NodeJS.Signals][], lifeMs = 2000) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [fixtures.script('stopWaiter'), String(lifeMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      const first = out === '';
      out += d.toString();
      if (first && out.startsWith('ready')) {
        for (const [at, signal] of signals) setTimeout(() => child.kill(signal), at);
      }
    });
    child.on('exit', (code) => {
      resolve({ code, out });
    });
  });

describe('stop signals', () => {
  it('one signal asks for a stop and nothing more', async () => {
    const r = await run([[50, 'SIGTERM']]);
    expect(r).toEqual({ code: 0, out: 'ready\nrequested SIGTERM\ndone SIGTERM\n' });
  });

  it('a copy within the relay window (a wrapper relaying the group signal) is the same request', async () => {
    const r = await run([
      [50, 'SIGINT'],
      [60, 'SIGINT'],
    ]);
    expect(r).toEqual({ code: 0, out: 'ready\nrequested SIGINT\ndone SIGINT\n' });
  });

  it('a second signal after the window exits at once with 128 + its number', async () => {
    const r = await run([
      [50, 'SIGUSR1'],
      [50 + RELAY_WINDOW_MS + 300, 'SIGTERM'],
    ]);
    expect(r).toEqual({ code: 143, out: 'ready\nrequested SIGUSR1\nforced SIGTERM\n' });
  });

  it('exit codes and the rule as data', () => {
    expect(signalExitCode('SIGINT')).toBe(130);
    expect(signalExitCode('SIGTERM')).toBe(143);
    expect(signalExitCode('SIGUSR1')).toBe(138);
    expect(onStopSignal(null, 0)).toBe('request');
    expect(onStopSignal({ at: 0 }, RELAY_WINDOW_MS - 1)).toBe('relayed');
    expect(onStopSignal({ at: 0 }, RELAY_WINDOW_MS)).toBe('exit');
  });
});
