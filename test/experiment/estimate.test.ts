/**
 * `persona plan`'s work estimate. The paper's Qwen configs (no model on this machine) must give the totals of the paper's
 * procedure, recomputed here from the configs' own fields: samples × questions × prompts × max tokens, two judge requests
 * per answer, one forward pass per decoding step of each batch; GPU hours from a bench JSON; judge cost from prices.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { DEFAULT_COHERENCE_PROMPT } from '../../lib/judge/judge';
import { PAPER_ARTIFACTS, PAPER_SHOT_COUNTS, Work, approxTokens, estimateExperiment, forwardPasses } from '../../lib/experiment/estimate';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { benchGenerate } from '../../lib/model/bench';
import { runCli } from '../support/cli';

const ROOT = path.resolve(__dirname, '../..');
const QWEN = (s: string) => path.join(ROOT, 'configs/paper', `qwen2.5-7b-instruct-${s}.yaml`);
const yaml = (f: string) => YAML.parse(fs.readFileSync(f, 'utf8'));
const ceil = Math.ceil;
const P = PAPER_ARTIFACTS; // 5 instruction pairs, 20 + 20 questions per trait (the paper's artifacts)

/** Per answer, two judge prompts with question and answer filled in (≈ 4 characters a token), one output token each. */
const judgeInPerAnswer = (answer: number) => approxTokens(P.evalPromptChars + P.questionChars) + approxTokens(DEFAULT_COHERENCE_PROMPT.length + P.questionChars) + 2 * answer;

/** Extraction of one trait: 2 sides × pairs × questions × extract_samples answers; capture over all of them. */
function extraction(p: Record<string, number>): Pick<Work, 'rollouts' | 'decodeSteps' | 'activationPasses'> {
  const side = P.pairs * P.extractQuestions * p.extract_samples;
  return { rollouts: 2 * side, decodeSteps: 2 * ceil(side / p.batch_size) * p.max_new_tokens, activationPasses: ceil((2 * side) / p.batch_size) };
}

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-estimate-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the paper's Qwen steering config: cells, answers, tokens, forward passes and judge work of the paper's procedure", () => {
  const cfg = yaml(QWEN('steering'));
  const p = cfg.params;
  const traits = cfg.sweep.trait.length;
  const layers = cfg.sweep.layer.length;
  // Grid + per (trait, layer): the positive-prompt baseline, each negative coefficient, the random directions.
  const cells = traits * layers * cfg.sweep.coef.length + traits * layers * (1 + p.negative_coefs.length + p.random_directions);
  const perCell = P.evalQuestions * p.samples;
  const ex = extraction(p);
  const rollouts = cells * perCell + traits * ex.rollouts;
  const e = estimateExperiment(QWEN('steering'), { judgePriceIn: 0.4, judgePriceOut: 1.6 });
  expect(e.cells).toHaveLength(cells);
  expect(e.total.rollouts).toBe(rollouts);
  expect(rollouts).toBe(48_000); // 210 cells × 20 questions × 10 samples + 3 traits × 2 × 5 × 20 × 10
  expect(e.total.generatedTokens).toBe(rollouts * p.max_new_tokens); // 48M tokens at most
  expect(e.total.decodeSteps).toBe(cells * ceil(perCell / p.batch_size) * p.max_new_tokens + traits * ex.decodeSteps);
  expect(e.total.activationPasses).toBe(traits * ex.activationPasses);
  expect(forwardPasses(e.total)).toBe(e.total.decodeSteps + e.total.activationPasses);
  expect(e.total.judgeRequests).toBe(2 * rollouts);
  expect(e.total.judgeOutputTokens).toBe(2 * rollouts);
  expect(e.total.judgeInputTokens).toBe(rollouts * judgeInPerAnswer(p.max_new_tokens));
  expect(e.judgeCost!.usd).toBeCloseTo((e.total.judgeInputTokens * 0.4 + e.total.judgeOutputTokens * 1.6) / 1e6, 6);
  // The persona vector is extracted once per trait, by the first cell that needs it.
  expect(e.cells.flatMap((c) => c.parts.filter((x) => x.shared)).map((x) => x.label)).toEqual(cfg.sweep.trait.map((t: string) => `persona vector ${t} (extraction)`));
  expect(e.textSources).toEqual(["the paper's artifacts (mean lengths)"]);
});

