/**
 * The spec's scale_lr: the linear scaling rule (Goyal et al. 2017), with its bug fixed (the
 * spec tested `lr_scale_factor in self.config`, a value against the keys).
 */
import * as E from 'fp-ts/lib/Either.js';
import type { RunnerState } from '../state/runner/RunnerState.js';
import { batchSizeEquivalent } from '../state/runner/selectors.js';
import { mergeConfig } from './reducers.js';
import { warning as warningOf, type Warning } from '../state/warning.js';

/** Neither a scale factor nor a base batch size is known. */
export interface ScaleLrError {
  readonly _tag: 'ScaleLrInvalid';
  readonly message: string;
}

/** What {@link scaleLr} gives: the scaled learning rate, the state recording the factor, a warning. */
export interface ScaledLr {
  readonly lr: number;
  readonly state: RunnerState;
  readonly warning?: Warning<'BatchSizeBaseIgnored'>;
}

/**
 * Scales `lr` by a factor: the `lrScaleFactor` given, else `config.lrScaleFactor`, else
 * `batchSizeEquivalent / batchSizeBase` (the base given, else `config.batchSizeBase`). The factor
 * used is recorded in the config. A `Left` says what to set when no factor can be found.
 *
 * @example
 * scaleLr(state, 0.1, { batchSizeBase: 256 }) // Right({ lr: 0.1 * 512 / 256, state, ... }) at batch 512
 */
export const scaleLr = (
  state: RunnerState,
  lr: number,
  options: { readonly lrScaleFactor?: number; readonly batchSizeBase?: number } = {},
): E.Either<ScaleLrError, ScaledLr> => {
  const given = options.lrScaleFactor ?? state.config.lrScaleFactor;
  let factor: number;
  let warning: Warning<'BatchSizeBaseIgnored'> | undefined;
  if (given !== undefined) {
    factor = given;
    if (options.batchSizeBase !== undefined) {
      warning = warningOf(
        'BatchSizeBaseIgnored',
        'scaleLr: batchSizeBase is ignored because lrScaleFactor is set',
      );
    }
  } else {
    const base = options.batchSizeBase ?? state.config.batchSizeBase;
    if (base === undefined) {
      return E.left({
        _tag: 'ScaleLrInvalid',
        message:
          'scaleLr needs a scale factor: set config.lrScaleFactor, or config.batchSizeBase (the batch size the lr was tuned for)',
      });
    }
    let equivalent: number;
    try {
      equivalent = batchSizeEquivalent(state);
    } catch (error) {
      return E.left({
        _tag: 'ScaleLrInvalid',
        message: `scaleLr needs the batch size: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
    factor = equivalent / base;
  }
  const next = mergeConfig(state, { lrScaleFactor: factor });
  return E.right(
    warning === undefined
      ? { lr: lr * factor, state: next }
      : { lr: lr * factor, state: next, warning },
  );
};
