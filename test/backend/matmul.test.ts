/**
 * The re-registered wasm BatchMatMul against the cpu backend and a float64 reference, for every
 * transposeA/transposeB combination, batch 1 and 3, and broadcast batch shapes; plus gradients.
 * Backends are switched in blocks (all cpu work, then all wasm work) because tfjs backends are global.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { randomValues, referenceMatMul, relErr, size } from './helpers';

const quiet = (): void => {};

/** [aOuter, bOuter] batch shapes (before the two matrix dims). */
const BATCHES: Array<[number[], number[]]> = [
  [[], []], // 2-D × 2-D
  [[1], [1]], // explicit batch 1
  [[3], [3]], // batch 3
  [[3], []], // batched a × shared 2-D b (the activations × weights case)
  [[3], [1]], // batch-1 b broadcast
  [[1], [3]], // batch-1 a broadcast
  [[], [3]], // 2-D a × batched b
  [[2, 3], [3]], // rank-4 × rank-3
  [[2, 1], [1, 3]], // both sides broadcast
];
const SIZES: Array<[number, number, number]> = [
  [5, 7, 3], // odd, smaller than any XNNPACK tile
  [33, 64, 17], // crosses tile boundaries
];

interface Case {
  name: string;
  aShape: number[];
  bShape: number[];
  tA: boolean;
  tB: boolean;
  a: Float32Array;
  b: Float32Array;
}

function cases(): Case[] {
  const out: Case[] = [];
  let n = 0;
  for (const [M, K, N] of SIZES) {
    for (const [ao, bo] of BATCHES) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          const aShape = [...ao, ...(tA ? [K, M] : [M, K])];
          const bShape = [...bo, ...(tB ? [N, K] : [K, N])];
          out.push({
            name: `[${aShape}]${tA ? 'ᵀ' : ''} × [${bShape}]${tB ? 'ᵀ' : ''}`,
            aShape, bShape, tA, tB,
            a: randomValues(size(aShape), `a${n}`),
            b: randomValues(size(bShape), `b${n++}`),
          });
        }
      }
    }
  }
  return out;
}

function runAll(cs: Case[]): Array<{ values: Float32Array; shape: number[] }> {
  return cs.map((c) =>
    tf.tidy(() => {
      const y = tf.matMul(tf.tensor(c.a, c.aShape), tf.tensor(c.b, c.bShape), c.tA, c.tB);
      return { values: y.dataSync() as Float32Array, shape: y.shape };
    }),
  );
}

