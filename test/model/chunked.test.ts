/**
 * Parameters larger than one GPU binding are held as vocabulary chunks (Model.build). On cpu and wasm a tiny
 * maxTensorBytes forces the same path: logits, generation, gradients and saved weights must equal the whole model's.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { WEIGHT_NAMES } from '../../lib/model/transformer';
import { trainStep } from '../../lib/train/step';
import { parityFixtures, readExpected } from '../support/hf-parity';

const ORGANISM = 'models/organism';

async function logitsOf(model: Model, ids: number[][]): Promise<Float32Array> {
  const out = model.forward({ ids }, {});
  try {
    return (await out.logits!.data()) as Float32Array;
  } finally {
    out.logits!.dispose();
  }
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each(['cpu', 'wasm'] as const)('%s backend', (backend) => {
  beforeAll(async () => {
    await useBackend(backend, () => undefined);
  });

  test('organism (tied embeddings) in 5 vocabulary chunks: same logits and greedy tokens, same weights read back', async () => {
    const whole = await Model.load(ORGANISM);
    // 853 × 128 × 4 B = 436,736 B: a 100 kB limit gives 5 chunks of ≤ 171 rows.
    const chunked = await Model.load(ORGANISM, { maxTensorBytes: 100_000 });
    try {
      expect(whole.embeddingChunks()).toBe(1);
      expect(chunked.embeddingChunks()).toBe(5);
      expect(chunked.params.has(WEIGHT_NAMES.embed)).toBe(false);
      // Ids from every chunk, both ends included.
      const ids = [[1, 170, 171, 342, 500, 684, 852, 3]];
      expect(maxAbs(await logitsOf(chunked, ids), await logitsOf(whole, ids))).toBeLessThan(1e-5);
      const prompts = [[5, 17, 300, 2 + 1], [852, 700, 12]];
      const a = await generate(whole, { prompts }, { maxNewTokens: 12, eosTokenIds: [] });
      const b = await generate(chunked, { prompts }, { maxNewTokens: 12, eosTokenIds: [] });
      expect(b.tokens).toEqual(a.tokens);
      expect(maxAbs(await chunked.hfValues(WEIGHT_NAMES.embed), await whole.hfValues(WEIGHT_NAMES.embed))).toBe(0);
    } finally {
      whole.dispose();
      chunked.dispose();
    }
  });

  test('numTensors flat over repeated chunked forward and generate calls', async () => {
    const model = await Model.load(ORGANISM, { maxTensorBytes: 100_000 });
    try {
      await generate(model, { prompts: [[5, 6, 7]] }, { maxNewTokens: 3, eosTokenIds: [] });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) {
        await logitsOf(model, [[1, 400, 852]]);
        await generate(model, { prompts: [[5, 6, 7]] }, { maxNewTokens: 3, eosTokenIds: [] });
      }
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });

  test('untied fixture with embedding and lm_head chunked: HF-layout gradients of one SFT step equal the whole model\'s', async () => {
    const dir = parityFixtures().find((f) => f.name === 'qwen2-tiny-untied')!.dir;
    const exp = readExpected(dir);
    const whole = await Model.load(dir);
    const V = whole.config.vocabSize;
    const H = whole.config.hiddenSize;
    const chunked = await Model.load(dir, { maxTensorBytes: Math.ceil((V * H * 4) / 3) });
    try {
      expect(chunked.embeddingChunks()).toBe(3);
      const s = exp.sft.batch;
      const batch = { ids: s.input_ids, labels: s.labels, attentionMask: s.attention_mask };
      const names = [WEIGHT_NAMES.embed, WEIGHT_NAMES.lmHead, 'model.norm.weight'];
      const a = await trainStep(whole, batch, { gradsOf: names });
      const b = await trainStep(chunked, batch, { gradsOf: names });
      expect(Math.abs(b.loss - a.loss)).toBeLessThan(1e-6);
      expect(Object.keys(b.gradNorms).sort()).toEqual(Object.keys(a.gradNorms).sort());
      for (const n of Object.keys(a.gradNorms)) expect(Math.abs(b.gradNorms[n] - a.gradNorms[n])).toBeLessThanOrEqual(1e-5 * Math.max(1, a.gradNorms[n]));
      for (const n of names) expect(maxAbs(b.grads[n], a.grads[n])).toBeLessThan(1e-6);
    } finally {
      whole.dispose();
      chunked.dispose();
    }
  });
});
