/**
 * Wide tf.addN on webgpu. tfjs-backend-webgpu's AddN binds every input (plus the output) as a storage buffer in one
 * shader; WebGPU's default limit is 8 per shader stage, so addN over ≥ 8 tensors is an invalid pipeline on such a
 * GPU, which WebGPU reports only as an uncaptured error while the op's result is silently zeros.
 *
 * What this file establishes:
 *   1. lib/, cli/ and experiments/ contain no call of tf.addN (comments aside);
 *   2. no library path run here (forward with hooks, generate with steering and ablation, activation capture, a
 *      full-parameter SFT step, a LoRA objective with dropout, global-norm clipping and AdamW over all adapter
 *      gradients) dispatches the AddN kernel at all;
 *   3. a wide addN does not pass this suite unnoticed: either it is right, or the GPU reports the error that every
 *      webgpu test checks for after it runs (test/webgpu/support.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { captureActivations } from '../../lib/model/capture';
import { ablate, interventionHooks, steer } from '../../lib/model/interventions';
import { trainStep, objectiveAndGrads } from '../../lib/train/step';
import { LORA_TARGETS, LoraAdapters } from '../../lib/train/lora';
import { AdamW, clipGradNorm } from '../../lib/train/optimizer';
import { FIXTURE_ROOT } from '../support/hf-parity';
import { setUpWebGpuSuite, takeGpuErrors } from './support';

const ROOT = path.resolve(__dirname, '../..');

setUpWebGpuSuite();

function sourceFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

test('the library source calls no tf.addN (lib/, cli/, experiments/)', () => {
  const uses: string[] = [];
  for (const file of ['lib', 'cli', 'experiments'].flatMap((d) => sourceFiles(path.join(ROOT, d)))) {
    // Comments removed (block, then line comments not inside a string on that line: good enough for this check).
    const code = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '));
    code.split('\n').forEach((line, i) => {
      const bare = line.replace(/(^|[^:'"`])\/\/.*$/, '$1');
      if (/\baddN\b|['"`]AddN['"`]/.test(bare)) uses.push(`${path.relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  expect(uses).toEqual([]);
});

describe('the AddN kernel is never dispatched by the library', () => {
  let calls: number[] = [];
  let original: tf.KernelConfig;
  let model: Model;
  beforeAll(async () => {
    original = tf.getKernel('AddN', 'webgpu')!;
    expect(original).toBeDefined();
    tf.unregisterKernel('AddN', 'webgpu');
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => {
        calls.push((args.inputs as unknown as tf.TensorInfo[]).length);
        return original.kernelFunc(args);
      },
    });
    model = await Model.load(path.join(FIXTURE_ROOT, 'llama-tiny'));
  });
  afterAll(() => {
    model?.dispose();
    tf.unregisterKernel('AddN', 'webgpu');
    tf.registerKernel(original);
  });
  beforeEach(() => (calls = []));

  test('the counting kernel sees a direct tf.addN (the check works)', async () => {
    const xs = [1, 2, 3].map((i) => tf.fill([4], i));
    const s = tf.addN(xs);
    expect(Array.from(await s.data())).toEqual([6, 6, 6, 6]);
    tf.dispose([...xs, s]);
    expect(calls).toEqual([3]);
  });

  const ids = [[1, 40, 41, 42, 43, 44], [1, 7, 8, 9, 10, 11]];
  const labels = [[-100, -100, 41, 42, 43, 44], [-100, -100, -100, 9, 10, 11]];
  const v = () => new Float32Array(64).map((_, i) => Math.sin(i));

  test('forward with hooks, generate (steered, ablated), captureActivations', async () => {
    const out = model.forward({ ids }, { hiddenStates: true, hooks: interventionHooks([steer(v(), 2, 4, 'all')], model.config) });
    await out.logits!.data();
    tf.dispose([out.logits!, ...out.hiddenStates!]);
    for (const interventions of [[steer(v(), 2, 4, 'response')], [ablate(v(), 1)]])
      await generate(model, { prompts: [ids[0], ids[1].slice(0, 4)] }, { greedy: true, maxNewTokens: 3, eosTokenIds: [], interventions });
    await captureActivations(model, ids.map((s) => ({ ids: s, promptLength: 3 })), { reductions: ['prompt_mean', 'response_mean', 'prompt_last'] });
    expect(calls).toEqual([]);
  });

  test('a full-parameter SFT step (gradients of every parameter), steered', async () => {
    const r = await trainStep(model, { ids, labels }, { interventions: [steer(v(), 2, 4, 'all')], gradsOf: ['model.norm.weight'] });
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(calls).toEqual([]);
  });

  test('a LoRA objective with dropout on every module, clipping and AdamW over all adapter gradients', async () => {
    const lora = LoraAdapters.init(model.config, { r: 4, alpha: 8, dropout: 0.1, useRslora: false, targetModules: [...LORA_TARGETS] }, 0);
    const opt = new AdamW(lora.variables(), { weightDecay: 0.01 });
    try {
      const r = await objectiveAndGrads(model.config, model.params, lora.adapters(), { ids, labels }, { dropoutSeed: 1 });
      try {
        expect(r.grads.size).toBeGreaterThan(12);
        expect(await clipGradNorm(r.grads, 0.5)).toBeGreaterThan(0);
        opt.apply(r.grads, 1e-3);
      } finally {
        tf.dispose([...r.grads.values()]);
      }
    } finally {
      opt.dispose();
      lora.dispose();
    }
    expect(calls).toEqual([]);
  });
});

test('tf.addN over 12 tensors is right, or the GPU reports the error every webgpu test checks for', async () => {
  const xs = Array.from({ length: 12 }, (_, i) => tf.fill([1000], i + 1));
  const s = tf.addN(xs);
  const values = Array.from(await s.data());
  tf.dispose([...xs, s]);
  const errors = await takeGpuErrors();
  if (errors.length === 0) expect(new Set(values)).toEqual(new Set([78]));
  else expect(errors.join('\n')).toMatch(/storage buffers \(13\).*exceeds the maximum per-stage limit/);
});
