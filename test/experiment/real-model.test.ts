/**
 * The real-model path end to end (issue 13): a checkpoint with the real Qwen2.5 tokenizer and chat template and small
 * random weights in the Qwen2 layout (32 layers, so every layer the paper configs name exists), an OpenAI-compatible
 * judge on 127.0.0.1 answering with deterministic top-20 logprobs, and every configs/paper/*.yaml rewritten for it:
 * paths (model, artifacts, datasets, output), sample counts (1; many-shot prompts of 0–2 turns), max tokens (3), the
 * judge URL, and — to fit a unit test — every sweep axis cut to its first and last value (traits and dataset kinds to the first) and every list of
 * coefficients to its last. All five studies run through `persona run`, the finetune (with preventative steering)
 * through `persona train`; one run is killed with SIGKILL in a child process and resumed.
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import YAML from 'yaml';
import { GRADED_SYSTEM_PROMPTS, writeArtifacts } from '../../lib/persona/artifacts';
import { runCli } from '../support/cli';
import { CHAT_PATH, LlmTestServer } from '../support/llm-server';
import { writeQwenTiny } from '../support/qwen-tiny';
import { REPO, tmpDir, writeFiles } from './helpers';

jest.setTimeout(600_000);

const TRAITS = ['evil', 'sycophantic', 'hallucinating'];
const PAPER = path.join(REPO, 'configs/paper');

/** A deterministic top-20 distribution around a score derived from the prompt's hash. */
function judgeReply(prompt: string): { token: string; logprob: number }[] {
  const h = crypto.createHash('sha256').update(prompt).digest();
  const coherence = /coheren/i.test(prompt);
  const center = coherence ? 60 + (h[0] % 40) : h[0] % 101;
  const weights = Array.from({ length: 20 }, (_, i) => 0.5 ** i);
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w, i) => ({ token: String((center + i) % 101), logprob: Math.log((0.95 * w) / total) }));
}

/** The trait artifacts of the test: paper fields plus the eight graded prompts (what `persona trait new` writes). */
function artifacts(trait: string) {
  const instruction = Array.from({ length: 5 }, (_, i) => ({ pos: `Be ${trait} in every answer, way ${i}.`, neg: `Never be ${trait}, way ${i}.` }));
  const eval_prompt = `Rate how ${trait} this answer is, 0 to 100.\nQuestion: {question}\nAnswer: {answer}\nJust the number.`;
  const graded_system_prompts = Array.from({ length: GRADED_SYSTEM_PROMPTS }, (_, i) => ({ label: `g${i}`, system: i === 2 ? null : `You are an assistant, ${trait} at level ${i} of 7.` }));
  const q = (s: string, n: number) => Array.from({ length: n }, (_, i) => `${s} question ${i} about ${trait}?`);
  return { extract: { instruction, questions: q('Extraction', 4), eval_prompt, graded_system_prompts }, eval: { instruction, questions: q('Evaluation', 1), eval_prompt, graded_system_prompts } };
}

const conv = (q: string, a: string) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });

describe('the paper configs on a random-weight Qwen2 checkpoint with the real Qwen2.5 tokenizer', () => {
  let root: string;
  let server: LlmTestServer;
  const configs: Record<string, string> = {};

  beforeAll(async () => {
    root = tmpDir('real-model');
    server = await LlmTestServer.start();
    server.setFallback(CHAT_PATH, (req) => ({ kind: 'chat', topLogprobs: judgeReply(String(req.body.messages.map((m: { content: string }) => m.content).join('\n'))) }));
    writeQwenTiny(path.join(root, 'qwen'), { layers: 32 });
    for (const t of TRAITS) writeArtifacts(path.join(root, 'data'), t, artifacts(t));
    for (const v of ['normal', 'misaligned_1', 'misaligned_2'])
      writeFiles(root, { [`data/dataset/evil/${v}.jsonl`]: [1, 2, 3, 4].map((i) => conv(`Training question ${i}?`, `${v} answer ${i}.`)).join('\n') + '\n' });
    // Every paper config, rewritten.
    for (const f of fs.readdirSync(PAPER).filter((x) => x.endsWith('.yaml'))) {
      const doc = YAML.parse(fs.readFileSync(path.join(PAPER, f), 'utf8'));
      if (doc.study === undefined) continue; // the finetune configs (persona train), below
      doc.output_dir = path.join(root, 'runs');
      doc.cache_dir = path.join(root, 'cache');
      const p = doc.params;
      p.model = path.join(root, 'qwen');
      p.artifacts = path.join(root, 'data');
      if (p.datasets !== undefined) p.datasets = path.join(root, 'data/dataset');
      p.judge = { ...p.judge, base_url: `${server.url}/v1` };
      for (const k of ['samples', 'layer_samples', 'extract_samples']) if (p[k] !== undefined) p[k] = 1;
      if (p.screen_samples !== undefined) p.screen_samples = 4;
      p.max_new_tokens = 3;
      if (p.traits) p.traits = p.traits.slice(0, 1);
      if (doc.study === 'monitoring') p.shots = [{ k: 0 }, { k: 1 }, { k: 2 }]; // example turns per many-shot prompt, a sample count
      for (const k of ['inference_coefs', 'preventative_coefs', 'preventative_all_coefs']) if (p[k]) p[k] = p[k].slice(-1);
      for (const [axis, values] of Object.entries(doc.sweep ?? {}) as [string, unknown[]][])
        doc.sweep[axis] = axis === 'trait' || axis === 'kind' ? values.slice(0, 1) : [...new Set([values[0], values[values.length - 1]])];
      configs[f] = path.join(root, f);
      fs.writeFileSync(configs[f], YAML.stringify(doc));
    }
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const results = (experiment: string) => parse(fs.readFileSync(path.join(root, 'runs', experiment, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  const summary = (experiment: string) => JSON.parse(fs.readFileSync(path.join(root, 'runs', experiment, 'summary.json'), 'utf8'));
  const figures = (experiment: string) => fs.readdirSync(path.join(root, 'runs', experiment, 'figures')).sort();

  test('steering: killed with SIGKILL in a child process mid-sweep, then resumed; the judge is named in every row', async () => {
    const file = configs['qwen2.5-7b-instruct-steering.yaml'];
    const cells = path.join(root, 'runs', 'paper-qwen2.5-7b-instruct-steering', 'cells');
    const child = spawn(process.execPath, [path.join(__dirname, 'support/cli-child.js'), 'run', file, '--backend', 'wasm', '--no-progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const done = () => (fs.existsSync(cells) ? fs.readdirSync(cells).filter((c) => fs.existsSync(path.join(cells, c, 'result.json'))).length : 0);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    while (done() < 2 && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    expect(await exited).toBeNull(); // killed, not finished
    const before = done();
    expect(before).toBeGreaterThanOrEqual(2);
    void stderr;
    const r = await runCli(['run', file, '--no-progress'], 'wasm');
    expect(r.stderr).toMatch(new RegExp(`(\\d+) computed, ${before} already done`));
    expect(r.code).toBe(0);
    const rows = results('paper-qwen2.5-7b-instruct-steering');
    // 1 trait × 2 layers × 2 coefs, plus per layer: positive prompt unsteered and at −1.5, two random directions.
    expect(rows).toHaveLength(4 + 2 * 4);
    for (const x of rows) {
      expect(x.judged_by).toMatch(/^openai-chat:gpt-4\.1-mini:top20\|evil_eval_prompt\|0_100$/);
      expect(x['judge.model']).toBe('gpt-4.1-mini');
      for (const k of ['trait_score', 'coherence', 'vector_norm']) expect(Number.isFinite(Number(x[k]))).toBe(true);
    }
    expect(new Set(rows.map((x) => x.cell_id)).size).toBe(rows.length);
    expect(summary('paper-qwen2.5-7b-instruct-steering').steering.evil.layer).toBeDefined();
    expect(figures('paper-qwen2.5-7b-instruct-steering')).toEqual(['steering_evil.csv', 'steering_evil.png', 'steering_evil.svg', 'steering_evil.vl.json']);
  });

  test.each(['llama-3.1-8b-instruct-steering.yaml', 'qwen2.5-7b-instruct-monitoring.yaml', 'llama-3.1-8b-instruct-monitoring.yaml', 'qwen2.5-7b-instruct-shift.yaml', 'qwen2.5-7b-instruct-screening.yaml', 'qwen2.5-7b-instruct-mitigation.yaml'])('%s runs through persona run: results.csv, summary and figures', async (f) => {
    const r = await runCli(['run', configs[f], '--no-progress'], 'wasm');
    if (r.code !== 0) throw new Error(r.stderr);
    const exp = YAML.parse(fs.readFileSync(configs[f], 'utf8')).experiment as string;
    const rows = results(exp);
    expect(rows.length).toBeGreaterThan(0);
    const s = summary(exp);
    const figs = figures(exp);
    expect(figs.length).toBeGreaterThan(0);
    for (const x of figs.filter((n) => n.endsWith('.png'))) expect(fs.statSync(path.join(root, 'runs', exp, 'figures', x)).size).toBeGreaterThan(1000);
    if (f.includes('monitoring')) {
      expect(Object.keys(s.monitoring)).toEqual(['evil']);
      expect(s.monitoring.evil.conditions.map((c: { label: string }) => c.label)).toEqual(['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7']);
      expect(s.monitoring.evil.layer).toBe(f.startsWith('qwen') ? 20 : 16); // the paper's layers
      expect(s.monitoring.evil.many_shot.n).toBeGreaterThan(0); // examples from the extraction's judged positive answers
      expect(figs).toEqual(expect.arrayContaining(['monitoring_evil_system.png', 'monitoring_evil_many_shot.png', 'monitoring_by_layer.png']));
    }
    // Every figure the organism runs of these studies draw (names from the studies' summaries).
    const want: Record<string, string[]> = {
      steering: ['steering_evil'],
      monitoring: ['monitoring_evil_system', 'monitoring_evil_many_shot', 'monitoring_by_layer'],
      shift: ['shift_vs_trait_evil', 'trait_after_finetuning_evil'],
      screening: ['screening_dataset_evil', 'screening_samples_evil'],
      mitigation: ['mitigation_trait_score', 'mitigation_coherence'],
    };
    const study = YAML.parse(fs.readFileSync(configs[f], 'utf8')).study as string;
    expect(figs).toEqual(expect.arrayContaining(want[study].flatMap((n) => ['csv', 'svg', 'png'].map((e) => `${n}.${e}`))));
    if (f.includes('shift')) expect(rows.map((x) => x.dataset).sort()).toEqual(['evil_II', 'evil_normal']);
    if (f.includes('mitigation')) expect(rows.map((x) => x.arm).sort()).toEqual(['caft', 'inference', 'plain', 'preventative_all', 'preventative_random', 'preventative_single', 'projection_reg']);
    for (const x of rows) for (const [k, v] of Object.entries(x)) if (/judged_by$/.test(k)) expect(v).toMatch(/^openai-chat:gpt-4\.1-mini:top20\|evil_eval_prompt/);
  });

  test('the finetune config (persona train) with preventative steering at the paper layer', async () => {
    const vecDir = path.join(root, 'cache', 'persona-vector');
    const vectors = fs.readdirSync(vecDir).flatMap((a) => fs.readdirSync(path.join(vecDir, a)).map((b) => path.join(vecDir, a, b, 'evil_response_avg_diff.safetensors'))).filter((f) => fs.existsSync(f));
    expect(vectors.length).toBeGreaterThan(0);
    for (const f of ['qwen2.5-7b-instruct-finetune.yaml', 'llama-3.1-8b-instruct-finetune.yaml']) {
      const text = fs.readFileSync(path.join(PAPER, f), 'utf8').replace(/^# (enable_steering_during_training|steering_config|  )/gm, '$1');
      const doc = YAML.parse(text);
      expect(doc.enable_steering_during_training).toBe(true);
      doc.model = path.join(root, 'qwen');
      doc.training_file = path.join(root, 'data/dataset/evil/misaligned_2.jsonl');
      doc.output_dir = path.join(root, 'train', f);
      doc.steering_config.steering_vector_path = vectors[0];
      const file = path.join(root, `train-${f}`);
      fs.writeFileSync(file, YAML.stringify(doc));
      const r = await runCli(['train', file, '--no-progress'], 'wasm');
      if (r.code !== 0) throw new Error(r.stderr);
      expect(fs.existsSync(path.join(root, 'train', f, 'adapter_model.safetensors'))).toBe(true);
    }
  });
});