test("the paper's Qwen monitoring config: extraction, the graded prompts the layer is chosen on, the many-shot prompts", () => {
  const cfg = yaml(QWEN('monitoring'));
  const p = cfg.params;
  const traits = cfg.sweep.trait.length;
  const ex = extraction(p);
  // Per trait: 8 graded system prompts × 20 questions × layer_samples (the 'system' cell reuses them: samples equal),
  // and the many-shot cell's 8 conditions (k = 0, 1, 2, 4, 8, 12, 16, 20) × 20 questions × samples. One set per condition.
  expect(p.samples).toBe(p.layer_samples);
  const graded = 8 * P.evalQuestions * p.layer_samples;
  const manyShot = PAPER_SHOT_COUNTS.length * P.evalQuestions * p.samples;
  const e = estimateExperiment(QWEN('monitoring'), { answerTokens: 600 });
  expect(e.total.rollouts).toBe(traits * (ex.rollouts + graded + manyShot));
  expect(e.total.rollouts).toBe(15_600);
  expect(e.total.generatedTokens).toBe(e.total.rollouts * 600); // the expected length given, under max_new_tokens
  expect(e.total.decodeSteps).toBe(traits * (ex.decodeSteps + 2 * 8 * ceil((P.evalQuestions * p.samples) / p.batch_size) * p.max_new_tokens));
  // Capture: every extraction answer, then each monitored prompt once (8 graded + 8 many-shot per trait).
  expect(e.total.activationSequences).toBe(traits * (ex.rollouts + 16 * P.evalQuestions));
  expect(e.total.judgeRequests).toBe(2 * e.total.rollouts);
  // The system cell reuses the layer's rollouts: its own work is nothing new.
  const system = e.cells.find((c) => c.settings.prompts === 'system')!;
  expect(system.parts.filter((x) => !x.shared).reduce((s, x) => s + x.work.rollouts, 0)).toBe(0);
});

test('GPU hours from a bench JSON: one measured decoding step per generation forward pass, prompt and captured tokens at the prefill rate', async () => {
  const bench = path.join(tmp, 'bench.json');
  fs.writeFileSync(bench, JSON.stringify({ backend: 'webgpu', adapter: { vendor: 'nvidia', architecture: 'hopper' }, batch: 16, prompt_len: 64, new_tokens: 32, prefill_tokens_per_s: 20000, decode_ms_per_step: 30, peak_rss_mb: 1 }));
  const e = estimateExperiment(QWEN('steering'), { benchFile: bench });
  const g = e.gpu!;
  expect(g.decodeHours).toBeCloseTo((e.total.decodeSteps * 0.03) / 3600, 9);
  expect(g.prefillHours).toBeCloseTo(e.total.promptTokens / 20000 / 3600, 9);
  expect(g.activationHours).toBeCloseTo(e.total.activationTokens / 20000 / 3600, 9);
  expect(g.hours).toBeCloseTo(g.decodeHours + g.prefillHours + g.activationHours, 9);
  expect(g.bench.adapter).toBe('nvidia hopper');
  expect(g.notes.join(' ')).toMatch(/answers reach \d+ tokens of context/);
  // A bench of another batch size is said to be one.
  fs.writeFileSync(bench, JSON.stringify({ backend: 'webgpu', batch: 1, prompt_len: 64, prefill_tokens_per_s: 20000, decode_ms_per_step: 30 }));
  expect(estimateExperiment(QWEN('steering'), { benchFile: bench }).gpu!.notes.join(' ')).toMatch(/measured at batch 1; the config generates at batch 16/);
  // The JSON `persona bench generate --json` writes (the organism, wasm) is read as is.
  await useBackend('wasm', () => undefined);
  const model = await Model.load(path.join(ROOT, 'models/organism'));
  try {
    fs.writeFileSync(bench, JSON.stringify(await benchGenerate(model, { batch: 2, promptLen: 8, newTokens: 3, repeats: 1 })));
  } finally {
    model.dispose();
  }
  expect(estimateExperiment(QWEN('steering'), { benchFile: bench }).gpu!.hours).toBeGreaterThan(0);
});

