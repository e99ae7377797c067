import { describe, expect, it } from 'vitest';
import { createProgressBar } from '../../../src/effects/logging/progress.js';
import { renderProgress } from '../../../src/state/runner/progressLine.js';

describe('renderProgress', () => {
  it('shows split, bar, step/total, rate, ETA and meters, cut to the width', () => {
    expect(
      renderProgress({
        split: 'train',
        step: 3,
        total: 10,
        elapsedMs: 1500,
        meters: { loss: 0.5 },
        width: 80,
      }),
    ).toBe('train [=====>              ] 3/10 2.0 it/s ETA 0:04 loss: 0.5000');
    expect(
      renderProgress({ split: 'val', step: 10, total: 10, elapsedMs: 5000, meters: {}, width: 80 }),
    ).toBe('val [====================] 10/10 2.0 it/s ETA 0:00');
    expect(
      renderProgress({
        split: 'val',
        step: 10,
        total: 10,
        elapsedMs: 5000,
        meters: {},
        width: 80,
        epoch: 'epoch 3/19',
      }),
    ).toBe('epoch 3/19 val [====================] 10/10 2.0 it/s ETA 0:00');
    expect(
      renderProgress({ split: 'val', step: 10, total: 10, elapsedMs: 5000, meters: {}, width: 80 }),
    ).toBe('val [====================] 10/10 2.0 it/s ETA 0:00');
    expect(
      renderProgress({ split: 'train', step: 0, total: 10, elapsedMs: 0, meters: {}, width: 12 }),
    ).toBe('train [     ');
  });
});

describe('createProgressBar', () => {
  it('redraws in place on a TTY, throttled, always at the last step', () => {
    const out: string[] = [];
    let t = 0;
    const bar = createProgressBar(
      { isTTY: true, columns: 100, write: (s: string) => out.push(s) },
      { now: () => t, intervalMs: 100 },
    );
    bar.update('train', 1, 4, { loss: 1 });
    t = 50;
    bar.update('train', 2, 4, { loss: 0.9 }); // throttled
    t = 200;
    bar.update('train', 3, 4, { loss: 0.8 });
    t = 210;
    bar.update('train', 4, 4, { loss: 0.7 }); // last step: drawn
    bar.clear();
    expect(out).toEqual([
      '\r\x1b[2Ktrain [====>               ] 1/4 0.0 it/s ETA ? loss: 1.0000',
      '\r\x1b[2Ktrain [==============>     ] 3/4 15.0 it/s ETA 0:00 loss: 0.8000',
      '\r\x1b[2Ktrain [====================] 4/4 19.0 it/s ETA 0:00 loss: 0.7000',
      '\r\x1b[2K',
    ]);
  });

  it('draws nothing off a TTY', () => {
    const out: string[] = [];
    const bar = createProgressBar({ isTTY: false, write: (s: string) => out.push(s) });
    bar.update('train', 1, 2, {});
    bar.clear();
    expect(out).toEqual([]);
  });
});
