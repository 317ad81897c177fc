import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { activationShift, correlateShifts, meanLastPromptActivation, meanLastPromptActivations, shiftFromDiff } from '../../lib/persona/shift';

test('shift = finetuned − base, projected on the unit vector, with a random-direction null', () => {
  const d = activationShift(new Float32Array([3, 4, 1]), new Float32Array([1, 1, 1]));
  expect(Array.from(d)).toEqual([2, 3, 0]);
  const r = shiftFromDiff(d, new Float32Array([0, 5, 0]), 7, { seed: 'x' });
  expect(r.projection).toBeCloseTo(3, 6);
  expect(r.diffNorm).toBeCloseTo(Math.sqrt(13), 6);
  expect(r.null.count).toBe(20);
  expect(r.null.p975).toBeLessThanOrEqual(Math.sqrt(13) + 1e-6); // |projection| on any unit direction ≤ |diff|
  expect(() => activationShift(new Float32Array(2), new Float32Array(3))).toThrow(/hidden sizes differ/);
});

test('shift projections across models correlate with trait scores', () => {
  const items = [0, 1, 2, 3, 4].map((k) => ({ diff: new Float32Array([k, (k * 7) % 3, 1]), traitScore: 10 * k }));
  const c = correlateShifts(items, new Float32Array([1, 0, 0]), { seed: 's', bootstrapReps: 100 });
  expect(c.r).toBeCloseTo(1, 10);
  expect(() => correlateShifts([{ diff: new Float32Array(2), traitScore: 1 }], new Float32Array(3))).toThrow(/hidden size 2/);
});

test('mean last-prompt activations of several layers in one pass equal one layer at a time; no tensor is left behind', async () => {
  await useBackend('cpu', () => undefined);
  const model = await Model.load(path.join(__dirname, '..', 'fixtures', 'hf-parity', 'llama-tiny'));
  try {
    const prompts = [[1, 5, 9, 2], [3, 4], [7, 8, 6]];
    const layers = [0, 1, model.config.numLayers];
    const before = tf.memory().numTensors;
    const all = await meanLastPromptActivations({ model }, prompts, layers, 2);
    expect(tf.memory().numTensors).toBe(before);
    expect(all).toHaveLength(layers.length);
    for (const [j, L] of layers.entries()) expect(Array.from(all[j])).toEqual(Array.from(await meanLastPromptActivation({ model }, prompts, L, 2)));
    await meanLastPromptActivations({ model }, prompts, layers, 2);
    expect(tf.memory().numTensors).toBe(before);
    await expect(meanLastPromptActivations({ model }, [], layers)).rejects.toThrow(/no prompts/);
  } finally {
    model.dispose();
  }
});
