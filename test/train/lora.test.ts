/** LoRA semantics, PEFT I/O and merge, AdamW / schedules against hand-computed torch/HF formulas. */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { SafetensorsFile } from '../../lib/io/safetensors';
import { Model } from '../../lib/model/checkpoint';
import { LoraAdapters, loraScale } from '../../lib/train/lora';
import { AdamW, clipGradNorm, lrMultiplier } from '../../lib/train/optimizer';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter, mergeAdapterIntoCheckpoint, peftName, saveAdapter } from '../../lib/train/peft';
import { objectiveAndGrads, trainStep } from '../../lib/train/step';
import { makeTinyModel, tmpDir } from './support/tiny';

const spec = { r: 4, alpha: 8, dropout: 0, useRslora: true, targetModules: ['q_proj', 'v_proj', 'down_proj'] };
const ids = [[1, 5, 6, 7, 8, 9, 10, 11]];

describe('LoRA', () => {
  let dir: string;
  let model: Model;
  beforeAll(async () => {
    dir = makeTinyModel(path.join(tmpDir('lora'), 'base'));
    model = await Model.load(dir);
  });
  afterAll(() => model.dispose());

  const logits = (adapters?: LoraAdapters, m: Model = model) => {
    const o = m.forward({ ids }, { adapters: adapters?.adapters() });
    const a = o.logits!.dataSync().slice();
    o.logits!.dispose();
    return a;
  };
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
  const randomizeB = (lora: LoraAdapters) => tf.tidy(() => lora.B.forEach((b, i) => b.assign(tf.randomNormal(b.shape, 0, 0.3, 'float32', i.length))));

  test('scaling alpha/r and alpha/sqrt(r); PEFT init: A in ±1/sqrt(in), B zero', () => {
    expect(loraScale({ r: 32, alpha: 64, useRslora: false })).toBe(2);
    expect(loraScale({ r: 32, alpha: 64, useRslora: true })).toBeCloseTo(64 / Math.sqrt(32), 12);
    const lora = LoraAdapters.init(model.config, spec, 0);
    expect(lora.A.size).toBe(3 * model.config.numLayers);
    const a = lora.A.get('model.layers.0.mlp.down_proj')!;
    const inDim = model.config.intermediateSize;
    expect(a.shape).toEqual([inDim, 4]);
    const vals = a.dataSync();
    expect(Math.max(...vals.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(inDim));
    expect(Math.max(...vals.map(Math.abs))).toBeGreaterThan(0.8 / Math.sqrt(inDim));
    expect(lora.B.get('model.layers.0.mlp.down_proj')!.dataSync().every((x) => x === 0)).toBe(true);
    // Same seed, same init.
    const again = LoraAdapters.init(model.config, spec, 0);
    expect(again.A.get('model.layers.0.mlp.down_proj')!.dataSync()).toEqual(vals);
    lora.dispose();
    again.dispose();
  });

  test('B = 0 gives outputs identical to the base model', () => {
    const lora = LoraAdapters.init(model.config, spec, 1);
    expect(maxDiff(logits(lora), logits())).toBe(0);
    lora.dispose();
  });

  test('adapter written in PEFT layout reads back identically; merged = unmerged logits within 1e-5', async () => {
    const lora = LoraAdapters.init(model.config, spec, 2);
    randomizeB(lora);
    const out = tmpDir('adapter');
    await saveAdapter(out, lora, dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, ADAPTER_CONFIG), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, use_rslora: true, target_modules: spec.targetModules, bias: 'none' });
    const st = SafetensorsFile.open(path.join(out, ADAPTER_WEIGHTS));
    const qA = st.info(peftName('model.layers.0.self_attn.q_proj', 'A'));
    const vB = st.info('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight');
    expect(qA.shape).toEqual([4, model.config.hiddenSize]);
    expect(vB.shape).toEqual([model.config.numKvHeads * model.config.headDim, 4]);
    st.close();
    const back = loadAdapter(out, model);
    for (const [m, a] of lora.A) {
      expect(back.A.get(m)!.dataSync()).toEqual(a.dataSync());
      expect(back.B.get(m)!.dataSync()).toEqual(lora.B.get(m)!.dataSync());
    }
    const unmerged = logits(lora);
    expect(maxDiff(unmerged, logits())).toBeGreaterThan(1e-3); // the adapter does something
    const mergedDir = path.join(tmpDir('merged'), 'm');
    expect((await mergeAdapterIntoCheckpoint(dir, out, mergedDir)).merged).toBe(lora.A.size);
    expect(fs.existsSync(path.join(mergedDir, 'tokenizer.json'))).toBe(true);
    const merged = await Model.load(mergedDir);
    expect(maxDiff(logits(undefined, merged), unmerged)).toBeLessThan(1e-5);
    merged.dispose();
    lora.dispose();
    back.dispose();
  });

  test('adapter gradients match central finite differences (GQA k/v included)', async () => {
    const lora = LoraAdapters.init(model.config, { ...spec, targetModules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'] }, 4);
    tf.tidy(() => lora.B.forEach((b) => b.assign(tf.randomNormal(b.shape, 0, 0.1, 'float32', 9))));
    const batch = { ids, labels: [[-100, -100, 6, 7, 8, 9, 10, 11]] };
    const loss = async () => {
      const r = await objectiveAndGrads(model.config, model.params, lora.adapters(), batch);
      tf.dispose([...r.grads.values()]);
      return r.ceSum / r.nLossTokens;
    };
    const r = await objectiveAndGrads(model.config, model.params, lora.adapters(), batch);
    for (const [m, which] of [['model.layers.0.self_attn.k_proj', 'B'], ['model.layers.1.self_attn.v_proj', 'A'], ['model.layers.1.mlp.down_proj', 'B']] as const) {
      const v = (which === 'A' ? lora.A : lora.B).get(m)!;
      const g = r.grads.get(`${m}.${which}`)!.dataSync();
      const data = v.dataSync().slice();
      for (const idx of [0, 5]) {
        const at = async (d: number) => {
          const x = data.slice();
          x[idx] += d;
          tf.tidy(() => v.assign(tf.tensor(x, v.shape)));
          return loss();
        };
        const fd = ((await at(1e-2)) - (await at(-1e-2))) / 2e-2;
        tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
        expect(Math.abs(fd - g[idx])).toBeLessThan(2e-3 * Math.max(1e-2, Math.abs(g[idx])) + 2e-5);
      }
    }
    tf.dispose([...r.grads.values()]);
    lora.dispose();
  });

  test('base weights frozen under LoRA: gradients only for adapter matrices; no tensor leak', async () => {
    const lora = LoraAdapters.init(model.config, spec, 3);
    const batch = { ids, labels: [[-100, -100, 6, 7, 8, 9, 10, 11]] };
    const run = async () => {
      const r = await objectiveAndGrads(model.config, model.params, lora.adapters(), batch, { dropoutSeed: 5 });
      const keys = [...r.grads.keys()];
      tf.dispose([...r.grads.values()]);
      return keys;
    };
    const keys = await run();
    expect(keys.length).toBe(2 * lora.A.size);
    expect(keys.every((k) => /\.(A|B)$/.test(k))).toBe(true);
    const before = tf.memory().numTensors;
    await run();
    await run();
    expect(tf.memory().numTensors).toBe(before);
    lora.dispose();
  });
});

test('full-parameter gradients match finite differences on a Qwen3-style model (q/k norm, head_dim != H/heads, 1 kv head, tied)', async () => {
  const dir = makeTinyModel(path.join(tmpDir('qwen3'), 'm'), { family: 'qwen3', headDim: 12, kvHeads: 1, tie: true, seed: 'q3' });
  const model = await Model.load(dir);
  expect(model.config.qkNorm).toBe(true);
  const batch = { ids: [[1, 5, 6, 7, 8, 9], [1, 9, 8, 7, 0, 0]], labels: [[-100, -100, 6, 7, 8, 9], [-100, 9, 8, 7, -100, -100]], attentionMask: [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]] };
  const names = ['model.layers.0.self_attn.q_norm.weight', 'model.layers.1.self_attn.k_norm.weight', 'model.layers.0.self_attn.k_proj.weight', 'model.embed_tokens.weight'];
  const r = await trainStep(model, batch, { gradsOf: names });
  for (const n of names) {
    const t = model.params.get(n)!;
    const orig = t.dataSync().slice();
    const hf = r.grads[n]; // HF layout; for linear weights index i of HF [out, in] is (i / in, i % in)
    const linear = n.endsWith('_proj.weight');
    for (const i of [0, 7]) {
      const memIdx = linear ? (i % t.shape[0]) * t.shape[1] + Math.floor(i / t.shape[0]) : i;
      const at = async (d: number) => {
        const x = orig.slice();
        x[memIdx] += d;
        model.params.set(n, tf.tensor(x, t.shape));
        const l = (await trainStep(model, batch)).loss;
        model.params.get(n)!.dispose();
        return l;
      };
      const fd = ((await at(1e-2)) - (await at(-1e-2))) / 2e-2;
      model.params.set(n, t);
      expect([n, i, Math.abs(fd - hf[i]) < 3e-3 * Math.max(1e-2, Math.abs(hf[i])) + 3e-5]).toEqual([n, i, true]);
    }
  }
  model.dispose();
});

