/**
 * causalLmLossSum (index-based forward, hand-written gradient) against the dense one-hot formula it
 * replaced, −Σ logSoftmax · onehot, on cpu and wasm: values, gradients, masking, and no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { IGNORE_INDEX, causalLmLossSum, lossTargets } from '../../lib/train/loss';

const REL = 1e-5;

/** The previous implementation: a host-side dense one-hot [B·T, V] (fine at test sizes). */
function referenceSum(logits: tf.Tensor3D, labels: number[][]): tf.Scalar {
  const [B, T, V] = logits.shape;
  const { rows, targets } = lossTargets(labels, V);
  const pick = new Float32Array(B * T * V);
  rows.forEach((r, i) => (pick[r * V + targets[i]] = 1));
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits.reshape([B * T, V])), tf.tensor2d(pick, [B * T, V])))) as tf.Scalar;
}

/** max |a − b| / max |b|: relative to the scale of the reference. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / Math.max(s, 1e-30);
}

/** Deterministic labels for [B, T] with −100 at position 0 (never a target anyway), scattered −100s and one all −100 row. */
function makeLabels(B: number, T: number, V: number): number[][] {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => {
      if (b === 1 || t === 0) return IGNORE_INDEX;
      if (rnd() < 0.3) return IGNORE_INDEX;
      return Math.floor(rnd() * V);
    }),
  );
}

describe.each(['cpu', 'wasm'] as const)('%s backend', (backend) => {
  beforeAll(async () => {
    await useBackend(backend, () => undefined);
  });

  const B = 3;
  const T = 7;
  const V = 37;
  const labels = makeLabels(B, T, V);
  // Scaled normals plus a row shifted by +500: a naive exp would overflow, log-softmax must not.
  const makeLogits = () =>
    tf.tidy(() => {
      const x = tf.mul(tf.randomNormal([B, T, V], 0, 1, 'float32', 7), 4);
      const shift = tf.buffer([B, T, 1]);
      shift.set(500, 2, 3, 0);
      return tf.add(x, shift.toTensor()) as tf.Tensor3D;
    });

  test('labels have loss tokens, ignored ones and an all −100 row', () => {
    const { rows } = lossTargets(labels, V);
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.length).toBeLessThan(2 * (T - 1));
    expect(rows.some((r) => r >= 2 * T + 2 && r <= 2 * T + 3)).toBe(true); // a target on the +500 row or next to it
  });

  test('sum and count match the dense one-hot formula', () => {
    const logits = makeLogits();
    const { sum, count } = causalLmLossSum(logits, labels);
    const ref = referenceSum(logits, labels);
    expect(count).toBe(lossTargets(labels, V).rows.length);
    const [a, b] = [sum.dataSync()[0], ref.dataSync()[0]];
    expect(Number.isFinite(a)).toBe(true);
    expect(Math.abs(a - b) / Math.abs(b)).toBeLessThanOrEqual(REL);
    tf.dispose([logits, sum, ref]);
  });

  test('gradient w.r.t. logits matches, scaled by dy; rows without a target get exactly 0', () => {
    const logits = makeLogits();
    const scale = 0.37;
    const got = tf.valueAndGrad((x: tf.Tensor) => tf.mul(causalLmLossSum(x as tf.Tensor3D, labels).sum, scale) as tf.Scalar)(logits);
    const want = tf.valueAndGrad((x: tf.Tensor) => tf.mul(referenceSum(x as tf.Tensor3D, labels), scale) as tf.Scalar)(logits);
    expect(relErr(got.value.dataSync(), want.value.dataSync())).toBeLessThanOrEqual(REL);
    const g = got.grad.dataSync();
    expect(relErr(g, want.grad.dataSync())).toBeLessThanOrEqual(REL);
    const { rows } = lossTargets(labels, V);
    const lossRow = new Set(rows);
    for (let r = 0; r < B * T; r++) {
      let rowSum = 0;
      let rowAbs = 0;
      for (let v = 0; v < V; v++) {
        rowSum += g[r * V + v];
        rowAbs += Math.abs(g[r * V + v]);
      }
      if (!lossRow.has(r)) expect(rowAbs).toBe(0);
      else expect(Math.abs(rowSum)).toBeLessThan(1e-6); // softmax − onehot sums to 0
    }
    tf.dispose([logits, got.value, got.grad, want.value, want.grad]);
  });

  test('gradient flows through ops upstream of the logits (chain rule)', () => {
    const H = 5;
    const h = tf.randomNormal([B * T, H], 0, 1, 'float32', 3);
    const w = tf.randomNormal([H, V], 0, 1, 'float32', 4);
    const f = (loss: (l: tf.Tensor3D) => tf.Scalar) => (wt: tf.Tensor) => loss(tf.matMul(h, wt as tf.Tensor2D).reshape([B, T, V]) as tf.Tensor3D);
    const got = tf.grad(f((l) => causalLmLossSum(l, labels).sum))(w);
    const want = tf.grad(f((l) => referenceSum(l, labels)))(w);
    expect(relErr(got.dataSync(), want.dataSync())).toBeLessThanOrEqual(REL);
    tf.dispose([h, w, got, want]);
  });

  test('no loss token: count 0, sum 0', () => {
    const logits = makeLogits();
    const none = labels.map((row) => row.map(() => IGNORE_INDEX));
    const { sum, count } = causalLmLossSum(logits, none);
    expect(count).toBe(0);
    expect(sum.dataSync()[0]).toBe(0);
    tf.dispose([logits, sum]);
  });

  test('no tensor leaks, with and without the gradient', () => {
    const logits = makeLogits();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const { sum } = causalLmLossSum(logits, labels);
      sum.dispose();
      tf.tidy(() => {
        causalLmLossSum(logits, labels); // the evaluateLoss pattern: tidy frees the sum
      });
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => causalLmLossSum(x as tf.Tensor3D, labels).sum)(logits);
      tf.dispose([value, grad]);
    }
    expect(tf.memory().numTensors).toBe(before);
    logits.dispose();
  });
});
