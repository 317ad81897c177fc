/**
 * A model whose embedding / unembedding exceed the largest tensor the GPU can bind: loaded with a small
 * maxTensorBytes, the vocabulary parameters are held as ≥ 3 row chunks. Logits and greedy generations must equal
 * those of the same checkpoint loaded whole (≤ 1e-5), for the organism (tied embeddings: one chunked parameter used
 * twice) and an untied fixture (embedding and lm_head chunked separately).
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { steer } from '../../lib/model/interventions';
import { readModelConfig } from '../../lib/model/config';
import { FIXTURE_ROOT, maxAbsDiff } from '../support/hf-parity';
import { setUpWebGpuSuite } from './support';

const TOL = 1e-5;
const MIN_CHUNKS = 3;

setUpWebGpuSuite();

describe.each([
  ['organism (tied)', path.resolve(__dirname, '../../models/organism')],
  ['qwen2-tiny-untied', path.join(FIXTURE_ROOT, 'qwen2-tiny-untied')],
])('%s', (_name, dir) => {
  let whole: Model;
  let chunked: Model;
  let maxTensorBytes: number;
  beforeAll(async () => {
    const cfg = readModelConfig(dir);
    const vocabBytes = 4 * cfg.vocabSize * cfg.hiddenSize;
    // Just over a quarter of the embedding: 4 chunks (for the organism the last one is shorter: 853 = 3 × 214 + 211).
    maxTensorBytes = Math.ceil(vocabBytes / (MIN_CHUNKS + 1)) + 4 * cfg.hiddenSize;
    whole = await Model.load(dir);
    chunked = await Model.load(dir, { maxTensorBytes });
  });
  afterAll(() => {
    whole?.dispose();
    chunked?.dispose();
  });

  test('the chunked model holds its vocabulary parameters in ≥ 3 chunks, none over the limit; the whole one in 1', () => {
    expect(whole.embeddingChunks()).toBe(1);
    expect(chunked.embeddingChunks()).toBeGreaterThanOrEqual(MIN_CHUNKS);
    expect(chunked.numParameters()).toBe(whole.numParameters());
    const vocabPieces = [...chunked.params].filter(([n]) => /embed_tokens|lm_head/.test(n));
    expect(vocabPieces.length).toBeGreaterThanOrEqual(MIN_CHUNKS * (whole.config.tieWordEmbeddings ? 1 : 2));
    for (const [n, t] of vocabPieces) expect([n, 4 * t.size <= maxTensorBytes]).toEqual([n, true]);
  });

  const ids = (V: number, B: number, T: number, seed: number) =>
    Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (seed * 7919 + b * 104729 + t * 1299709) % V));

  test('logits (and last hidden state) of a batch equal those of the whole model', async () => {
    const V = whole.config.vocabSize;
    const input = { ids: ids(V, 2, 9, 1) };
    const read = async (m: Model) => {
      const out = m.forward(input, { hiddenStates: true });
      try {
        return { logits: await out.logits!.array(), last: await out.hiddenStates![out.hiddenStates!.length - 1].array() };
      } finally {
        tf.dispose([out.logits!, ...out.hiddenStates!]);
      }
    };
    const a = await read(whole);
    const b = await read(chunked);
    expect((a.logits as number[][][])[0][0].length).toBe(V);
    expect(maxAbsDiff(b.logits, a.logits)).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(b.last, a.last)).toBeLessThanOrEqual(TOL);
  });

  test('greedy generations (plain and steered) equal those of the whole model', async () => {
    const V = whole.config.vocabSize;
    const v = new Float32Array(whole.config.hiddenSize).map((_, i) => Math.sin(i));
    for (const interventions of [[], [steer(v, 1, 4, 'all')]]) {
      const opts = { greedy: true, maxNewTokens: 8, eosTokenIds: [], interventions };
      const input = { ids: ids(V, 2, 6, 2) };
      const a = await generate(whole, input, opts);
      const b = await generate(chunked, input, opts);
      expect(a.tokens.every((t) => t.length === 8)).toBe(true);
      expect(b.tokens).toEqual(a.tokens);
    }
  });

  test('the chunked parameters read back in Hugging Face layout equal the whole ones', async () => {
    const names = ['model.embed_tokens.weight', ...(whole.config.tieWordEmbeddings ? [] : ['lm_head.weight'])];
    for (const n of names) expect(maxAbsDiff(await chunked.hfValues(n), await whole.hfValues(n))).toBe(0);
  });
});
