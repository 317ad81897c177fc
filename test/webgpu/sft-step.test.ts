/**
 * test/train/step.test.ts on the webgpu backend, at the same tolerances: one SFT step's loss, the gradient norm of
 * every listed parameter and the full gradient of model.norm.weight against Hugging Face (expected.json `sft`),
 * plain, steered and ablated, single sequence and right-padded batch; and no tensors leak across repeated steps.
 */
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { Intervention, ablate, steer } from '../../lib/model/interventions';
import { trainStep } from '../../lib/train/step';
import { parityFixtures, readExpected } from '../support/hf-parity';
import { setUpWebGpuSuite } from './support';

const LOSS_REL = 1e-5;
const GRAD_REL = 1e-4;
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

setUpWebGpuSuite();

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
