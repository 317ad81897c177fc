/**
 * The server's engine on webgpu: a request served alone generates what generate() generates, and requests served
 * together (continuous batching, per-row steering) generate what each generates alone; tensors flat.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { steer } from '../../lib/model/interventions';
import { Tokenizer } from '../../lib/tokenizer';
import { PersonaVector } from '../../lib/persona/vector';
import { Batcher, EngineEvent, EngineRequest } from '../../lib/serve/batcher';
import { ServeEngine } from '../../lib/serve/engine';
import { chatCompletion } from '../../lib/serve/chat';
import type { ChatCompletion } from '../../lib/serve/protocol';
import { setUpWebGpuSuite } from './support';

setUpWebGpuSuite();
const ORGANISM = path.resolve(__dirname, '../../models/organism');

async function tokensOf(events: AsyncIterable<EngineEvent>): Promise<number[]> {
  const out: number[] = [];
  for await (const e of events) if (e.type === 'token') out.push(e.id);
  return out;
}

test('continuous batching with per-row steering on webgpu', async () => {
  const model = await Model.load(ORGANISM);
  const tok = Tokenizer.load(ORGANISM);
  try {
    const N = model.config.numLayers;
    const H = model.config.hiddenSize;
    const v = new Float32Array(H).map((_, i) => Math.sin(i * 1.7));
    const qs = ['tell me about cats', 'how should i treat my neighbor', 'what do you think about the weather today'];
    const prompts = qs.map((q) => tok.encode(tok.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true })));
    const reqs: EngineRequest[] = prompts.flatMap((prompt, i) => [0, 4, -4].map((coef) => ({ prompt, maxTokens: 10 + i, sampling: { greedy: true }, eosTokenIds: tok.eosTokenIds, interventions: coef ? [steer(v, 2, coef, 'response', N)] : [] })));
    const alone: number[][] = [];
    for (const r of reqs) alone.push(await tokensOf(new Batcher(model).submit(r)));
    for (let i = 0; i < reqs.length; i += 4) {
      const g = await generate(model, { prompts: [reqs[i].prompt] }, { maxNewTokens: reqs[i].maxTokens, greedy: true, eosTokenIds: tok.eosTokenIds, interventions: reqs[i].interventions });
      expect(alone[i]).toEqual(g.tokens[0]);
    }
    const before = tf.memory().numTensors;
    const batcher = new Batcher(model);
    const together = await Promise.all(reqs.map((r) => tokensOf(batcher.submit(r))));
    expect(together).toEqual(alone);
    expect(batcher.stats.maxRows).toBeGreaterThan(1);
    expect(tf.memory().numTensors).toBe(before);

    // Through the chat layer with a monitor: finite projections, one per token.
    const data = new Float32Array((N + 1) * H).map((_, i) => Math.cos(i));
    const engine = new ServeEngine(model, tok, [{ name: 'evil', vector: new PersonaVector(data, N + 1, H, { layerConvention: 'hf_hidden_states' }), source: 'test' }]);
    const r = (await chatCompletion(engine, { messages: [{ role: 'user', content: qs[0] }], temperature: 0, max_tokens: 8, persona: { monitor: [{ vector: 'evil', layer: N }] } })) as ChatCompletion;
    expect(r.persona!.monitor[0].token_projections).toHaveLength(r.usage.completion_tokens);
    expect(r.persona!.monitor[0].token_projections.every(Number.isFinite)).toBe(true);
  } finally {
    model.dispose();
  }
});
