/**
 * Gradient limits of tfjs 4.22 that hold on every backend (documented in lib/backend/index.ts) and the
 * workarounds the model uses. If one of these starts passing after a tfjs upgrade, update the docs.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { randomValues, relErr } from './helpers';

const quiet = (): void => {};

describe.each(['cpu', 'wasm'] as const)('on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend, quiet);
  });

  test('stridedSlice has no gradient; slice does', () => {
    const x = tf.tensor(randomValues(24, 'ss'), [2, 3, 4]);
    expect(() => tf.grad((t: tf.Tensor) => tf.stridedSlice(t, [0, 1, 0], [2, 3, 4], [1, 1, 1]).sum())(x)).toThrow(
      /gradient function not found for StridedSlice/,
    );
    const g = tf.grad((t: tf.Tensor) => tf.slice(t, [0, 1, 0], [2, 2, 4]).sum())(x);
    // d/dx of a slice sum is the indicator of the slice
    const expected = Array.from({ length: 24 }, (_, i) => (Math.floor(i / 4) % 3 >= 1 ? 1 : 0));
    expect(Array.from(g.dataSync())).toEqual(expected);
    tf.dispose([x, g]);
  });

  test('bandPart gradient fails for a single matrix, works for a batch of 2+, and a constant mask works always', () => {
    const m = tf.tensor(randomValues(16, 'bp'), [4, 4]);
    expect(() => tf.grad((t: tf.Tensor) => tf.linalg.bandPart(t, -1, 0).square().sum())(m)).toThrow(/stack/);
    expect(() => tf.grad((t: tf.Tensor) => tf.linalg.bandPart(t, -1, 0).sum())(m.reshape([1, 4, 4]))).toThrow(/stack/);
    const lower = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1];
    const gBatch = tf.grad((t: tf.Tensor) => tf.linalg.bandPart(t, -1, 0).sum())(tf.ones([2, 4, 4]));
    expect(Array.from(gBatch.dataSync())).toEqual([...lower, ...lower]);
    // Workaround: a causal mask built once (not differentiated) and applied with where.
    const mask = tf.linalg.bandPart(tf.ones([4, 4]), -1, 0).cast('bool');
    const g = tf.grad((t: tf.Tensor) => tf.where(mask, t, tf.zerosLike(t)).square().sum())(m);
    const mv = m.dataSync();
    expect(relErr(g.dataSync(), lower.map((l, i) => l * 2 * mv[i]))).toBeLessThan(1e-6);
    tf.dispose([m, gBatch, mask, g]);
  });

  test('3-D × 2-D (and × batch-1 3-D) matMul gradient has a shape bug; [B·S, H] × [H, N] is the workaround', () => {
    const B = 2;
    const S = 3;
    const H = 4;
    const N = 5;
    const x = tf.tensor(randomValues(B * S * H, 'mx'), [B, S, H]);
    const w = tf.tensor(randomValues(H * N, 'mw'), [H, N]);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b).square().sum() as tf.Scalar;
    expect(() => tf.grads(loss)([x, w])).toThrow(/gradient of input 'b' has shape '2,4,5'/);
    expect(() => tf.grads(loss)([x, w.reshape([1, H, N])])).toThrow(/gradient of input 'b' has shape '2,4,5'/);
    const [dx, dw] = tf.grads(loss)([x.reshape([B * S, H]), w]);
    // dL/dW = Σ_b x_bᵀ · 2 y_b, computed per batch with 2-D matmuls
    const perBatch = tf.tidy(() =>
      tf.addN(
        [0, 1].map((b) => {
          const xb = x.slice([b, 0, 0], [1, S, H]).reshape([S, H]);
          return tf.matMul(xb, tf.matMul(xb, w).mul(2), true, false);
        }),
      ),
    );
    expect(dx.shape).toEqual([B * S, H]);
    expect(relErr(dw.dataSync(), perBatch.dataSync())).toBeLessThan(1e-5);
    tf.dispose([x, w, dx, dw, perBatch]);
  });

  test('a bool op on the differentiated tensor aborts backprop; the same mask from a constant works', () => {
    const v = randomValues(12, 'wm');
    const x = tf.tensor(v, [3, 4]);
    expect(() => tf.grad((t: tf.Tensor) => tf.where(tf.greater(t, 0), t, tf.zerosLike(t)).sum())(x)).toThrow(
      /gradient function not found for Greater/,
    );
    const mask = tf.greater(tf.tensor(v, [3, 4]), 0);
    const g = tf.grad((t: tf.Tensor) => tf.where(mask, t, tf.zerosLike(t)).sum())(x);
    expect(Array.from(g.dataSync())).toEqual(Array.from(v, (e) => (e > 0 ? 1 : 0)));
    tf.dispose([x, mask, g]);
  });

  test('einsum: no kernel on wasm, no gradient anywhere', () => {
    const x = tf.ones([2, 3]);
    if (backend === 'wasm') {
      expect(() => tf.einsum('ij,kj->ik', x, x)).toThrow(/Einsum' not registered for backend 'wasm'/);
    } else {
      expect(() => tf.grad((t: tf.Tensor) => tf.einsum('ij,kj->ik', t, t).sum())(x)).toThrow(/gradient function not found for Einsum/);
    }
    x.dispose();
  });
});
