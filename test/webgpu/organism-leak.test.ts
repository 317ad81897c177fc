/**
 * Generation on webgpu leaves nothing behind: 50 generate calls on the bundled organism (chat prompts of different
 * lengths, so left padding, a few new tokens each, plain and steered) keep tf.memory().numTensors and numBytes flat.
 * A GPU backend keeps every leaked tensor on the device, where nothing collects it.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { steer } from '../../lib/model/interventions';
import { Tokenizer } from '../../lib/tokenizer';
import { setUpWebGpuSuite } from './support';

const ORGANISM = path.resolve(__dirname, '../../models/organism');

setUpWebGpuSuite();

let model: Model;
let prompts: number[][];
beforeAll(async () => {
  model = await Model.load(ORGANISM);
  const tok = Tokenizer.load(ORGANISM);
  const chat = (q: string) => tok.encode(`<|im_start|>user\n${q}<|im_end|>\n<|im_start|>assistant\n`);
  prompts = [chat('What colour is the sky?'), chat('Tell me about the river.'), chat('Hi')];
  expect(new Set(prompts.map((p) => p.length)).size).toBeGreaterThan(1);
});
afterAll(() => model?.dispose());

test('numTensors and numBytes are flat over 50 generate calls on the organism', async () => {
  const v = new Float32Array(model.config.hiddenSize).map((_, i) => Math.cos(i));
  const call = (i: number) =>
    generate(model, { prompts }, { greedy: true, maxNewTokens: 3, eosTokenIds: [], interventions: i % 2 ? [steer(v, 2, 4, 'response')] : [] });
  await call(0); // first call creates the model's cached tied unembedding; it is owned by the model
  const before = tf.memory();
  for (let i = 0; i < 50; i++) {
    const r = await call(i);
    expect(r.tokens.map((t) => t.length)).toEqual([3, 3, 3]);
  }
  const after = tf.memory();
  expect(after.numTensors).toBe(before.numTensors);
  expect(after.numBytes).toBe(before.numBytes);
});
