/**
 * TensorFlow.js parts: adapters that make a `tf.LayersModel` and a tfjs optimizer checkpoint
 * parts (`Stateful`), their tensors in the safetensors layout. `@tensorflow/tfjs` is an optional
 * peer dependency: the adapters take the `tf` module you use (`@tensorflow/tfjs` or
 * `@tensorflow/tfjs-node`) and import nothing from it at run time.
 */
import type * as TF from '@tensorflow/tfjs';
import type { StateDict, Stateful } from '../checkpoint/checkpointFile.js';
import { ownedCopy } from '../checkpoint/checkpointParts.js';
import type { Dtype, Tensor, TensorData } from '../../state/formats/safetensors.js';

/** The part of the `tf` namespace the adapters use. */
export type TfModule = Pick<typeof TF, 'tensor' | 'scalar' | 'tidy'> &
  Partial<Pick<typeof TF, 'getBackend'>>;

/**
 * A model part: the model it saves (so the loop can take it from `runner.parts`), and which
 * backend the checkpoint it loaded was saved on.
 */
export interface ModelPart extends Stateful {
  readonly model: TF.LayersModel;
  /** The backend named in the last state dict loaded (`undefined`: none loaded, or not recorded). */
  loadedBackend(): string | undefined;
}

const DTYPES: Readonly<Record<string, Dtype>> = { float32: 'F32', int32: 'I32', bool: 'U8' };

const toTensor = async (t: TF.Tensor): Promise<Tensor> => {
  const dtype = DTYPES[t.dtype];
  if (dtype === undefined) throw new TypeError(`cannot checkpoint a ${t.dtype} tensor`);
  const values = await t.data();
  // A copy (the cpu backend's `data()` is its own storage), owned by the snapshot alone.
  const data: TensorData = ownedCopy(
    dtype === 'F32'
      ? Float32Array.from(values as Float32Array)
      : dtype === 'I32'
        ? Int32Array.from(values as Int32Array)
        : Uint8Array.from(values as Uint8Array),
  );
  return { dtype, shape: [...t.shape], data };
};

const fromTensor = (tf: TfModule, name: string, t: Tensor): TF.Tensor => {
  if (t.dtype === 'F32') return tf.tensor(t.data as Float32Array, [...t.shape], 'float32');
  if (t.dtype === 'I32') return tf.tensor(t.data as Int32Array, [...t.shape], 'int32');
  throw new TypeError(`${name}: expected an F32 or I32 tensor, got ${t.dtype}`);
};

