/**
 * Activation capture against Hugging Face's extraction reference: mean(pos) − mean(neg) of the response
 * mean, prompt mean and last prompt token at every hidden_states layer, and per-example projections.
 */
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { captureActivations, meanOverSequences } from '../../lib/model/capture';
import { parityFixtures, readExpected, maxAbsDiff } from '../support/hf-parity';

describe.each(parityFixtures())('$name', ({ dir }) => {
  const exp = readExpected(dir);
  const ex = exp.extraction;
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(dir);
  });
  afterAll(() => model.dispose());

  const seqs = [...ex.pos, ...ex.neg].map((ids: number[]) => ({ ids, promptLength: ex.prompt_len }));
  const pos = ex.pos.map((_: unknown, i: number) => i);
  const neg = ex.neg.map((_: unknown, i: number) => ex.pos.length + i);

  test.each([
    ['response_mean', 'response_avg_diff'],
    ['prompt_mean', 'prompt_avg_diff'],
    ['prompt_last', 'prompt_last_diff'],
  ] as const)('%s: mean(pos) − mean(neg) equals %s at every layer (batched, left-padded)', async (red, key) => {
    const c = await captureActivations(model, seqs, { reductions: [red], batchSize: 3 });
    const p = meanOverSequences(c, red, pos);
    const n = meanOverSequences(c, red, neg);
    const diff = Array.from({ length: c.layers.length }, (_, L) => Array.from(p.subarray(L * c.hidden, (L + 1) * c.hidden)).map((x, j) => x - n[L * c.hidden + j]));
    expect(maxAbsDiff(diff, ex[key])).toBeLessThan(1e-4);
  });

  test('response-mean projection on the steering vector per example', async () => {
    const L = ex.projection_layer;
    const c = await captureActivations(model, seqs, { reductions: ['response_mean'], layers: [L] });
    const v = exp.steering.vector as number[];
    const norm = Math.hypot(...v);
    const proj = seqs.map((_: unknown, i: number) => v.reduce((s, x, j) => s + x * c.values.response_mean![i * c.hidden + j], 0) / norm);
    expect(maxAbsDiff(proj, [...ex.response_avg_projection_on_steering_vector.pos, ...ex.response_avg_projection_on_steering_vector.neg])).toBeLessThan(1e-4);
  });

  test('repeated captures leave no tensors behind', async () => {
    await captureActivations(model, seqs, { reductions: ['prompt_last'] });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await captureActivations(model, seqs, { reductions: ['prompt_mean', 'response_mean', 'prompt_last'], batchSize: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
