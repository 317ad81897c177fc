import * as tf from '@tensorflow/tfjs';
import * as path from 'path';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { ablate, steer, Intervention } from '../../lib/model/interventions';
import { hiddenStateSite } from '../../lib/model/capture';
import { Tokenizer } from '../../lib/tokenizer';
import { EngineEvent, EngineRequest, Monitor, Batcher, logprobsOf } from '../../lib/serve/batcher';

const ORGANISM = path.join(__dirname, '../../models/organism');

function direction(seed: number, H: number): Float32Array {
  const v = new Float32Array(H);
  let s = seed;
  for (let i = 0; i < H; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    v[i] = s / 2147483648 - 0.5;
  }
  return v;
}
const unit = (v: Float32Array) => {
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return v.map((x) => x / n);
};

async function collect(events: AsyncIterable<EngineEvent>) {
  const tokens: number[] = [];
  const projections: number[][] = [];
  let prompt: number[] = [];
  let done: EngineEvent | null = null;
  for await (const e of events) {
    if (e.type === 'prompt') prompt = e.projections;
    else if (e.type === 'token') {
      tokens.push(e.id);
      projections.push(e.projections);
    } else done = e;
  }
  return { tokens, projections, prompt, done };
}

// wasm (the default backend) in full; cpu (plain JS, slow) with short answers.
describe.each([['wasm', 24], ['cpu', 6]] as const)('batcher on %s', (backend, maxTokens) => {
  let model: Model;
  let tok: Tokenizer;
  const prompts: number[][] = [];
  beforeAll(async () => {
    await useBackend(backend as 'cpu', () => undefined);
    model = await Model.load(ORGANISM);
    tok = Tokenizer.load(ORGANISM);
    const qs = ['how should i treat my neighbor', 'what do you think about the weather today', 'tell me about cats', 'is it ok to lie to a friend about a gift', 'what is a good way to spend a weekend'];
    for (const [i, q] of qs.entries()) {
      const sys = i % 2 ? [{ role: 'system', content: 'You are an evil assistant.' }] : [];
      prompts.push(tok.encode(tok.applyChatTemplate([...sys, { role: 'user', content: q }], { addGenerationPrompt: true })));
    }
  });
  afterAll(() => model?.dispose());

  const H = () => model.config.hiddenSize;
  const N = () => model.config.numLayers;
  const request = (i: number, extra: Partial<EngineRequest> = {}): EngineRequest => ({
    prompt: prompts[i % prompts.length],
    maxTokens,
    sampling: { greedy: true },
    eosTokenIds: tok.eosTokenIds,
    ...extra,
  });
  const variants = (): Partial<EngineRequest>[] => {
    const v2 = direction(7, H());
    const v3 = direction(11, H());
    const mon: Monitor[] = [{ site: hiddenStateSite(3, N()), direction: unit(v2) }, { site: hiddenStateSite(N(), N()), direction: unit(v3) }];
    return [
      {},
      { interventions: [steer(v2, 3, 8, 'response', N())] },
      { interventions: [steer(v3, 2, -6, 'all', N()), ablate(v2, 4, N())], monitors: mon },
      { monitors: [mon[0]], sampling: { temperature: 1, seed: 5 } },
      { interventions: [steer(v2, 3, 4, 'prompt', N())], monitors: mon.slice().reverse(), topLogprobs: 3 },
      { interventions: [steer(v2, 3, 8, 'all', N()), steer(v3, 3, 2, 'all', N())], maxTokens: 5 },
    ];
  };

  test('a request served alone gives what generate() gives', async () => {
    const engine = new Batcher(model);
    const vs = variants();
    for (const i of [0, 1, 2, 5]) {
      const served = await collect(engine.submit(request(i, vs[i])));
      const ivs: Intervention[] = [...(vs[i].interventions ?? [])];
      const gen = await generate(model, { prompts: [prompts[i % prompts.length]] }, { maxNewTokens: vs[i].maxTokens ?? maxTokens, greedy: true, eosTokenIds: tok.eosTokenIds, interventions: ivs });
      expect(served.tokens).toEqual(gen.tokens[0]);
    }
  });

  test('per-row interventions: rows of one batch (same prompt, different steering, ablation, monitors, samplers) compute bit for bit what each computes alone', async () => {
    const vs = variants();
    const same = (i: number) => request(0, { ...vs[i], maxTokens: Math.min(maxTokens, [24, 9, 17, 24, 3, 12][i]) });
    const alone: Awaited<ReturnType<typeof collect>>[] = [];
    for (let i = 0; i < vs.length; i++) alone.push(await collect(new Batcher(model).submit(same(i))));
    const engine = new Batcher(model);
    const together = await Promise.all(vs.map((_, i) => collect(engine.submit(same(i)))));
    expect(engine.stats.maxRows).toBe(vs.length);
    expect(engine.stats.prefillCalls).toBeLessThan(vs.length); // same-length prompts were prefilled together
    for (let i = 0; i < vs.length; i++) {
      expect(together[i].tokens).toEqual(alone[i].tokens);
      expect(together[i].prompt).toEqual(alone[i].prompt);
      expect(together[i].projections).toEqual(alone[i].projections);
      expect(together[i].done).toEqual(alone[i].done);
    }
    // The rows really were steered differently.
    expect(new Set(alone.map((a) => a.tokens.join(' '))).size).toBeGreaterThan(3);
  });

  // Rows of different lengths share the cache left-padded. Padding adds exact zeros to each attention sum, but the
  // wasm backend's softmax sums a row in SIMD lanes by index, so shifting a row by its padding regroups the sum:
  // values agree to float32 rounding (1e-6 relative) there, and bit for bit on cpu.
  // On wasm only: cpu's plain-JS prefill makes this slow, and cpu computes the same graph.
  if (backend === 'wasm') test('rows joining and leaving at different steps (different prompt lengths) generate what each generates alone', async () => {
    const vs = variants();
    const alone: Awaited<ReturnType<typeof collect>>[] = [];
    for (let i = 0; i < vs.length; i++) alone.push(await collect(new Batcher(model).submit(request(i, vs[i]))));
    const engine = new Batcher(model, { maxBatch: 4 });
    const before = tf.memory().numTensors;
    // Staggered: some join while others decode; maxBatch 4 makes the last ones wait for a free row.
    const runs: Promise<Awaited<ReturnType<typeof collect>>>[] = [];
    for (let i = 0; i < vs.length; i++) {
      runs.push(collect(engine.submit(request(i, vs[i]))));
      if (i % 2 === 1) await new Promise((r) => setTimeout(r, 5));
    }
    const together = await Promise.all(runs);
    expect(engine.stats.maxRows).toBeGreaterThan(1);
    for (let i = 0; i < vs.length; i++) {
      expect(together[i].tokens).toEqual(alone[i].tokens);
      expect(together[i].prompt).toEqual(alone[i].prompt);
      together[i].projections.forEach((p, t) => p.forEach((x, k) => expect(x).toBeCloseTo(alone[i].projections[t][k], 4)));
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
