/** `persona train-step | train | merge | bench train` in-process, with --backend cpu. */
import * as fs from 'fs';
import * as path from 'path';
import { writeSafetensors } from '../../lib/io/safetensors';
import { FIXTURE_ROOT, readExpected } from '../support/hf-parity';
import { chatExamples, makeTinyModel, tmpDir, writeJsonl } from './support/tiny';
import { runCli } from '../support/cli';

const run = (args: string[]) => runCli(args, 'cpu');
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

let tmp: string;
beforeAll(() => (tmp = tmpDir('train-cli')));

test('train-step: right-padded batch with steering from a [hidden] file matches HF', async () => {
  const dir = path.join(FIXTURE_ROOT, 'qwen2-tiny-untied');
  const exp = readExpected(dir);
  const vec = path.join(tmp, 'v.safetensors');
  writeSafetensors(vec, { v: { shape: [exp.hidden_size], data: Float32Array.from(exp.steering.vector) } });
  const out = path.join(tmp, 'step.json');
  const b = exp.sft.batch;
  const r = await run(['train-step', '--model', dir, '--tokens', JSON.stringify(b.input_ids), '--labels', JSON.stringify(b.labels), '--attention-mask', JSON.stringify(b.attention_mask),
    '--steer', vec, '--layer', String(exp.steering.layer), '--coef', String(exp.steering.coef), '--json', out]);
  expect(r.stderr).not.toMatch(/persona:/);
  expect(r.code).toBe(0);
  const got = readJson(out);
  expect(rel(got.loss, b.steering.loss)).toBeLessThan(1e-5);
  for (const [n, v] of Object.entries(b.steering.grad_l2_norm as Record<string, number>)) expect(rel(got.grad_norms[n], v)).toBeLessThan(1e-4);
  expect(Object.keys(got.grad_norms).length).toBeGreaterThan(Object.keys(b.steering.grad_l2_norm).length);
});

test('train-step: --steer without --coef is one clear error', async () => {
  const dir = path.join(FIXTURE_ROOT, 'llama-tiny');
  const r = await run(['train-step', '--model', dir, '--tokens', '[1,5,6]', '--labels', '[-100,5,6]', '--steer', 'x.safetensors', '--layer', '1', '--json', path.join(tmp, 'x.json')]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/--steer x.safetensors needs a coefficient: --steer FILE:LAYER:COEF or --coef C/);
});

test('train (YAML, ignored fields reported), merge, bench train', async () => {
  const model = makeTinyModel(path.join(tmp, 'model'));
  writeJsonl(path.join(tmp, 'data.jsonl'), chatExamples());
  const cfg = path.join(tmp, 'train.yaml');
  fs.writeFileSync(cfg, 'model: model\ntraining_file: data.jsonl\noutput_dir: run\nlearning_rate: 1.0e-3\nr: 4\nlora_alpha: 8\nmax_steps: 2\nper_device_train_batch_size: 2\ngradient_accumulation_steps: 1\noptim: adamw_8bit\nload_in_4bit: false\n');
  const t = await run(['train', cfg, '--no-progress']);
  expect(t.code).toBe(0);
  expect(t.stderr).toMatch(/ignored \(Python-stack only\): load_in_4bit, optim/);
  expect(JSON.parse(t.stdout).steps).toBe(2);
  expect(fs.existsSync(path.join(tmp, 'run', 'adapter_config.json'))).toBe(true);

  const m = await run(['merge', '--model', model, '--adapter', path.join(tmp, 'run'), '--out', path.join(tmp, 'merged')]);
  expect(m.code).toBe(0);
  expect(fs.existsSync(path.join(tmp, 'merged', 'model.safetensors'))).toBe(true);

  const bj = path.join(tmp, 'bench.json');
  const bt = await run(['bench', 'train', '--model', model, '--seq-len', '16', '--steps', '1', '--json', bj]);
  expect(bt.code).toBe(0);
  expect(readJson(bj)).toEqual(expect.objectContaining({ mode: 'lora', tokens_per_s: expect.any(Number), ms_per_step: expect.any(Number), peak_rss_mb: expect.any(Number) }));

  const bad = path.join(tmp, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ model: 'model', training_file: 'data.jsonl', output_dir: 'run2', learning_rate: 'high' }));
  const e = await run(['train', bad]);
  expect(e.code).toBe(1);
  expect(e.stderr).toMatch(/bad\.json, field 'learning_rate'/);
});
