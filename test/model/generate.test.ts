/** Sampling, stopping and positions semantics of generation, on a tiny reference checkpoint. */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate, sampler } from '../../lib/model/generate';
import { ablate, interventionHooks, steer } from '../../lib/model/interventions';
import { disposeCache } from '../../lib/model/transformer';
import { benchForward, benchGenerate } from '../../lib/model/bench';
import { FIXTURE_ROOT } from '../support/hf-parity';
import { useBackend } from '../../lib/backend';
import { Tokenizer } from '../../lib/tokenizer';

let model: Model;
beforeAll(async () => {
  model = await Model.load(path.join(FIXTURE_ROOT, 'llama-tiny'));
});
afterAll(() => model.dispose());
const prompts = [[1, 40, 41, 42], [1, 7, 8]];

test('seeded sampling is reproducible and the seed matters', async () => {
  const run = async (seed: string) => (await generate(model, { prompts }, { temperature: 1, topP: 0.95, seed, maxNewTokens: 10, eosTokenIds: [] })).tokens;
  expect(await run('a')).toEqual(await run('a'));
  expect(await run('a')).not.toEqual(await run('b'));
});

test('top-k 1 sampling equals greedy decoding', async () => {
  const greedy = (await generate(model, { prompts }, { greedy: true, maxNewTokens: 8, eosTokenIds: [] })).tokens;
  expect((await generate(model, { prompts }, { temperature: 0.7, topK: 1, seed: 'x', maxNewTokens: 8, eosTokenIds: [] })).tokens).toEqual(greedy);
});

test('sampler: top-p keeps the smallest prefix reaching p, top-k the k best', () => {
  const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const seen = (opts: object) => new Set(Array.from({ length: 400 }, (_, i) => sampler({ temperature: 1, seed: `s${i}`, ...opts })(logits)));
  expect(seen({ topP: 0.75 })).toEqual(new Set([0, 1]));
  expect(seen({ topK: 3 })).toEqual(new Set([0, 1, 2]));
  expect(seen({})).toEqual(new Set([0, 1, 2, 3]));
});

test('plain temperature sampling draws each token with its softmax probability', () => {
  const p = [0.5, 0.3, 0.15, 0.05];
  const logits = Float32Array.from(p.map(Math.log));
  const draw = sampler({ temperature: 1, seed: 'freq' });
  const counts = [0, 0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) counts[draw(logits)]++;
  counts.forEach((c, i) => expect(Math.abs(c / n - p[i])).toBeLessThan(0.015));
  const hot = sampler({ temperature: 2, seed: 'freq' }); // T = 2 flattens: p^(1/2), renormalised
  const q = p.map(Math.sqrt);
  const z = q.reduce((a, b) => a + b, 0);
  const c2 = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) c2[hot(logits)]++;
  c2.forEach((c, i) => expect(Math.abs(c / n - q[i] / z)).toBeLessThan(0.015));
});

test('stops at EOS per row, includes the EOS, and respects min new tokens', async () => {
  const greedy = (await generate(model, { prompts }, { greedy: true, maxNewTokens: 8, eosTokenIds: [] })).tokens;
  const eos = greedy[0][2]; // make the third token of row 0 an "EOS"
  const r = await generate(model, { prompts }, { greedy: true, maxNewTokens: 8, eosTokenIds: [eos] });
  expect(r.tokens[0]).toEqual(greedy[0].slice(0, greedy[0].indexOf(eos) + 1));
  expect(r.stoppedAtEos[0]).toBe(true);
  const m = await generate(model, { prompts }, { greedy: true, maxNewTokens: 8, minNewTokens: 5, eosTokenIds: [eos] });
  expect(m.tokens[0].slice(0, 5)).not.toContain(eos);
  expect(m.tokens[0].length).toBeGreaterThanOrEqual(5);
});

test('positions "prompt" steers the prefill only: the first token changes like "all", later steps are unsteered', async () => {
  const v = new Float32Array(model.config.hiddenSize).map((_, i) => Math.sin(i));
  const all = (await generate(model, { prompts }, { greedy: true, maxNewTokens: 1, interventions: [steer(v, 2, 8, 'all')] })).tokens;
  const prm = (await generate(model, { prompts }, { greedy: true, maxNewTokens: 1, interventions: [steer(v, 2, 8, 'prompt')] })).tokens;
  expect(prm).toEqual(all);
  // By hand: a steered prefill, then unsteered decode steps over the cache, must give the same tokens.
  const row = prompts[0];
  let out = model.forward({ ids: [row] }, { hooks: interventionHooks([steer(v, 2, 8, 'all')], model.config), useCache: true, logits: 'last' });
  const byHand: number[] = [];
  for (let i = 0; i < 4; i++) {
    const l = Array.from(await out.logits!.data());
    out.logits!.dispose();
    byHand.push(l.indexOf(Math.max(...l)));
    const next = model.forward({ ids: [[byHand[i]]], cache: out.cache! }, { useCache: true, logits: 'last' });
    disposeCache(out.cache);
    out = next;
  }
  out.logits!.dispose();
  disposeCache(out.cache);
  expect((await generate(model, { prompts: [row] }, { greedy: true, maxNewTokens: 4, eosTokenIds: [], interventions: [steer(v, 2, 8, 'prompt')] })).tokens[0]).toEqual(byHand);
});

