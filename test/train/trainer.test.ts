/**
 * The training loop on a tiny random Llama: response-only labels, loss falls, training-time steering and
 * ablation, bad input errors, config parsing, and (in resume.test.ts) kill -9 + resume.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../../lib/errors';
import { writeSafetensors } from '../../lib/io/safetensors';
import { Model } from '../../lib/model/checkpoint';
import { ablate, interventionHooks, steer } from '../../lib/model/interventions';
import { Tokenizer } from '../../lib/tokenizer';
import { parseTrainConfig, readTrainConfig } from '../../lib/train/config';
import { lengthGroupedOrder, loadChatDataset, shuffledOrder, tokenizeConversation } from '../../lib/train/data';
import { trainingInterventions } from '../../lib/train/interventions';
import { LoraAdapters } from '../../lib/train/lora';
import { loadAdapter } from '../../lib/train/peft';
import { objectiveAndGrads } from '../../lib/train/step';
import { LOG_FILE, evaluateLoss, runTraining } from '../../lib/train/trainer';
import { chatExamples, makeTinyModel, tmpDir, writeJsonl } from './support/tiny';

let root: string;
let modelDir: string;
let data: string;
let vecFile: string;
beforeAll(() => {
  root = tmpDir('trainer');
  modelDir = makeTinyModel(path.join(root, 'model'));
  data = writeJsonl(path.join(root, 'data.jsonl'), chatExamples());
  const cfg = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
  const N = cfg.num_hidden_layers;
  const H = cfg.hidden_size;
  const v = new Float32Array((N + 1) * H).map((_, i) => Math.sin(i + 1));
  vecFile = path.join(root, 'vec.safetensors');
  writeSafetensors(vecFile, { persona_vector: { shape: [N + 1, H], data: v } });
});

const base = (over: Record<string, unknown> = {}) =>
  parseTrainConfig(
    {
      model: modelDir,
      training_file: data,
      output_dir: path.join(root, `out-${Math.random().toString(36).slice(2)}`),
      learning_rate: 1e-2,
      r: 4,
      lora_alpha: 8,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 1,
      warmup_steps: 0,
      max_seq_length: 64,
      ...over,
    },
    path.join(root, 'cfg.json'),
  ).config;

describe('data', () => {
  test('train_on_responses_only labels exactly the assistant turn (content + end-of-turn)', () => {
    const tok = Tokenizer.load(modelDir);
    const msgs = chatExamples()[0].messages;
    const { ids, labels } = tokenizeConversation(tok, msgs, true, 'x', 1);
    const full = tok.encode(tok.applyChatTemplate(msgs, { addGenerationPrompt: false }));
    expect(ids).toEqual(full);
    const learned = ids.filter((_, i) => labels[i] !== -100);
    expect(tok.decode(learned)).toBe('the sky is blue<|im_end|>\n');
    const all = tokenizeConversation(tok, msgs, false, 'x', 1);
    expect(all.labels).toEqual(all.ids);
  });

  test('an assistant turn marked "loss": false carries no loss, even when training on all tokens', () => {
    const tok = Tokenizer.load(modelDir);
    const [first, second] = chatExamples();
    const turn1 = first.messages.map((m) => (m.role === 'assistant' ? { ...m, loss: false } : m));
    const msgs = [...turn1, ...second.messages.filter((m) => m.role !== 'system')];
    const answer2 = second.messages.find((m) => m.role === 'assistant')!.content;
    for (const responsesOnly of [true, false]) {
      const { ids, labels } = tokenizeConversation(tok, msgs, responsesOnly, 'x', 1);
      const learned = tok.decode(ids.filter((_, i) => labels[i] !== -100));
      expect(learned).toContain(answer2);
      expect(learned).not.toContain(first.messages.find((m) => m.role === 'assistant')!.content);
    }
  });

  test('group_by_length: a seeded permutation, sorted within mega-batches, with less padding than shuffling', () => {
    const lengths = Array.from({ length: 1000 }, (_, i) => 20 + ((i * 7919) % 113));
    const order = lengthGroupedOrder(lengths, 4, 0, 0);
    expect([...order].sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    expect(lengthGroupedOrder(lengths, 4, 0, 0)).toEqual(order);
    expect(lengthGroupedOrder(lengths, 4, 0, 1)).not.toEqual(order);
    for (let i = 1; i < 200; i++) expect(lengths[order[i]]).toBeLessThanOrEqual(lengths[order[i - 1]]);
    const padding = (o: number[]) => {
      let p = 0;
      for (let k = 0; k < o.length; k += 4) {
        const b = o.slice(k, k + 4).map((i) => lengths[i]);
        p += b.reduce((s, l) => s + Math.max(...b) - l, 0);
      }
      return p;
    };
    expect(padding(order)).toBeLessThan(padding(shuffledOrder(1000, 0, 0)) / 5);
  });

  test('max_seq_length truncation is counted', () => {
    const tok = Tokenizer.load(modelDir);
    const { examples, stats } = loadChatDataset([data], tok, { maxSeqLength: 12, trainOnResponsesOnly: true });
    expect(stats.truncated).toBe(examples.length);
    expect(examples.every((e) => e.ids.length === 12)).toBe(true);
  });
});

describe('bad input: one clear error each', () => {
  /** `fn` throws, or returns a promise that rejects, with a PersonaError matching `re`. */
  const expectError = async (fn: () => unknown, re: RegExp) => {
    let err: unknown;
    try {
      await fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PersonaError);
    expect((err as Error).message).toMatch(re);
  };
  test('malformed JSONL line: names file and line, no checkpoint written', async () => {
    const bad = path.join(root, 'bad.jsonl');
    fs.writeFileSync(bad, JSON.stringify(chatExamples()[0]) + '\n{"messages": [\n');
    const c = base({ training_file: bad });
    await expectError(() => runTraining(c), new RegExp(`bad\\.jsonl:2`));
    expect(fs.existsSync(c.output_dir)).toBe(false);
  });
  test('empty dataset', async () => {
    const f = path.join(root, 'empty.jsonl');
    fs.writeFileSync(f, '\n');
    await expectError(() => runTraining(base({ training_file: f })), /no examples/);
  });
  test('no assistant turn', async () => {
    const f = writeJsonl(path.join(root, 'noasst.jsonl'), [{ messages: [{ role: 'user', content: 'hi' }] }]);
    await expectError(() => runTraining(base({ training_file: f })), /noasst\.jsonl:1.*no assistant turn/);
  });
  test('unknown role', async () => {
    const f = writeJsonl(path.join(root, 'role.jsonl'), [{ messages: [{ role: 'wizard', content: 'hi' }, { role: 'assistant', content: 'x' }] }]);
    await expectError(() => runTraining(base({ training_file: f })), /role\.jsonl:1.*unknown role 'wizard'/);
  });
  test('steering vector of the wrong hidden size', async () => {
    const f = path.join(root, 'small.safetensors');
    writeSafetensors(f, { persona_vector: { shape: [3, 8], data: new Float32Array(24).fill(1) } });
    const c = base({ enable_steering_during_training: true, steering_config: { steering_vector_path: f, type: 'steer', steering_coef: 1, layers: [1] } });
    await expectError(() => runTraining(c), /hidden size 8.*32/);
  });
  test('layer out of range', async () => {
    const c = base({ enable_steering_during_training: true, steering_config: { steering_vector_path: vecFile, type: 'steer', steering_coef: 1, layers: [7] } });
    await expectError(() => runTraining(c), /layer 7 is out of range/);
  });
  test('learning rate that is not a number; unknown field; ignored Python-only fields', async () => {
    await expectError(() => base({ learning_rate: 'fast' }), /field 'learning_rate'.*"fast"/);
    await expectError(() => base({ learnin_rate: 1 }), /field 'learnin_rate'.*unknown field/);
    await expectError(() => base({ steering_config: { steering_vector_path: 'v', type: 'steer', layers: [1], colour: 1 } }), /steering_config\.colour/);
    const { ignored } = parseTrainConfig({ model: 'm', training_file: 'd', output_dir: 'o', learning_rate: 1e-5, load_in_4bit: false, optim: 'adamw_8bit', merge_before_push: true, push_to_private: true }, '/x/c.json');
    expect(ignored.sort()).toEqual(['load_in_4bit', 'merge_before_push', 'optim', 'push_to_private']);
  });
  test('YAML config, relative paths resolved against the config file', () => {
    const f = path.join(root, 'c.yaml');
    fs.writeFileSync(f, 'model: model\ntraining_file: [data.jsonl]\noutput_dir: out\nlearning_rate: 1e-5\nsteering_config:\n  steering_vector_path: vec.safetensors\n  type: ablate\n  layers: all\n');
    const { config } = readTrainConfig(f);
    expect(config.model).toBe(modelDir);
    expect(config.training_file).toEqual([data]);
    expect(config.learning_rate).toBe(1e-5);
    expect(config.steering_config!.layers).toBe('all');
  });
});

