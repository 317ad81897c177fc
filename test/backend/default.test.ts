/** Importing the backend module must not make the unfixed wasm backend the default. */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';

test('without useBackend the default is cpu; useBackend("wasm") gives wasm with its fixes', async () => {
  await tf.ready();
  expect(tf.getBackend()).toBe('cpu');
  await useBackend('wasm', () => undefined);
  expect(tf.getBackend()).toBe('wasm');
  expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined(); // registered only by the fixes
});
