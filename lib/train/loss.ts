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
 * The targets are picked with a constant one-hot weight matrix rather than tf.gather: gather's gradient
 * is UnsortedSegmentSum, which costs O(segments × size) on the cpu backend (minutes for a real vocabulary).
 */
export function causalLmLossSum(logits: tf.Tensor3D, labels: number[][]): { sum: tf.Scalar; count: number } {
  const [B, T, V] = logits.shape;
  if (labels.length !== B || (labels[0]?.length ?? 0) !== T)
    throw new PersonaError(`labels are [${labels.length}, ${labels[0]?.length ?? 0}], logits [${B}, ${T}, ·]`, { field: 'labels' });
  const { rows, targets } = lossTargets(labels, V);
  if (rows.length === 0) return { sum: tf.scalar(0), count: 0 };
  const sum = tf.tidy(() => {
    const pick = new Float32Array(B * T * V);
    rows.forEach((r, i) => (pick[r * V + targets[i]] = 1));
    const logp = tf.logSoftmax(logits.reshape([B * T, V])); // [B·T, V]
    return tf.neg(tf.sum(tf.mul(logp, tf.tensor2d(pick, [B * T, V])))) as tf.Scalar;
  });
  return { sum, count: rows.length };
}