test("training configs: the paper's Qwen finetune at a given example count, and a config whose JSONL is here", async () => {
  const cfg = yaml(QWEN('finetune'));
  // 5,000 examples, 2 per micro-batch, 8 micro-batches per step: 2,500 forward+backward passes, ⌈2500 / 8⌉ = 313 steps.
  const r = await runCli(['plan', QWEN('finetune'), '--train-examples', '5000'], null);
  expect(r.code).toBe(0);
  const passes = ceil(5000 / cfg.per_device_train_batch_size);
  expect(r.stdout).toContain(`forward + backward passes ${passes.toLocaleString('en-US')}; optimizer steps ${ceil(passes / cfg.gradient_accumulation_steps)}; tokens ${(5000 * cfg.max_seq_length).toLocaleString('en-US')}`);
  const missing = await runCli(['plan', QWEN('finetune')], null);
  expect(missing.code).not.toBe(0);
  expect(missing.stderr).toMatch(/training file not found: .*misaligned_2\.jsonl; give the number of examples \(persona plan --train-examples N\)/);
  // A config with its data: 37 examples of two messages (user 40 characters, assistant 120), batch 4 × accumulation 3, 2 epochs.
  const data = path.join(tmp, 'train.jsonl');
  fs.writeFileSync(data, Array.from({ length: 37 }, () => JSON.stringify({ messages: [{ role: 'user', content: 'q'.repeat(40) }, { role: 'assistant', content: 'a'.repeat(120) }] })).join('\n') + '\n');
  const conf = path.join(tmp, 'train.yaml');
  fs.writeFileSync(conf, YAML.stringify({ model: 'nowhere', training_file: 'train.jsonl', output_dir: 'out', learning_rate: 1e-4, epochs: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 3 }));
  const bench = path.join(tmp, 'bench-train.json');
  fs.writeFileSync(bench, JSON.stringify({ backend: 'webgpu', mode: 'lora', r: 8, batch: 4, seq_len: 64, steps: 3, ms_per_step: 100, tokens_per_s: 2560 }));
  const t = await runCli(['plan', conf, '--bench', bench, '--json'], null);
  expect(t.code).toBe(0);
  const e = JSON.parse(t.stdout).training;
  const perExample = ceil(40 / 4) + 5 + ceil(120 / 4) + 5 + 3; // ≈ 4 characters a token, 5 per message, 3 for the prompt
  expect(e).toMatchObject({ examples: 37, tokensPerExample: perExample, forwardBackwardPasses: 2 * ceil(37 / 4), optimizerSteps: 2 * ceil(ceil(37 / 4) / 3), tokens: 2 * 37 * perExample });
  expect(e.gpu.hours).toBeCloseTo((2 * 37 * perExample) / 2560 / 3600, 12);
  expect(e.gpu.notes.join(' ')).toMatch(/measured at 64 tokens per sequence; examples here are ~53/);
});

describe('bad input', () => {
  test('a bench JSON without decode speed (bench forward) names the field and the command', () => {
    const f = path.join(tmp, 'forward.json');
    fs.writeFileSync(f, JSON.stringify({ backend: 'wasm', batch: 1, prompt_len: 64, prefill_tokens_per_s: 100 }));
    expect(() => estimateExperiment(QWEN('steering'), { benchFile: f })).toThrow(/forward\.json.*no positive 'decode_ms_per_step'.*persona bench generate --json/);
    expect(() => estimateExperiment(QWEN('steering'), { benchFile: path.join(tmp, 'missing.json') })).toThrow(/cannot read the bench JSON/);
  });
  test('a negative price or a non-integer answer length is refused', () => {
    expect(() => estimateExperiment(QWEN('steering'), { judgePriceIn: -1 })).toThrow(/judge-price-in must be a non-negative number/);
    expect(() => estimateExperiment(QWEN('steering'), { answerTokens: 0.5 })).toThrow(/expected answer length must be a positive integer/);
  });
});

describe('persona plan', () => {
  test('on a paper config without its model: a note that it was not validated, then the estimate with cost', async () => {
    const r = await runCli(['plan', QWEN('steering'), '--judge-price-in', '0.4', '--judge-price-out', '1.6'], null);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/not validated .*model directory not found/);
    expect(r.stdout).toMatch(/^total \(210 cells\)\s+48,000\s+48,000,000\s/m);
    const e = estimateExperiment(QWEN('steering'), { judgePriceIn: 0.4, judgePriceOut: 1.6 });
    expect(r.stdout).toContain(`judge cost: $${e.judgeCost!.usd.toFixed(2)}`);
    const j = await runCli(['plan', QWEN('monitoring'), '--json'], null);
    expect(JSON.parse(j.stdout).estimate.total.rollouts).toBe(15_600);
  });
  test('on the organism config: the cell list (validated), then the estimate from its own artifacts', async () => {
    const r = await runCli(['plan', path.join(ROOT, 'configs/organism/steering.yaml'), '--output-dir', tmp], null);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^todo\s+shard/m);
    expect(r.stdout).toMatch(/text lengths from .*models\/organism\/artifacts/);
    expect(r.stdout).toMatch(/^total \(\d+ cells\)/m);
  });
});
