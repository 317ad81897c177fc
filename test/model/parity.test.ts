/**
 * Parity with Hugging Face transformers on the tiny reference checkpoints: hidden states, logits,
 * left-padded batches, steering and ablation. Every setting is read from config.json / expected.json.
 */
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { Intervention, ablate, interventionHooks, steer } from '../../lib/model/interventions';
import { parityFixtures, readExpected, maxAbsDiff } from '../support/hf-parity';
import { useBackend } from '../../lib/backend';

const TOL = 1e-4;

describe.each(['cpu', 'wasm'] as const)('%s backend', (backend) => {
beforeAll(async () => {
  await useBackend(backend, () => undefined);
});
describe.each(parityFixtures())('$name', ({ dir }) => {
  const exp = readExpected(dir);
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(dir);
  });
  afterAll(() => model.dispose());

  test('single sequence: every hidden state and the logits', () => {
    const out = model.forward({ ids: [exp.single.input_ids] }, { hiddenStates: true });
    const hs = out.hiddenStates!.map((t) => (t.arraySync() as number[][][])[0]);
    expect(hs.length).toBe(exp.num_hidden_layers + 1);
    hs.forEach((h, L) => expect(maxAbsDiff(h, exp.single.hidden_states[L], `hs${L}`)).toBeLessThan(TOL));
    expect(maxAbsDiff((out.logits!.arraySync() as number[][][])[0], exp.single.logits)).toBeLessThan(TOL);
    tf.dispose([out.logits!, ...out.hiddenStates!]);
  });

  const vector = () => Float32Array.from(exp.steering.vector as number[]);
  const steering = (positions: 'all' | 'response' = 'all'): Intervention[] => [steer(vector(), exp.steering.layer, exp.steering.coef, positions, exp.num_hidden_layers)];
  const ablation = (): Intervention[] => [ablate(vector(), exp.ablation.layer, exp.num_hidden_layers)];
  const run = (ids: number[][], ivs: Intervention[], attentionMask?: number[][]) => {
    const out = model.forward({ ids, attentionMask }, { hiddenStates: true, hooks: interventionHooksFor(ivs) });
    const res = { logits: out.logits!.arraySync() as number[][][], hs: out.hiddenStates!.map((t) => t.arraySync() as number[][][]) };
    tf.dispose([out.logits!, ...out.hiddenStates!]);
    return res;
  };
  const interventionHooksFor = (ivs: Intervention[]) => interventionHooks(ivs, model.config);
  /** Logits of the left-padded batch at real positions only (as expected.json stores them). */
  const realLogits = (logits: number[][][]) => logits.map((row, b) => row.slice(row.length - exp.batch.lengths[b]));

  test('left-padded batch with attention mask', () => {
    const { logits } = run(exp.batch.input_ids, [], exp.batch.attention_mask);
    expect(maxAbsDiff(realLogits(logits), exp.batch.logits)).toBeLessThan(TOL);
  });

  test('steering (positions all): hidden states and logits, single and batch', () => {
    const single = run([exp.single.input_ids], steering());
    single.hs.forEach((h, L) => expect(maxAbsDiff(h[0], exp.steering.single.hidden_states[L], `hs${L}`)).toBeLessThan(TOL));
    expect(maxAbsDiff(single.logits[0], exp.steering.single.logits)).toBeLessThan(TOL);
    const batch = run(exp.batch.input_ids, steering(), exp.batch.attention_mask);
    expect(maxAbsDiff(realLogits(batch.logits), exp.steering.batch.logits)).toBeLessThan(TOL);
  });

  test('directional ablation: logits, single and batch', () => {
    expect(maxAbsDiff(run([exp.single.input_ids], ablation()).logits[0], exp.ablation.single.logits)).toBeLessThan(TOL);
    const batch = run(exp.batch.input_ids, ablation(), exp.batch.attention_mask);
    expect(maxAbsDiff(realLogits(batch.logits), exp.ablation.batch.logits)).toBeLessThan(TOL);
  });

  test.each([
    ['plain', () => []],
    ['steer_all', () => steering('all')],
    ['steer_response', () => steering('response')],
    ['ablate', () => ablation()],
  ] as [string, () => Intervention[]][])('batched greedy generation with KV cache: %s', async (mode, ivs) => {
    const g = exp.generation;
    const res = await generate(model, { ids: exp.batch.input_ids, attentionMask: exp.batch.attention_mask }, {
      greedy: true, maxNewTokens: g.max_new_tokens, eosTokenIds: [g.eos_token_id], padTokenId: g.pad_token_id, interventions: ivs(),
    });
    expect(res.tokens).toEqual(g[mode].new_tokens);
  });

  test('repeated forward and generate calls leave no tensors behind', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      run(exp.batch.input_ids, steering(), exp.batch.attention_mask);
      await generate(model, { ids: exp.batch.input_ids, attentionMask: exp.batch.attention_mask }, { greedy: true, maxNewTokens: 3, interventions: ablation() });
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
});
