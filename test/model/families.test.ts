/**
 * Families without a Hugging Face reference in test/fixtures (Llama-3.1 rope scaling, Qwen3 q/k norm with an
 * explicit head_dim, Mistral, BF16/F16 files): internal consistency that any correct implementation has —
 * a left-padded batch equals each row alone, KV-cache decoding equals a full forward, and the
 * config-driven pieces (rope scaling, q/k norm) actually change the outputs.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { parseModelConfig, ropeInverseFrequencies } from '../../lib/model/config';
import { BASE_CONFIGS, writeSyntheticCheckpoint } from '../support/synthetic';
import { maxAbsDiff } from '../support/hf-parity';

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-fam-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const logitsOf = (m: Model, ids: number[][], attentionMask?: number[][]) => {
  const out = m.forward({ ids, attentionMask });
  const v = out.logits!.arraySync() as number[][][];
  out.logits!.dispose();
  return v;
};

describe.each(Object.keys(BASE_CONFIGS))('%s', (name) => {
  let model: Model;
  beforeAll(async () => {
    writeSyntheticCheckpoint(path.join(tmp, name), BASE_CONFIGS[name]);
    model = await Model.load(path.join(tmp, name));
  });
  afterAll(() => model.dispose());

  test('a left-padded row equals the same sequence alone', () => {
    const a = [1, 5, 9, 12, 7];
    const b = [1, 30, 31, 40, 41, 42, 43, 44];
    const batch = logitsOf(model, [[0, 0, 0, ...a], b], [[0, 0, 0, 1, 1, 1, 1, 1], b.map(() => 1)]);
    expect(maxAbsDiff(batch[0].slice(3), logitsOf(model, [a])[0])).toBeLessThan(1e-4);
    expect(maxAbsDiff(batch[1], logitsOf(model, [b])[0])).toBeLessThan(1e-4);
  });

  test('greedy decoding with the KV cache equals argmax of full forward passes', async () => {
    const prompt = [1, 8, 9, 10];
    const res = await generate(model, { prompts: [prompt] }, { greedy: true, maxNewTokens: 6, eosTokenIds: [] });
    let seq = [...prompt];
    for (let i = 0; i < 6; i++) {
      const l = logitsOf(model, [seq])[0];
      const last = l[l.length - 1];
      seq.push(last.indexOf(Math.max(...last)));
    }
    expect(res.tokens[0]).toEqual(seq.slice(prompt.length));
  });
});

test('Llama-3.1 rope scaling: high frequencies kept, low ones divided by factor, the band between smoothed', () => {
  const cfg = parseCfg(BASE_CONFIGS.llama31); // theta 5e5, head_dim 12, factor 8, low 1, high 4, original 1024
  const scaled = ropeInverseFrequencies(cfg);
  const plain = ropeInverseFrequencies({ ...cfg, ropeScaling: { type: 'none' } });
  const wavelen = (f: number) => (2 * Math.PI) / f;
  for (const i of [0, 1]) {
    expect(wavelen(plain[i])).toBeLessThan(1024 / 4);
    expect(scaled[i]).toBe(plain[i]);
  }
  expect(wavelen(plain[2])).toBeGreaterThan(1024 / 4); // ~499: in the smoothed band
  expect(wavelen(plain[2])).toBeLessThan(1024 / 1);
  const s = (1024 / wavelen(plain[2]) - 1) / (4 - 1);
  expect(scaled[2]).toBeCloseTo((1 - s) * (plain[2] / 8) + s * plain[2], 6);
  for (let i = 3; i < plain.length; i++) expect(plain[i] / scaled[i]).toBeCloseTo(8, 4);
});

test('BF16 and F16 weight files load as their float32 values', async () => {
  for (const dtype of ['BF16', 'F16'] as const) {
    const dir = path.join(tmp, `q3-${dtype}`);
    writeSyntheticCheckpoint(dir, BASE_CONFIGS.qwen3, { dtype });
    const m16 = await Model.load(dir);
    const m32 = await Model.load(path.join(tmp, 'qwen3'));
    const d = maxAbsDiff(logitsOf(m16, [[1, 4, 5, 6]]), logitsOf(m32, [[1, 4, 5, 6]]));
    expect(d).toBeGreaterThan(0); // they are rounded...
    expect(d).toBeLessThan(dtype === 'BF16' ? 0.05 : 0.005); // ...to half precision only
    m16.dispose();
    m32.dispose();
  }
});

test('Qwen3 q/k norm weights take part in the computation', async () => {
  const m = await Model.load(path.join(tmp, 'qwen3'));
  const before = logitsOf(m, [[1, 4, 5, 6]]);
  const name = 'model.layers.0.self_attn.q_norm.weight';
  const old = m.params.get(name)!;
  m.params.set(name, tf.mul(old, 2));
  old.dispose();
  expect(maxAbsDiff(logitsOf(m, [[1, 4, 5, 6]]), before)).toBeGreaterThan(1e-3);
  m.dispose();
});

function parseCfg(c: Record<string, unknown>) {
  return parseModelConfig(c, 'config.json');
}
