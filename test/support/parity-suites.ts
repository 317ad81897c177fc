/**
 * The Hugging Face parity suites, run on every backend (test/model/parity.test.ts and test/train/step.test.ts on cpu and
 * wasm, test/webgpu/ on webgpu) at the same tolerances; the calling file chooses the backend in its beforeAll.
 */
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { Intervention, ablate, interventionHooks, steer } from '../../lib/model/interventions';
import { trainStep } from '../../lib/train/step';
import { parityFixtures, readExpected, maxAbsDiff } from './hf-parity';

const TOL = 1e-4;
const LOSS_REL = 1e-5;
const GRAD_REL = 1e-4;
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

/**
 * Hidden states and logits (single sequence, left-padded batch), steering, directional ablation, batched greedy
 * generation with a KV cache in every mode the fixtures hold, and no tensors left behind.
 */
export function hfParityTests(): void {
  describe.each(parityFixtures())('$name', ({ dir }) => {
    const exp = readExpected(dir);
    let model: Model;
    beforeAll(async () => {
      model = await Model.load(dir);
    });
    afterAll(() => model?.dispose());

    test('single sequence: every hidden state and the logits', async () => {
      const out = model.forward({ ids: [exp.single.input_ids] }, { hiddenStates: true });
      try {
        const hs = await Promise.all(out.hiddenStates!.map(async (t) => ((await t.array()) as number[][][])[0]));
        expect(hs.length).toBe(exp.num_hidden_layers + 1);
        hs.forEach((h, L) => expect(maxAbsDiff(h, exp.single.hidden_states[L], `hs${L}`)).toBeLessThan(TOL));
        expect(maxAbsDiff(((await out.logits!.array()) as number[][][])[0], exp.single.logits)).toBeLessThan(TOL);
      } finally {
        tf.dispose([out.logits!, ...out.hiddenStates!]);
      }
    });

    const vector = () => Float32Array.from(exp.steering.vector as number[]);
    const steering = (positions: 'all' | 'response' = 'all'): Intervention[] => [steer(vector(), exp.steering.layer, exp.steering.coef, positions, exp.num_hidden_layers)];
    const ablation = (): Intervention[] => [ablate(vector(), exp.ablation.layer, exp.num_hidden_layers)];
    const run = async (ids: number[][], ivs: Intervention[], attentionMask?: number[][]) => {
      const out = model.forward({ ids, attentionMask }, { hiddenStates: true, hooks: interventionHooks(ivs, model.config) });
      try {
        return {
          logits: (await out.logits!.array()) as number[][][],
          hs: (await Promise.all(out.hiddenStates!.map((t) => t.array()))) as number[][][][],
        };
      } finally {
        tf.dispose([out.logits!, ...out.hiddenStates!]);
      }
    };
    /** Logits of the left-padded batch at real positions only (as expected.json stores them). */
    const realLogits = (logits: number[][][]) => logits.map((row, b) => row.slice(row.length - exp.batch.lengths[b]));

    test('left-padded batch with attention mask', async () => {
      const { logits } = await run(exp.batch.input_ids, [], exp.batch.attention_mask);
      expect(maxAbsDiff(realLogits(logits), exp.batch.logits)).toBeLessThan(TOL);
    });

    test('steering (positions all): hidden states and logits, single and batch', async () => {
      const single = await run([exp.single.input_ids], steering());
      single.hs.forEach((h, L) => expect(maxAbsDiff(h[0], exp.steering.single.hidden_states[L], `hs${L}`)).toBeLessThan(TOL));
      expect(maxAbsDiff(single.logits[0], exp.steering.single.logits)).toBeLessThan(TOL);
      const batch = await run(exp.batch.input_ids, steering(), exp.batch.attention_mask);
      expect(maxAbsDiff(realLogits(batch.logits), exp.steering.batch.logits)).toBeLessThan(TOL);
    });

    test('directional ablation: logits, single and batch', async () => {
      expect(maxAbsDiff((await run([exp.single.input_ids], ablation())).logits[0], exp.ablation.single.logits)).toBeLessThan(TOL);
      const batch = await run(exp.batch.input_ids, ablation(), exp.batch.attention_mask);
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
        await run(exp.batch.input_ids, steering(), exp.batch.attention_mask);
        await generate(model, { ids: exp.batch.input_ids, attentionMask: exp.batch.attention_mask }, { greedy: true, maxNewTokens: 3, interventions: ablation() });
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}

/**
 * One SFT step's loss, the gradient norm of every listed parameter and the full gradient of model.norm.weight
 * (expected.json `sft`), plain, steered and ablated, single sequence and right-padded batch; no leak across steps.
 */
export function sftStepTests(): void {
  describe.each(parityFixtures())('$name', ({ dir }) => {
    const exp = readExpected(dir);
    let model: Model;
    beforeAll(async () => {
      model = await Model.load(dir);
    });
    afterAll(() => model?.dispose());

    const vector = () => Float32Array.from(exp.steering.vector as number[]);
    const variants: Record<string, () => Intervention[]> = {
      no_steering: () => [],
      steering: () => [steer(vector(), exp.steering.layer, exp.steering.coef, 'all', exp.num_hidden_layers)],
      ablation: () => [ablate(vector(), exp.ablation.layer, exp.num_hidden_layers)],
    };
    const cases: [string, string][] = [];
    for (const shape of ['single', 'batch']) for (const v of Object.keys(variants)) if (exp.sft[shape][v]) cases.push([shape, v]);

    test.each(cases)('%s / %s: loss, listed grad norms, grad of model.norm.weight', async (shape, variant) => {
      const s = exp.sft[shape];
      const batch = shape === 'single' ? { ids: [s.input_ids], labels: [s.labels] } : { ids: s.input_ids, labels: s.labels, attentionMask: s.attention_mask };
      const want = s[variant];
      const r = await trainStep(model, batch, { interventions: variants[variant](), gradsOf: ['model.norm.weight'] });
      expect(r.nLossTokens).toBe(s.n_loss_tokens);
      expect(rel(r.loss, want.loss)).toBeLessThan(LOSS_REL);
      for (const name of exp.sft.grad_parameter_names as string[]) {
        if (!(name in want.grad_l2_norm)) continue;
        expect([name, rel(r.gradNorms[name], want.grad_l2_norm[name]) < GRAD_REL]).toEqual([name, true]);
      }
      const g = r.grads['model.norm.weight'];
      const full = want['grad_model.norm.weight'] as number[];
      let num = 0;
      let den = 0;
      full.forEach((x, i) => ((num += (g[i] - x) ** 2), (den += x * x)));
      expect(Math.sqrt(num / den)).toBeLessThan(GRAD_REL);
      // Every parameter gets a norm (the CLI's contract), and untied models' lm_head is among them.
      expect(Object.keys(r.gradNorms).length).toBe(model.params.size);
    });

    test('no tensors leak across repeated steps', async () => {
      const s = exp.sft.batch;
      const batch = { ids: s.input_ids, labels: s.labels, attentionMask: s.attention_mask };
      await trainStep(model, batch, { interventions: variants.steering() });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) await trainStep(model, batch, { interventions: variants.steering(), gradsOf: ['model.norm.weight'] });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
