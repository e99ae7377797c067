/**
 * The backend a training runs on: `config.backend` (switched to when another one is in use),
 * logged, and compared with the one the resumed checkpoint was saved on.
 */
import type * as TF from '@tensorflow/tfjs';
import * as E from 'fp-ts/lib/Either.js';
import { warning } from '../../state/warning.js';
import type { Runner } from '../shell/runner.js';
import type { ModelPart } from './tfjs.js';
import { failed, type TrainError } from './task.js';

/**
 * Switches to `config.backend` when another one is in use (tfjs moves the variables over) and
 * warns when the run resumed from a checkpoint saved on another backend (no longer bitwise).
 */
export const useBackend = async (
  runner: Runner,
  tf: typeof TF,
): Promise<E.Either<TrainError, string>> => {
  // The backend: switched to config.backend when another one is in use (tfjs moves the
  // variables over); a resume from a checkpoint saved on another backend is no longer bitwise.
  const wanted = runner.state.config.backend;
  if (wanted !== undefined && tf.getBackend() !== wanted) {
    let switched: boolean;
    try {
      switched = await tf.setBackend(wanted);
      await tf.ready();
    } catch {
      switched = false;
    }
    if (!switched) {
      return failed('trainTfjs', {
        message: `backend: the ${wanted} backend is not registered or did not start${wanted === 'wasm' ? "; import '@tensorflow/tfjs-backend-wasm' before trainTfjs" : ''}`,
      });
    }
  }
  const backend = tf.getBackend();
  runner.logger.debug({ backend }, `training on the ${backend} backend`);
  const savedOn =
    runner.resumedFrom === null
      ? undefined
      : (runner.parts['model'] as Partial<ModelPart> | undefined)?.loadedBackend?.();
  if (savedOn !== undefined && savedOn !== backend) {
    const w = warning(
      'BackendChanged',
      `${runner.resumedFrom ?? 'the checkpoint'} was saved on the ${savedOn} backend, this run uses ${backend}: the resume is not bitwise exact (set backend: ${savedOn} to continue exactly)`,
    );
    runner.logger.warn({ warning: w._tag, savedOn, backend }, w.message);
  }
  return E.right(backend);
};