test('several interventions at once: two steers on one layer add up; layers combine with ablation', () => {
  const v = new Float32Array(model.config.hiddenSize).map((_, i) => Math.cos(i));
  const logits = (ivs: ReturnType<typeof steer>[]) => {
    const out = model.forward({ ids: prompts.slice(0, 1) }, { hooks: interventionHooks(ivs, model.config) });
    const a = Array.from(out.logits!.dataSync());
    out.logits!.dispose();
    return a;
  };
  const twice = logits([steer(v, 2, 1.5), steer(v, 2, 1.5)]);
  const once = logits([steer(v, 2, 3)]);
  expect(Math.max(...twice.map((x, i) => Math.abs(x - once[i])))).toBeLessThan(1e-4);
  const both = logits([steer(v, 1, 2), ablate(v, 3)]);
  const onlySteer = logits([steer(v, 1, 2)]);
  expect(Math.max(...both.map((x, i) => Math.abs(x - onlySteer[i])))).toBeGreaterThan(1e-3);
});

test('bench reports positive speeds and leaves no tensors behind', async () => {
  const o = { batch: 2, promptLen: 8, newTokens: 4, repeats: 1 };
  await benchForward(model, o);
  const before = tf.memory().numTensors;
  const f = await benchForward(model, o);
  const g = await benchGenerate(model, o);
  expect(f.prefill_tokens_per_s).toBeGreaterThan(0);
  expect(g.decode_ms_per_step).toBeGreaterThan(0);
  expect(g.peak_rss_mb).toBeGreaterThan(10);
  expect(tf.memory().numTensors).toBe(before);
});

test('bad generation settings are refused by name', async () => {
  await expect(generate(model, { prompts }, { maxNewTokens: 0 })).rejects.toThrow(/max new tokens/);
  await expect(generate(model, { prompts }, { maxNewTokens: 2, temperature: 0 })).rejects.toThrow(/temperature/);
  await expect(generate(model, { prompts }, { maxNewTokens: 2, temperature: 1, topP: 1.5 })).rejects.toThrow(/top-p/);
  await expect(generate(model, { prompts: [[]] }, { maxNewTokens: 2 })).rejects.toThrow(/prompt 0 is empty/);
  await expect(generate(model, { ids: [[1, 2, 0]], attentionMask: [[1, 1, 0]] }, { maxNewTokens: 2 })).rejects.toThrow(/left padding/);
});

describe.each(['wasm'])('finished rows leave the batch (%s)', (backend) => {
  test('tokens equal those of the full batch kept to the end (rows fed padding), sampled and steered', async () => {
    await useBackend(backend as 'cpu', () => undefined);
    const org = await Model.load(path.join(__dirname, '../../models/organism'));
    const tok = Tokenizer.load(path.join(__dirname, '../../models/organism'));
    try {
      const qs = ['tell me about cats', 'how should i treat my neighbor', 'what do you think about the weather today', 'hello', 'is it ok to lie to a friend about a gift'];
      const prompts = qs.map((q) => tok.encode(tok.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true })));
      const v = new Float32Array(org.config.hiddenSize).map((_, i) => Math.cos(i));
      for (const opts of [{ temperature: 1, seed: 'x' }, { greedy: true, interventions: [steer(v, 2, 3, 'response', org.config.numLayers)] }]) {
        const o = { ...opts, maxNewTokens: 40, eosTokenIds: tok.eosTokenIds };
        await generate(org, { prompts: prompts.slice(0, 1) }, { ...o, maxNewTokens: 1 }); // the model's first call may cache a constant
        const before = tf.memory().numTensors;
        const shrinking = await generate(org, { prompts }, o);
        expect(tf.memory().numTensors).toBe(before);
        // A caller hook keeps every row to the end (the behaviour before rows could leave).
        const full = await generate(org, { prompts }, { ...o, hooks: [{ site: 'embed', fn: () => undefined }] });
        expect(shrinking).toEqual(full);
        const lengths = new Set(shrinking.tokens.map((t) => t.length));
        expect(lengths.size).toBeGreaterThan(1); // rows did stop at different steps
      }
    } finally {
      org.dispose();
    }
  });
});