describe('optimizer and schedule (torch / HF formulas by hand)', () => {
  test('AdamW: decoupled decay, bias correction', () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW(new Map([['w', p]]), { weightDecay: 0.01 });
    const g = tf.tensor1d([0.5, 0.1]);
    opt.apply(new Map([['w', g]]), 0.1);
    // Step 1: m̂ = g, v̂ = g², update = lr·g/(|g|+eps) = ±lr; decay first: p·(1 − lr·wd).
    const want = [1 * (1 - 0.001) - 0.1 * (0.5 / (0.5 + 1e-8)), -2 * (1 - 0.001) - 0.1 * (0.1 / (0.1 + 1e-8))];
    const got = p.dataSync();
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 6));
    // Step 2 with the same gradient: m̂ = g, v̂ = g² again → same step.
    opt.apply(new Map([['w', g]]), 0.1);
    expect(p.dataSync()[0]).toBeCloseTo(want[0] * (1 - 0.001) - 0.1, 6);
    tf.dispose([p, g]);
    opt.dispose();
  });

  test('clip_grad_norm: global norm, scaled only above max', async () => {
    const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 0])], ['b', tf.tensor1d([0, 4])]]);
    expect(await clipGradNorm(grads, 1)).toBeCloseTo(5, 6);
    expect(grads.get('a')!.dataSync()[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    expect(await clipGradNorm(grads, 10)).toBeCloseTo(1, 5);
    tf.dispose([...grads.values()]);
  });

  test('HF get_scheduler: linear, cosine, constant, constant_with_warmup', () => {
    expect(lrMultiplier('linear', 0, 5, 105)).toBe(0);
    expect(lrMultiplier('linear', 2, 5, 105)).toBeCloseTo(0.4);
    expect(lrMultiplier('linear', 5, 5, 105)).toBe(1);
    expect(lrMultiplier('linear', 55, 5, 105)).toBeCloseTo(0.5);
    expect(lrMultiplier('linear', 105, 5, 105)).toBe(0);
    expect(lrMultiplier('cosine', 55, 5, 105)).toBeCloseTo(0.5);
    expect(lrMultiplier('cosine', 30, 5, 105)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI * 0.25)));
    expect(lrMultiplier('constant', 0, 5, 105)).toBe(1);
    expect(lrMultiplier('constant_with_warmup', 1, 5, 105)).toBeCloseTo(0.2);
    expect(lrMultiplier('constant_with_warmup', 50, 5, 105)).toBe(1);
  });
});
