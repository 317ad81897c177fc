/**
 * Random models of known shapes (lib/model/random.ts) and the benches on them, on the cpu backend. The real shapes
 * are far too large here, so the model tests use small variants of them through the same parser and builder.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import type { Model } from '../../lib/model/checkpoint';
import { WEIGHT_NAMES } from '../../lib/model/transformer';
import { RANDOM_STD, numParametersOf, randomModel, shapeConfig, shapeNames } from '../../lib/model/random';
import { benchForward, benchGenerate } from '../../lib/model/bench';
import { benchTrain } from '../../lib/train/bench';

beforeAll(async () => {
  await useBackend('cpu', () => undefined);
});

/** Small widths, same families and fields otherwise (Qwen3's stated head_dim must shrink with them). */
const SMALL = { hidden_size: 64, intermediate_size: 96, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, vocab_size: 300 };
const small = (name: string) => shapeConfig(name, name.startsWith('qwen3') ? { ...SMALL, head_dim: 16 } : SMALL);
const IDS = [[20, 31, 299, 150, 7, 88, 250, 64], [100, 101, 102, 103, 104, 105, 106, 107]];

async function logitsOf(model: Model): Promise<Float32Array> {
  const out = model.forward({ ids: IDS }, {});
  try {
    return (await out.logits!.data()) as Float32Array;
  } finally {
    out.logits!.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('the issue\'s shapes parse to their checkpoints\' sizes', () => {
  expect(shapeNames()).toEqual(expect.arrayContaining(['qwen2.5-0.5b', 'qwen2.5-7b', 'qwen3-4b', 'llama-3.1-8b', 'synthetic-25m']));
  const billions = Object.fromEntries(shapeNames().map((n) => [n, numParametersOf(shapeConfig(n)) / 1e9]));
  expect(billions['qwen2.5-0.5b']).toBeCloseTo(0.494, 3);
  expect(billions['qwen2.5-7b']).toBeCloseTo(7.616, 3);
  expect(billions['qwen3-4b']).toBeCloseTo(4.022, 3);
  expect(billions['llama-3.1-8b']).toBeCloseTo(8.03, 3);
  expect(billions['synthetic-25m']).toBeCloseTo(0.0268, 4);
  const q3 = shapeConfig('qwen3-4b');
  expect([q3.family, q3.headDim, q3.qkNorm, q3.tieWordEmbeddings]).toEqual(['qwen3', 128, true, true]);
  expect(shapeConfig('llama-3.1-8b').ropeScaling.type).toBe('llama3');
});

test('an unknown shape is refused with the known names', () => {
  expect(() => shapeConfig('gpt-5')).toThrow(/unknown shape 'gpt-5'; known shapes: .*qwen2\.5-0\.5b.*llama-3\.1-8b.*synthetic-25m/);
  expect(() => shapeConfig('constructor')).toThrow(/unknown shape/);
});

describe.each(['synthetic-25m', 'qwen3-4b', 'llama-3.1-8b'])('random weights of a small %s', (name) => {
  const cfg = small(name);
  let model: Model;
  beforeAll(async () => {
    model = await randomModel(cfg, { seed: 1 });
  });
  afterAll(() => model.dispose());

  test('are scaled like an initialisation: std 0.02, mean 0, norm weights one', async () => {
    const w = await model.hfValues('model.layers.1.mlp.down_proj.weight');
    const mean = w.reduce((s, x) => s + x, 0) / w.length;
    const std = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeGreaterThan(0.9 * RANDOM_STD);
    expect(std).toBeLessThan(1.1 * RANDOM_STD);
    expect(new Set(w).size).toBeGreaterThan(1000);
    expect([...(await model.hfValues(WEIGHT_NAMES.layer(0).inputNorm))].every((x) => x === 1)).toBe(true);
    if (cfg.qkNorm) expect([...(await model.hfValues(WEIGHT_NAMES.layer(0).qNorm))].every((x) => x === 1)).toBe(true);
    // Different parameters and different rows differ.
    const q = await model.hfValues(`${WEIGHT_NAMES.layer(0).q}.weight`);
    const k = await model.hfValues(`${WEIGHT_NAMES.layer(0).k}.weight`);
    expect(maxAbsDiff(q.subarray(0, k.length), k)).toBeGreaterThan(0.01);
    expect(maxAbsDiff(q.subarray(0, cfg.hiddenSize), q.subarray(cfg.hiddenSize, 2 * cfg.hiddenSize))).toBeGreaterThan(0.01);
  });

  test('give finite logits whose argmax varies; same seed same logits, another seed others', async () => {
    const a = await logitsOf(model);
    expect(a.every(Number.isFinite)).toBe(true);
    const V = cfg.vocabSize;
    const argmax = new Set(Array.from({ length: a.length / V }, (_, i) => {
      const row = a.subarray(i * V, (i + 1) * V);
      return row.indexOf(Math.max(...row));
    }));
    expect(argmax.size).toBeGreaterThan(2);
    const again = await randomModel(cfg, { seed: 1 });
    const other = await randomModel(cfg, { seed: 2 });
    try {
      expect(maxAbsDiff(await logitsOf(again), a)).toBe(0);
      expect(maxAbsDiff(await logitsOf(other), a)).toBeGreaterThan(0.01);
    } finally {
      again.dispose();
      other.dispose();
    }
  });

  test('are the same when parameters are split into vocabulary chunks', async () => {
    const embedBytes = 4 * cfg.vocabSize * cfg.hiddenSize;
    const chunked = await randomModel(cfg, { seed: 1, maxTensorBytes: Math.ceil(embedBytes / 3) });
    try {
      expect(chunked.embeddingChunks()).toBe(3);
      expect(model.embeddingChunks()).toBe(1);
      for (const p of [WEIGHT_NAMES.embed, ...(cfg.tieWordEmbeddings ? [] : [WEIGHT_NAMES.lmHead])])
        expect(maxAbsDiff(await chunked.hfValues(p), await model.hfValues(p))).toBe(0);
      expect(maxAbsDiff(await logitsOf(chunked), await logitsOf(model))).toBeLessThan(1e-5);
    } finally {
      chunked.dispose();
    }
  });
});

test('bench forward, generate and train on random weights report their fields and leave no tensors behind', async () => {
  const model = await randomModel(small('synthetic-25m'), { seed: 0 });
  try {
    const o = { batch: 2, promptLen: 8, newTokens: 3, repeats: 1, shape: 'synthetic-25m' };
    await benchForward(model, o); // first-call allocations (tied head) are not leaks
    const before = tf.memory().numTensors;
    const f = await benchForward(model, o);
    const g = await benchGenerate(model, o);
    const t = await benchTrain(model, { batch: 1, seqLen: 8, steps: 1, r: 2, shape: 'synthetic-25m' });
    expect(tf.memory().numTensors).toBe(before);
    const common = { backend: 'cpu', adapter: null, model: null, shape: 'synthetic-25m', peak_rss_mb: expect.any(Number) };
    expect(f).toEqual({ ...common, batch: 2, prompt_len: 8, new_tokens: 3, repeats: 1, prefill_ms: expect.any(Number), prefill_tokens_per_s: expect.any(Number) });
    expect(g).toEqual({ ...f, prefill_ms: expect.any(Number), prefill_tokens_per_s: expect.any(Number), peak_rss_mb: expect.any(Number), decode_ms_per_step: expect.any(Number), decode_tokens_per_s: expect.any(Number) });
    expect(g.decode_ms_per_step).toBeGreaterThan(0);
    expect(t).toEqual({ ...common, mode: 'lora', r: 2, batch: 1, seq_len: 8, steps: 1, ms_per_step: expect.any(Number), tokens_per_s: expect.any(Number) });
    expect(t.tokens_per_s).toBeGreaterThan(0);
  } finally {
    model.dispose();
  }
});
