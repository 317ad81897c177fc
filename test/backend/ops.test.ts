/**
 * The ops a transformer forward pass and its gradients need, on wasm (with the fixes) against cpu:
 * forward values, and gradients where the op is differentiable.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { randomValues, relErr } from './helpers';

const quiet = (): void => {};
const X = randomValues(2 * 3 * 8, 'ops-x');
const Y = randomValues(2 * 3 * 8, 'ops-y');
const IDS = [0, 4, 4, 1, 5];

type Case = (x: tf.Tensor, y: tf.Tensor) => tf.Tensor;

/** Forward ops; each returns one tensor so results can be compared element-wise. */
const forward: Record<string, Case> = {
  'matMul tA': (x, y) => tf.matMul(x, y, true, false),
  'matMul tB': (x, y) => tf.matMul(x, y, false, true),
  'matMul tA tB': (x, y) => tf.matMul(x, y.transpose([0, 2, 1]), true, true),
  softmax: (x) => tf.softmax(x),
  logSoftmax: (x) => tf.logSoftmax(x),
  exp: (x) => tf.exp(x),
  rsqrt: (x) => tf.rsqrt(x.square().add(0.1)),
  sigmoid: (x) => tf.sigmoid(x),
  gather: (x) => tf.gather(x.reshape([6, 8]), tf.tensor1d(IDS, 'int32')),
  concat: (x, y) => tf.concat([x, y], 2),
  slice: (x) => tf.slice(x, [1, 1, 2], [1, 2, 5]),
  where: (x, y) => tf.where(tf.greater(y, 0), x, tf.zerosLike(x)),
  cumsum: (x) => tf.cumsum(x, 2),
  oneHot: () => tf.oneHot(tf.tensor1d(IDS, 'int32'), 7),
  'topk values': (x) => tf.topk(x, 3).values,
  'topk indices': (x) => tf.topk(x, 3).indices,
  argMax: (x) => tf.argMax(x, -1),
  squaredDifference: (x, y) => tf.squaredDifference(x, y),
  'mean keepDims': (x) => tf.mean(x.square(), -1, true),
  'transpose 0213': (x) => tf.transpose(x.reshape([2, 3, 2, 4]), [0, 2, 1, 3]),
  cos_sin: (x) => tf.cos(x).add(tf.sin(x)),
  silu: (x) => x.mul(tf.sigmoid(x)),
  tanh: (x) => tf.tanh(x),
  erf: (x) => tf.erf(x),
  pow: (x) => tf.pow(x.abs().add(1), 2.5),
  max: (x) => tf.max(x, -1),
  split: (x) => tf.split(x, 2, 2)[1],
  tile: (x) => tf.tile(x, [1, 2, 1]),
};

/** Scalar losses to differentiate with respect to x (and y where both are used). */
const losses: Record<string, Case> = {
  'matMul tA': (x, y) => tf.matMul(x, y, true, false).square().sum(),
  'matMul tB': (x, y) => tf.matMul(x, y, false, true).square().sum(),
  softmax: (x, y) => tf.softmax(x).mul(y).sum(),
  logSoftmax: (x, y) => tf.logSoftmax(x).mul(y).sum(),
  exp: (x) => tf.exp(x).sum(),
  rsqrt: (x) => tf.rsqrt(x.square().add(0.1)).sum(),
  sigmoid: (x, y) => tf.sigmoid(x).mul(y).sum(),
  gather: (x, y) => tf.gather(x.reshape([6, 8]), tf.tensor1d(IDS, 'int32')).mul(y.reshape([6, 8]).slice([0, 0], [5, 8])).sum(),
  concat: (x, y) => tf.concat([x, y.mul(x)], 2).square().sum(),
  slice: (x) => tf.slice(x, [1, 1, 2], [1, 2, 5]).square().sum(),
  // the mask must not come from a differentiated input: Greater has no gradient (see gradient-limits)
  where: (x) => tf.where(tf.greater(tf.tensor(Y, [2, 3, 8]), 0), x, tf.zerosLike(x)).square().sum(),
  cumsum: (x, y) => tf.cumsum(x, 2).mul(y).sum(),
  squaredDifference: (x, y) => tf.squaredDifference(x, y).sum(),
  'mean keepDims': (x) => tf.mean(x.square(), -1, true).sum(),
  'transpose 0213': (x, y) => tf.transpose(x.reshape([2, 3, 2, 4]), [0, 2, 1, 3]).mul(y.reshape([2, 2, 3, 4])).sum(),
  'rmsnorm-like': (x, y) => x.mul(tf.rsqrt(tf.mean(x.square(), -1, true).add(1e-6))).mul(y).sum(),
  silu: (x, y) => x.mul(tf.sigmoid(x)).mul(y).sum(),
  max: (x) => tf.max(x, -1).sum(),
  split: (x) => tf.split(x, 2, 2)[1].square().sum(),
  tile: (x) => tf.tile(x, [1, 2, 1]).square().sum(),
  'cross-entropy': (x) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([1, 7, 3, 0, 2, 5], 'int32'), 8), x.reshape([6, 8])),
};

function evaluate(): { fwd: Record<string, Float32Array | Int32Array>; grad: Record<string, Float32Array[]> } {
  return tf.tidy(() => {
    const x = tf.tensor(X, [2, 3, 8]);
    const y = tf.tensor(Y, [2, 3, 8]);
    const fwd: Record<string, Float32Array | Int32Array> = {};
    for (const [k, f] of Object.entries(forward)) fwd[k] = f(x, y).dataSync() as Float32Array | Int32Array;
    const grad: Record<string, Float32Array[]> = {};
    for (const [k, f] of Object.entries(losses)) {
      // `+ 0·sum(b)` keeps b on the tape for losses that ignore it (tf.grads rejects unused inputs)
      grad[k] = tf.grads((a: tf.Tensor, b: tf.Tensor) => f(a, b).add(b.sum().mul(0)) as tf.Scalar)([x, y]).map((g) => g.dataSync() as Float32Array);
    }
    return { fwd, grad };
  });
}

describe('transformer ops on wasm match cpu', () => {
  let cpu: ReturnType<typeof evaluate>;
  let wasm: ReturnType<typeof evaluate>;
  beforeAll(async () => {
    await useBackend('cpu', quiet);
    cpu = evaluate();
    await useBackend('wasm', quiet);
    const before = tf.memory().numTensors;
    wasm = evaluate();
    evaluate();
    expect(tf.memory().numTensors).toBe(before);
  });

  test.each(Object.keys(forward))('forward %s', (k) => {
    expect(wasm.fwd[k].length).toBe(cpu.fwd[k].length);
    expect(relErr(wasm.fwd[k], cpu.fwd[k])).toBeLessThan(1e-5);
  });

  test.each(Object.keys(losses))('gradient %s', (k) => {
    expect(wasm.grad[k]).toHaveLength(2);
    wasm.grad[k].forEach((g, i) => {
      const ref = cpu.grad[k][i];
      // a loss independent of y has an all-zero dy: compare absolutely there
      if (ref.every((v) => v === 0)) expect(g.every((v) => v === 0)).toBe(true);
      else expect(relErr(g, ref)).toBeLessThan(1e-5);
    });
  });
});