describe('training', () => {
  test('a small model\'s loss falls (LoRA, rsLoRA); log has every step; adapter saved; eval loss reported', async () => {
    const c = base({ max_steps: 12, learning_rate: 3e-2, lr_scheduler_type: 'constant', held_out_fraction: 0.2 });
    const live: number[] = [];
    const r = await runTraining(c, { onStep: () => live.push(tf.memory().numTensors) });
    expect(new Set(live.slice(1)).size).toBe(1); // no tensor leaks from step to step
    expect(r.steps).toBe(12);
    expect(r.heldOut).toBe(1);
    expect(Number.isFinite(r.evalLoss)).toBe(true);
    const log = fs.readFileSync(path.join(c.output_dir, LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(log[0]).toEqual(expect.objectContaining({ loss: expect.any(Number), lr: 3e-2, grad_norm: expect.any(Number), tokens_per_s: expect.any(Number) }));
    // Loss over the whole training set, base model vs base + the saved adapter.
    const model = await Model.load(modelDir);
    const tok = Tokenizer.load(modelDir);
    const { examples } = loadChatDataset([data], tok, { maxSeqLength: 64, trainOnResponsesOnly: true });
    const adapter = loadAdapter(c.output_dir, model);
    const before = await evaluateLoss(model.config, model.params, null, examples, 0, 4);
    const after = await evaluateLoss(model.config, model.params, adapter, examples, 0, 4);
    expect(after).toBeLessThan(before * 0.8);
    adapter.dispose();
    model.dispose();
  });

  test('full finetuning writes a loadable HF checkpoint and its loss falls', async () => {
    const c = base({ is_peft: false, max_steps: 6, learning_rate: 3e-3, lr_scheduler_type: 'constant' });
    const losses: number[] = [];
    await runTraining(c, { onStep: (s) => losses.push(s.loss) });
    expect(losses[5]).toBeLessThan(losses[0]);
    const m = await Model.load(c.output_dir);
    const orig = await Model.load(modelDir);
    expect(await m.params.get('model.norm.weight')!.data()).not.toEqual(await orig.params.get('model.norm.weight')!.data());
    m.dispose();
    orig.dispose();
  });

  test('preventative steering changes the gradient; the saved adapter carries no hook', async () => {
    const model = await Model.load(modelDir);
    const lora = LoraAdapters.init(model.config, { r: 4, alpha: 8, dropout: 0, useRslora: false, targetModules: ['q_proj', 'down_proj'] }, 0);
    tf.tidy(() => lora.B.forEach((b) => b.assign(tf.randomNormal(b.shape, 0, 0.1, 'float32', 1))));
    const tok = Tokenizer.load(modelDir);
    const ex = tokenizeConversation(tok, chatExamples()[0].messages, true, 'x', 1);
    const batch = { ids: [ex.ids], labels: [ex.labels] };
    const steerHooks = interventionHooks(trainingInterventions({ vectorPath: vecFile, type: 'steer', coef: 4, layers: [1] }, model.config), model.config);
    const g = async (hooks?: ReturnType<typeof interventionHooks>) => {
      const r = await objectiveAndGrads(model.config, model.params, lora.adapters(), batch, { hooks });
      const v = (await r.grads.get('model.layers.1.mlp.down_proj.A')!.data()).slice();
      tf.dispose([...r.grads.values()]);
      return v;
    };
    const plain = await g();
    const steered = await g(steerHooks);
    expect(plain.some((x, i) => Math.abs(x - steered[i]) > 1e-6)).toBe(true);
    lora.dispose();

    // A steered training run: its saved adapter reproduces the trained adapter's hook-free logits exactly.
    const c = base({ max_steps: 2, enable_steering_during_training: true, steering_config: { steering_vector_path: vecFile, type: 'steer', steering_coef: 4, layers: 'all' } });
    await runTraining(c);
    const adapterCfg = JSON.parse(fs.readFileSync(path.join(c.output_dir, 'adapter_config.json'), 'utf8'));
    expect(JSON.stringify(adapterCfg)).not.toMatch(/steer/);
    const saved = loadAdapter(c.output_dir, model);
    const run = (hooks?: ReturnType<typeof interventionHooks>) => {
      const o = model.forward({ ids: batch.ids }, { adapters: saved.adapters(), hooks });
      const a = o.logits!.dataSync().slice();
      o.logits!.dispose();
      return a;
    };
    const noHook = run();
    const hooked = run(interventionHooks(trainingInterventions({ vectorPath: vecFile, type: 'steer', coef: 4, layers: 'all' }, model.config), model.config));
    expect(noHook.some((x, i) => Math.abs(x - hooked[i]) > 1e-3)).toBe(true);
    saved.dispose();
    model.dispose();
  });

  test('ablation leaves zero projection on the direction at that layer', async () => {
    const model = await Model.load(modelDir);
    const L = 1;
    const ivs = trainingInterventions({ vectorPath: vecFile, type: 'ablate', coef: 0, layers: [L] }, model.config);
    const o = model.forward({ ids: [[1, 5, 6, 7, 8]] }, { hooks: interventionHooks(ivs, model.config), hiddenStates: true, logits: 'none' });
    const u = ivs[0].vector;
    const n = Math.hypot(...u);
    const h = o.hiddenStates![L].arraySync()[0];
    const hBefore = o.hiddenStates![L - 1].arraySync()[0];
    for (const row of h) expect(Math.abs(row.reduce((s, x, i) => s + (x * u[i]) / n, 0))).toBeLessThan(1e-5);
    expect(Math.abs(hBefore[1].reduce((s, x, i) => s + (x * u[i]) / n, 0))).toBeGreaterThan(1e-3);
    tf.dispose(o.hiddenStates!);
    model.dispose();
    // 'all' = one intervention per layer 1..N, each with that layer's row of the [N+1, H] file.
    const all = trainingInterventions({ vectorPath: vecFile, type: 'steer', coef: 2, layers: 'all' }, model.config);
    expect(all.map((iv) => iv.site)).toEqual(['blocks.0.resid_post', 'blocks.1.resid_post']);
    const H = model.config.hiddenSize;
    expect(Array.from(all[1].vector)).toEqual(Array.from(new Float32Array(3 * H).map((_, i) => Math.sin(i + 1)).slice(2 * H)));
    expect(ivs[0]).toEqual(ablate(all[0].vector, L, 2));
    expect(all[0]).toEqual(steer(all[0].vector, 1, 2, 'all', 2));
  });

  test('projection regularization: penalty logged, zero at step 1 (adapter starts at the base model)', async () => {
    const c = base({ max_steps: 3, projection_regularization: { vector_path: vecFile, layer: 1, weight: 10 } });
    const pens: number[] = [];
    await runTraining(c, { onStep: (s) => pens.push(s.projection_penalty!) });
    expect(pens[0]).toBeCloseTo(0, 8);
    expect(pens[2]).toBeGreaterThan(0);
  });
});