const sameShape = (a: readonly number[], b: readonly (number | null)[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * A `tf.LayersModel` as a checkpoint part: its weights by their names (`dense1/kernel`, ...).
 * Name the layers (`tf.layers.dense({ name: 'dense1', ... })`) so the names do not depend on
 * how many layers the process created before. Loading checks every name, shape and dtype and
 * says which one is wrong; nothing is written to the model unless all match.
 *
 * @example
 * const parts = { model: modelPart(tf, model), optimizer: optimizerPart(tf, optimizer) };
 */
export const modelPart = (tf: TfModule, model: TF.LayersModel): ModelPart => {
  let loaded: string | undefined;
  return {
    model,
    loadedBackend: () => loaded,
    stateDict: async (): Promise<StateDict> => {
      const tensors: Record<string, Tensor> = {};
      for (const w of model.weights) tensors[w.originalName] = await toTensor(w.read());
      const backend = tf.getBackend?.();
      return backend === undefined ? { tensors } : { tensors, json: { backend } };
    },
    loadStateDict: (stateDict: StateDict): void => {
      const tensors = stateDict.tensors ?? {};
      const problems: string[] = [];
      for (const w of model.weights) {
        const t = tensors[w.originalName];
        if (t === undefined) problems.push(`${w.originalName}: missing from the checkpoint`);
        else if (!sameShape(t.shape, w.shape)) {
          problems.push(
            `${w.originalName}: expected shape [${w.shape.join(',')}], got [${t.shape.join(',')}]`,
          );
        } else if (DTYPES[w.dtype] !== t.dtype) {
          problems.push(`${w.originalName}: expected ${String(DTYPES[w.dtype])}, got ${t.dtype}`);
        }
      }
      if (problems.length > 0) throw new Error(`model weights do not fit:\n${problems.join('\n')}`);
      model.setWeights(
        model.weights.map((w) => fromTensor(tf, w.originalName, tensors[w.originalName] as Tensor)),
      );
      const json = stateDict.json as { backend?: unknown } | undefined;
      loaded = typeof json?.backend === 'string' ? json.backend : undefined;
    },
  };
};

/** An optimizer part: the optimizer it saves (so the loop can take it from `runner.parts`). */
export interface OptimizerPart extends Stateful {
  readonly optimizer: TF.Optimizer;
}

/** Whether `t` is a `tf.Variable` (of whichever tfjs build made it): it has `assign`. */
const isVariable = (t: TF.Tensor): boolean =>
  typeof (t as Partial<Pick<TF.Variable, 'assign'>>).assign === 'function';

/** Optimizer fields that `getWeights` leaves out but an exact resume needs (Adam, Adamax). */
const EXTRA_SCALARS = ['accBeta1', 'accBeta2'] as const;

/**
 * A tfjs optimizer as a checkpoint part: its `getWeights()` (iteration count and slots, in
 * order) plus Adam's running `accBeta1` / `accBeta2`, which tfjs's own `setWeights` recomputes
 * as `beta ** (iterations + 1)` and so would not resume bit for bit.
 */
export const optimizerPart = (tf: TfModule, optimizer: TF.Optimizer): OptimizerPart => {
  const extras = optimizer as unknown as Partial<
    Record<(typeof EXTRA_SCALARS)[number], TF.Variable>
  >;
  return {
    optimizer,
    stateDict: async (): Promise<StateDict> => {
      const named = await optimizer.getWeights();
      const tensors: Record<string, Tensor> = {};
      const order: string[] = [];
      try {
        for (const { name, tensor } of named) {
          order.push(name);
          tensors[name] = await toTensor(tensor);
        }
      } finally {
        // getWeights() hands out the slot variables themselves and a new tensor of the
        // iteration count at each call: that one is ours to dispose (one a save, for good,
        // otherwise; a long run's engine slowed with them).
        for (const { tensor } of named) if (!isVariable(tensor)) tensor.dispose();
      }
      for (const key of EXTRA_SCALARS) {
        const v = extras[key];
        if (v !== undefined) tensors[`__${key}`] = await toTensor(v);
      }
      return { tensors, json: { order, className: optimizer.getClassName() } };
    },
    checkStateDict: (stateDict: StateDict): readonly string[] => {
      const tensors = stateDict.tensors ?? {};
      const json = stateDict.json as { order?: unknown; className?: unknown } | undefined;
      const problems: string[] = [];
      if (!Array.isArray(json?.order))
        problems.push('no slot order saved (not a tfjs optimizer state)');
      if (json?.className !== undefined && json.className !== optimizer.getClassName()) {
        problems.push(
          `the checkpoint holds a ${JSON.stringify(json.className)}, this run uses a ${optimizer.getClassName()}`,
        );
      }
      const order = Array.isArray(json?.order) ? (json.order as unknown[]) : [];
      const missing = order.filter((n) => typeof n !== 'string' || tensors[n] === undefined);
      if (missing.length > 0) problems.push(`missing slots ${missing.map(String).join(', ')}`);
      return problems;
    },
    loadStateDict: async (stateDict: StateDict): Promise<void> => {
      const tensors = stateDict.tensors ?? {};
      const json = stateDict.json as { order?: unknown } | undefined;
      const order = Array.isArray(json?.order) ? (json.order as string[]) : [];
      await optimizer.setWeights(
        order.map((name) => ({ name, tensor: fromTensor(tf, name, tensors[name] as Tensor) })),
      );
      for (const key of EXTRA_SCALARS) {
        const v = extras[key];
        const saved = tensors[`__${key}`];
        if (v !== undefined && saved !== undefined) v.assign(fromTensor(tf, key, saved));
      }
    },
  };
};
