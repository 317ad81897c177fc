/**
 * UnsortedSegmentSum on wasm (absent from tfjs-backend-wasm 4.22; needed by the gradient of gather, i.e.
 * of the token embedding) against the cpu backend and a plain scatter-add reference.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { randomValues, relErr } from './helpers';

const quiet = (): void => {};
const V = 11;
const H = 6;
const ids = [3, 0, 3, 10, 7, 3, 0, 5, 5, 9]; // duplicates on purpose: their gradients must add up
const table = randomValues(V * H, 'emb');
const upstream = randomValues(ids.length * H, 'dy');

/** d/dE sum(gather(E, ids) * w) = scatter-add of w rows into the rows named by ids. */
function referenceEmbeddingGrad(): Float64Array {
  const g = new Float64Array(V * H);
  ids.forEach((id, r) => {
    for (let h = 0; h < H; h++) g[id * H + h] += upstream[r * H + h];
  });
  return g;
}

function embeddingGrads(): { axis0: Float32Array; axis1: Float32Array; batched: Float32Array } {
  return tf.tidy(() => {
    const E = tf.tensor(table, [V, H]);
    const idx = tf.tensor1d(ids, 'int32');
    const w = tf.tensor(upstream, [ids.length, H]);
    const axis0 = tf.grad((e: tf.Tensor) => tf.gather(e, idx).mul(w).sum())(E);
    // gather along axis 1 and with 2-D indices [2, 5] (a batch of sequences) use the same kernel
    const Et = tf.tensor(table, [H, V]);
    const axis1 = tf.grad((e: tf.Tensor) => tf.gather(e, idx, 1).square().sum())(Et);
    const idx2 = tf.tensor2d(ids, [2, 5], 'int32');
    const w2 = tf.tensor(upstream, [2, 5, H]);
    const batched = tf.grad((e: tf.Tensor) => tf.gather(e, idx2).mul(w2).sum())(E);
    return {
      axis0: axis0.dataSync() as Float32Array,
      axis1: axis1.dataSync() as Float32Array,
      batched: batched.dataSync() as Float32Array,
    };
  });
}

function segmentSums(): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor(randomValues(8 * 3, 'x'), [8, 3]);
    const xi = tf.tensor(Array.from({ length: 8 * 3 }, (_, i) => i), [8, 3], 'int32');
    const x3 = tf.tensor(randomValues(2 * 4 * 3, 'x3'), [2, 4, 3]);
    return [
      tf.unsortedSegmentSum(x, tf.tensor1d([0, 2, 2, 1, 0, 4, 4, 4], 'int32'), 5),
      // ids outside [0, numSegments) are dropped (TF semantics)
      tf.unsortedSegmentSum(x, tf.tensor1d([0, -1, 2, 7, 0, 3, 5, 1], 'int32'), 5),
      tf.unsortedSegmentSum(xi, tf.tensor1d([1, 1, 0, 2, 0, 1, 2, 2], 'int32'), 3),
      // unused segments are zeros
      tf.unsortedSegmentSum(x, tf.tensor1d([6, 6, 6, 6, 6, 6, 6, 6], 'int32'), 9),
      tf.unsortedSegmentSum(x3, tf.tensor1d([1, 0], 'int32'), 3),
    ].map((t) => t.dataSync() as Float32Array);
  });
}

describe('UnsortedSegmentSum / gather gradient on wasm', () => {
  let cpuGrads: ReturnType<typeof embeddingGrads>;
  let cpuSums: Float32Array[];

  beforeAll(async () => {
    await useBackend('cpu', quiet);
    cpuGrads = embeddingGrads();
    cpuSums = segmentSums();
    await useBackend('wasm', quiet);
  });

  test('the kernel exists on wasm after useBackend', () => {
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  test('embedding gradient equals the scatter-add reference and cpu', () => {
    const wasm = embeddingGrads();
    expect(relErr(wasm.axis0, referenceEmbeddingGrad())).toBeLessThan(1e-6);
    expect(relErr(wasm.axis0, cpuGrads.axis0)).toBeLessThan(1e-6);
    expect(relErr(wasm.axis1, cpuGrads.axis1)).toBeLessThan(1e-6);
    expect(relErr(wasm.batched, cpuGrads.batched)).toBeLessThan(1e-6);
    expect(relErr(wasm.batched, referenceEmbeddingGrad())).toBeLessThan(1e-6);
  });

  test('direct unsortedSegmentSum equals cpu, incl. out-of-range ids, int32 values, empty segments, rank 3', () => {
    const wasm = segmentSums();
    expect(wasm.map((w) => w.length)).toEqual(cpuSums.map((c) => c.length));
    wasm.forEach((w, i) => expect(relErr(w, cpuSums[i])).toBeLessThan(1e-6));
    expect(Array.from(wasm[2])).toEqual(Array.from(cpuSums[2])); // int32: exact
    expect(Array.from(wasm[3].slice(0, 18)).every((v) => v === 0)).toBe(true);
  });

  test('repeated calls leave tensors and data ids flat (and reused heap memory does not leak into sums)', () => {
    const first = segmentSums();
    const before = tf.memory().numTensors;
    const ids0 = tf.backend().numDataIds();
    for (let i = 0; i < 10; i++) {
      const again = segmentSums();
      again.forEach((a, j) => expect(Array.from(a)).toEqual(Array.from(first[j])));
      embeddingGrads();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.backend().numDataIds()).toBe(ids0);
  });
});
