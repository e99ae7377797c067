/**
 * The progress bar's text, pure: `train [=====>     ] 30/99 12.3 it/s ETA 0:05 loss: 0.1000`.
 */
import { formatValue } from './format.js';

/** What a progress line shows. */
export interface ProgressView {
  readonly split: string;
  /** Steps done in this split. */
  readonly step: number;
  readonly total: number;
  /** Milliseconds since the split began. */
  readonly elapsedMs: number;
  readonly meters: Readonly<Record<string, number>>;
  /** Terminal width in columns (the line is cut to it). */
  readonly width: number;
  /** Where in the run, before the split (`epoch 3/19`, as the epoch lines count). */
  readonly epoch?: string | undefined;
}

const clock = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
};

/**
 * Renders one progress line: split, bar, step/total, rate, ETA and the meters, cut to `width`.
 *
 * @example
 * renderProgress({ split: 'train', step: 3, total: 10, elapsedMs: 1500, meters: { loss: 0.5 }, width: 80 })
 * // 'train [======>              ] 3/10 2.0 it/s ETA 0:04 loss: 0.5000'
 * renderProgress({ ..., epoch: 'epoch 3/19' }) // 'epoch 3/19 train [...'
 */
export const renderProgress = (view: ProgressView): string => {
  const { split, step, total, elapsedMs, meters, width, epoch } = view;
  const fraction = total > 0 ? Math.min(1, step / total) : 0;
  const barWidth = 20;
  const filled = Math.round(fraction * barWidth);
  const bar =
    `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === barWidth ? '=' : '>') : ''}`.padEnd(
      barWidth,
    );
  const rate = elapsedMs > 0 ? (step * 1000) / elapsedMs : 0;
  const known = Number.isFinite(total);
  const eta = rate > 0 && known ? (total - step) / rate : Number.POSITIVE_INFINITY;
  const values = Object.entries(meters)
    .map(([k, v]) => `${k}: ${formatValue(v)}`)
    .join(' ');
  const line = `${epoch === undefined ? '' : `${epoch} `}${split} [${bar}] ${step}/${known ? total : '?'} ${rate.toFixed(1)} it/s ETA ${clock(eta)}${values === '' ? '' : ` ${values}`}`;
  return line.length > width ? line.slice(0, Math.max(0, width)) : line;
};
