/** A model part for tests: one F32 weight vector `w`, saved and loaded as the tensor `w`. */
import type { StateDict, Stateful } from '../../src/effects/checkpoint/checkpointFile.js';

export class Weights implements Stateful {
  constructor(public w: Float32Array) {}
  stateDict(): StateDict {
    return { tensors: { w: { dtype: 'F32', shape: [this.w.length], data: this.w.slice() } } };
  }
  loadStateDict(sd: StateDict): void {
    const t = sd.tensors?.['w'];
    if (t === undefined) throw new Error('no w');
    this.w = Float32Array.from(t.data as Float32Array);
  }
}