describe('wasm BatchMatMul (routed onto the XNNPACK path)', () => {
  const cs = cases();
  let cpu: Array<{ values: Float32Array; shape: number[] }>;
  let wasm: Array<{ values: Float32Array; shape: number[] }>;

  beforeAll(async () => {
    await useBackend('cpu', quiet);
    cpu = runAll(cs);
    await useBackend('wasm', quiet);
    wasm = runAll(cs);
  });

  test('has 72 cases covering tA × tB × batch shapes × sizes', () => {
    expect(cs).toHaveLength(SIZES.length * BATCHES.length * 4);
  });

  test.each(cs.map((c, i) => [c.name, i] as const))('%s matches a float64 reference and the cpu backend', (_name, i) => {
    const c = cs[i];
    const ref = referenceMatMul(c.a, c.aShape, c.b, c.bShape, c.tA, c.tB);
    expect(wasm[i].shape).toEqual(ref.shape);
    expect(relErr(wasm[i].values, ref.values)).toBeLessThan(1e-4);
    // The stock cpu kernel mishandles batch dims that both broadcast ([2,1] × [1,3]); compare with it
    // only where it agrees with the reference.
    if (relErr(cpu[i].values, ref.values) < 1e-4) {
      expect(relErr(wasm[i].values, cpu[i].values)).toBeLessThan(1e-4);
    }
  });

  test('the patched kernel is the one registered for wasm, and cpu is untouched', () => {
    const wasmKernel = tf.getKernel('BatchMatMul', 'wasm');
    expect((wasmKernel.kernelFunc as unknown as Record<symbol, unknown>)[Symbol.for('persona.wasmFixedKernel')]).toBe(true);
    const cpuKernel = tf.getKernel('BatchMatMul', 'cpu');
    expect((cpuKernel.kernelFunc as unknown as Record<symbol, unknown>)[Symbol.for('persona.wasmFixedKernel')]).toBeUndefined();
  });

  test('repeated transposed / batched / broadcast matmuls leave tensors, bytes and data ids flat', () => {
    expect(tf.getBackend()).toBe('wasm');
    const a = tf.tensor(randomValues(3 * 16 * 8, 'la'), [3, 16, 8]);
    const b = tf.tensor(randomValues(3 * 16 * 8, 'lb'), [3, 16, 8]);
    const w = tf.tensor(randomValues(8 * 5, 'lw'), [8, 5]);
    const step = () =>
      tf.tidy(() => {
        const s = tf.matMul(a, b, false, true); // [3,16,16]
        const t = tf.matMul(s, a, true, false); // [3,16,8]
        const u = tf.matMul(t, w); // folded [48,8]×[8,5]
        const v = tf.matMul(a.slice([0, 0, 0], [1, 16, 8]), b, false, true); // batch-1 a broadcast
        return u.sum().add(v.sum()).dataSync()[0];
      });
    const first = step();
    const before = tf.memory();
    const ids = tf.backend().numDataIds();
    for (let i = 0; i < 20; i++) expect(step()).toBe(first);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    expect(tf.backend().numDataIds()).toBe(ids);
    tf.dispose([a, b, w]);
  });

  test('XNNPACK operators created for per-batch views are freed: the wasm heap does not grow', () => {
    // Each call packs 8 views of b (8·64·128 floats = 256 KiB); leaking them would grow the heap by ~50 MiB.
    const q = tf.tensor(randomValues(8 * 128 * 64, 'hq'), [8, 128, 64]);
    const k = tf.tensor(randomValues(8 * 128 * 64, 'hk'), [8, 128, 64]);
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    const step = () => tf.tidy(() => tf.matMul(q, k, false, true).sum().dataSync()[0]);
    for (let i = 0; i < 10; i++) step();
    const before = heap();
    for (let i = 0; i < 200; i++) step();
    expect(heap()).toBe(before);
    tf.dispose([q, k]);
  });
});

describe('matMul gradients on wasm equal cpu', () => {
  const shapes: Array<{ a: number[]; b: number[]; tA: boolean; tB: boolean }> = [];
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      shapes.push({ a: tA ? [7, 5] : [5, 7], b: tB ? [4, 7] : [7, 4], tA, tB });
      shapes.push({ a: tA ? [3, 7, 5] : [3, 5, 7], b: tB ? [3, 4, 7] : [3, 7, 4], tA, tB });
    }
  }
  const data = shapes.map((s, i) => ({
    a: randomValues(size(s.a), `ga${i}`),
    b: randomValues(size(s.b), `gb${i}`),
  }));

  function grads(): Float32Array[][] {
    return shapes.map((s, i) =>
      tf.tidy(() => {
        const a = tf.tensor(data[i].a, s.a);
        const b = tf.tensor(data[i].b, s.b);
        // A non-uniform upstream gradient so every element of dy matters.
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, s.tA, s.tB).square().sum();
        const [da, db] = tf.grads(f)([a, b]);
        return [da.dataSync() as Float32Array, db.dataSync() as Float32Array];
      }),
    );
  }

  test('for every transpose combination, 2-D and batched', async () => {
    await useBackend('cpu', quiet);
    const cpu = grads();
    await useBackend('wasm', quiet);
    const before = tf.memory().numTensors;
    const wasm = grads();
    expect(tf.memory().numTensors).toBe(before);
    shapes.forEach((s, i) => {
      expect(relErr(wasm[i][0], cpu[i][0])).toBeLessThan(1e-4);
      expect(relErr(wasm[i][1], cpu[i][1])).toBeLessThan(1e-4);
    });
  });
});
