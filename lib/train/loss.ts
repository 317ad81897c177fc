/**
 * Hugging Face's causal-LM loss: logits at position t predict the label at t+1; labels −100 are ignored.
 * Returned as a SUM over loss tokens plus the count, so that a mean can be taken over a whole batch or
 * over all micro-batches of a gradient-accumulation step (transformers ≥ 4.46 divides by the number of
 * loss tokens of the whole accumulated batch).
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';

export const IGNORE_INDEX = -100;

/** (b, t) logit rows that predict a non-ignored label, and those labels. */
export function lossTargets(labels: number[][], vocabSize: number): { rows: number[]; targets: number[] } {
  const rows: number[] = [];
  const targets: number[] = [];
  const T = labels[0]?.length ?? 0;
  labels.forEach((row, b) => {
    if (row.length !== T) throw new PersonaError(`labels row ${b} has ${row.length} entries, row 0 has ${T}`, { field: 'labels' });
    for (let t = 0; t + 1 < T; t++) {
      const y = row[t + 1];
      if (y === IGNORE_INDEX) continue;
      if (!Number.isInteger(y) || y < 0 || y >= vocabSize)
        throw new PersonaError(`label ${y} at row ${b}, position ${t + 1} is neither -100 nor a token id below ${vocabSize}`, { field: 'labels' });
      rows.push(b * T + t);
      targets.push(y);
    }
  });
  return { rows, targets };
}

/**
 * Sum of −log p(label) over the loss tokens of logits [B, T, V]; count = number of loss tokens.
 * Only O(B·T) int32/float32 index data is built on the host; the gradient is written by hand
 * (dy · rowMask · (softmax − oneHot), the one-hot built on the device) because tf.gather's gradient is
 * UnsortedSegmentSum, which costs O(segments × size) on the cpu backend (minutes for a real vocabulary).
 */
export function causalLmLossSum(logits: tf.Tensor3D, labels: number[][]): { sum: tf.Scalar; count: number } {
  const [B, T, V] = logits.shape;
  if (labels.length !== B || (labels[0]?.length ?? 0) !== T)
    throw new PersonaError(`labels are [${labels.length}, ${labels[0]?.length ?? 0}], logits [${B}, ${T}, ·]`, { field: 'labels' });
  const { rows, targets } = lossTargets(labels, V);
  const count = rows.length;
  if (count === 0) return { sum: tf.scalar(0), count: 0 };
  const N = B * T;
  const pairs = new Int32Array(2 * count); // [row, target] for gatherND
  const targetOfRow = new Int32Array(N).fill(-1); // −1: oneHot gives a zero row (cpu, wasm, webgpu, TF)
  const rowMask = new Float32Array(N);
  rows.forEach((r, i) => {
    pairs[2 * i] = r;
    pairs[2 * i + 1] = targets[i];
    targetOfRow[r] = targets[i];
    rowMask[r] = 1;
  });
  const ce = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const x2 = x.reshape([N, V]);
    // Same arithmetic as tf.logSoftmax: logp = (x − max) − log Σ exp(x − max).
    const m = tf.max(x2, 1, true);
    const shifted = tf.sub(x2, m);
    const logS = tf.log(tf.sum(tf.exp(shifted), 1, true)); // [N, 1]
    save([x2, m, logS]);
    const picked = tf.gatherND(shifted, tf.tensor2d(pairs, [count, 2], 'int32')); // x_t − max, [count]
    const lossRows = tf.gather(logS.reshape([N]), tf.tensor1d(rows, 'int32')); // forward only: no gather gradient
    const value = tf.sum(tf.sub(lossRows, picked)) as tf.Scalar;
    return {
      value,
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, ms, ls] = saved;
          // Dispose [N, V] temporaries as soon as they are used: at V ≈ 150k each is ~0.6 MB per row.
          const s1 = tf.sub(xs, ms);
          const s2 = tf.sub(s1, ls);
          s1.dispose();
          const p = tf.exp(s2);
          s2.dispose();
          // int32 one-hot then cast: wasm's OneHot kernel writes int32 bits even when asked for float32.
          const ohInt = tf.oneHot(tf.tensor1d(targetOfRow, 'int32'), V);
          const oh = tf.cast(ohInt, 'float32');
          ohInt.dispose();
          const d = tf.sub(p, oh);
          p.dispose();
          oh.dispose();
          const w = tf.mul(tf.tensor2d(rowMask, [N, 1]), dy); // [N, 1]
          return tf.mul(d, w).reshape([B, T, V]);
        }),
    };
  });
  return { sum: ce(logits), count };
}
