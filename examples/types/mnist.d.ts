/**
 * Types for the parts of the `mnist` package (1.1.0, untyped CommonJS) that `examples/mnist.ts`
 * uses. The package ships about 10,000 MNIST digits as JSON (28 x 28 grey levels in [0, 1]);
 * the module is an array of ten digit objects, index = digit.
 */
declare module 'mnist' {
  /** One digit's samples. */
  interface Digit {
    readonly id: number;
    /** How many samples of this digit the package ships. */
    readonly length: number;
    /**
     * Sample `which` as 784 grey levels, row by row. Out of range (or omitted): a sample drawn
     * with `Math.random`, so always pass an index below `length`.
     */
    get(which: number): number[];
  }
  /** `mnist[d]` is the digit `d`. (`set` and `get` draw with `Math.random`: not declared.) */
  const mnist: readonly Digit[];
  export default mnist;
}
