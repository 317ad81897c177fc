/**
 * 'auto' prefers native TensorFlow when a tfjs-node package loads. tfjs-node is not installed here, so a
 * stand-in module registers a 'tensorflow' backend (the cpu backend's class and kernels under that name)
 * exactly as the real package does on require(); tfjs-node-gpu stays absent, exercising the fallback order.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';

jest.mock(
  '@tensorflow/tfjs-node',
  () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const tfm = require('@tensorflow/tfjs') as typeof tf;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { MathBackendCPU } = require('@tensorflow/tfjs-backend-cpu');
    tfm.registerBackend('tensorflow', () => new MathBackendCPU(), 3);
    tfm.copyRegisteredKernels('cpu', 'tensorflow');
    return {};
  },
  { virtual: true },
);

test("'auto' and 'tensorflow' pick the native backend when @tensorflow/tfjs-node loads", async () => {
  const lines: string[] = [];
  expect(await useBackend('auto', (m) => lines.push(m))).toBe('tensorflow');
  expect(tf.getBackend()).toBe('tensorflow');
  expect(lines).toEqual(['backend: tensorflow (@tensorflow/tfjs-node)']);
  expect(await useBackend('tensorflow', (m) => lines.push(m))).toBe('tensorflow');
  expect(lines).toHaveLength(1);
  // and it computes
  expect(Array.from(tf.matMul(tf.eye(2), tf.tensor2d([1, 2, 3, 4], [2, 2])).dataSync())).toEqual([1, 2, 3, 4]);
  // switching away and back works
  expect(await useBackend('wasm', () => {})).toBe('wasm');
  expect(await useBackend('tensorflow', () => {})).toBe('tensorflow');
});
