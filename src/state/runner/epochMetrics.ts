/**
 * Metrics over a whole split, as pure functions of plain arrays: exact where an average of
 * per-batch values is not (R², AUC, F1). The tfjs loop calls them through thin wrappers
 * (`danling/tfjs`'s `r2Score`, `auc`, `f1Macro`, `accuracy`) once per split per epoch.
 */

/** Numbers in a row-major `[rows, cols]` layout. */
export interface Matrix {
  readonly data: ArrayLike<number>;
  readonly rows: number;
  readonly cols: number;
}

/**
 * The coefficient of determination of each output column, averaged (scikit-learn's `r2_score`,
 * `uniform_average`): `1 - SS_res / SS_tot`. A column with no variance scores 1 when predicted
 * exactly, else 0 (scikit-learn's `force_finite`). NaN for no rows.
 *
 * @example
 * r2({ data: [1, 2, 3], rows: 3, cols: 1 }, { data: [1, 2, 4], rows: 3, cols: 1 }) // 0.5
 */
export const r2 = (yTrue: Matrix, yPred: Matrix): number => {
  const { rows, cols } = yTrue;
  if (rows === 0 || cols === 0) return Number.NaN;
  let total = 0;
  for (let c = 0; c < cols; c++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += yTrue.data[r * cols + c] ?? 0;
    mean /= rows;
    let res = 0;
    let tot = 0;
    for (let r = 0; r < rows; r++) {
      const t = yTrue.data[r * cols + c] ?? 0;
      const p = yPred.data[r * cols + c] ?? 0;
      res += (t - p) ** 2;
      tot += (t - mean) ** 2;
    }
    total += tot === 0 ? (res === 0 ? 1 : 0) : 1 - res / tot;
  }
  return total / cols;
};

/**
 * The area under the ROC curve of a binary task: the probability that a random positive scores
 * above a random negative, ties counting one half (the Mann-Whitney U statistic over average
 * ranks), in O(n log n). `labels` are 0/1 (any value > 0.5 is positive). NaN when a class is
 * absent.
 *
 * @example
 * auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) // 0.75
 */
export const auc = (labels: ArrayLike<number>, scores: ArrayLike<number>): number => {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (scores[a] ?? 0) - (scores[b] ?? 0),
  );
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    const s = scores[order[i] ?? 0] ?? 0;
    while (j < n && (scores[order[j] ?? 0] ?? 0) === s) j++;
    const rank = (i + 1 + j) / 2; // average of the ranks i + 1 .. j
    for (let k = i; k < j; k++) {
      if ((labels[order[k] ?? 0] ?? 0) > 0.5) {
        positives += 1;
        rankSum += rank;
      }
    }
    i = j;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
};

/**
 * The macro-averaged F1 score over the classes that occur in `yTrue` or `yPred` (scikit-learn's
 * `f1_score(average='macro')`): per class `2 tp / (2 tp + fp + fn)`. NaN for no rows.
 *
 * @example
 * f1Macro([0, 1, 1, 2], [0, 1, 2, 2]) // (1 + 2/3 + 2/3) / 3
 */
export const f1Macro = (yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number => {
  const tp = new Map<number, number>();
  const fp = new Map<number, number>();
  const fn = new Map<number, number>();
  const inc = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  const classes = new Set<number>();
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i] ?? 0;
    const p = yPred[i] ?? 0;
    classes.add(t).add(p);
    if (t === p) inc(tp, t);
    else {
      inc(fp, p);
      inc(fn, t);
    }
  }
  if (classes.size === 0) return Number.NaN;
  let sum = 0;
  for (const c of classes) {
    const t = tp.get(c) ?? 0;
    const d = 2 * t + (fp.get(c) ?? 0) + (fn.get(c) ?? 0);
    sum += d === 0 ? 0 : (2 * t) / d;
  }
  return sum / classes.size;
};

/** The share of rows whose predicted class is the true one. NaN for no rows. */
export const accuracy = (yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number => {
  if (yTrue.length === 0) return Number.NaN;
  let hits = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) hits++;
  return hits / yTrue.length;
};
