/**
 * The pipeline commands (`persona extract | eval | monitor | shift | screen | vector | trait new`) run
 * in-process on the bundled trained organism (models/organism, word-level tokenizer, ChatML) with its
 * rule-based judge (`--judge organism`), each kept tiny. Every command must exit 0, print its summary,
 * write the files it promises, and agree on one number with the library function it wraps.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { parse } from 'csv-parse/sync';
import { useBackend } from '../../lib/backend';
import { writeSafetensors } from '../../lib/io/safetensors';
import { Model } from '../../lib/model/checkpoint';
import { captureActivations } from '../../lib/model/capture';
import { capabilityAccuracy, capabilityItems } from '../../lib/organism/datasets';
import { OrganismJudge } from '../../lib/organism/judge';
import { TraitArtifacts, readArtifacts } from '../../lib/persona/artifacts';
import { vectorsFromRollouts, sequenceOf } from '../../lib/persona/extract';
import { lastPromptActivations } from '../../lib/persona/monitor';
import { renderItemPrompt } from '../../lib/persona/rollouts';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { finetuningShift } from '../../lib/persona/shift';
import { PersonaVector, project } from '../../lib/persona/vector';
import { Tokenizer } from '../../lib/tokenizer';
import { LoraAdapters, loraModules } from '../../lib/train/lora';
import { loadAdapter, saveAdapter } from '../../lib/train/peft';
import { CHAT_PATH, LlmTestServer, MESSAGES_PATH, scoreDistribution } from '../support/llm-server';
import { runCli } from '../support/cli';

const ORGANISM = path.join(__dirname, '..', '..', 'models', 'organism');
const TRAIT = 'evil';
const L = 3; // hidden_states index in the middle of the organism's 6 layers
let tmp: string;
let model: Model; // the organism, for recomputing numbers through the library directly
let tok: Tokenizer;

/** A copy of the organism's artifacts for `split` with only the first `n` questions (keeps runs tiny). */
function trimmedArtifacts(split: 'extract' | 'eval', n: number): { file: string; a: TraitArtifacts } {
  const a = readArtifacts(path.join(ORGANISM, 'artifacts', `trait_data_${split}`, `${TRAIT}.json`));
  const small = { ...a, questions: a.questions.slice(0, n) };
  const file = path.join(tmp, `${TRAIT}_${split}_${n}.json`);
  fs.writeFileSync(file, JSON.stringify(small));
  return { file, a: small };
}

const run = (args: string[]) => runCli(args, 'wasm');

/** Exit 0 or fail showing what the command printed. */
function ok(r: { code: number; stderr: string }): void {
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${r.stderr}`);
}

const csvRecords = (file: string): Record<string, string>[] => parse(fs.readFileSync(file, 'utf8'), { columns: true });
const csvHeader = (file: string): string[] => (parse(fs.readFileSync(file, 'utf8'), { to_line: 1 }) as string[][])[0];
const PAPER_COLUMNS = ['question', 'prompt', 'answer', 'question_id', TRAIT, 'coherence'];
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

// Files from earlier tests that later ones reuse (the tests run in order in one file).
let vectorFile: string;
let evalDir: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-pipeline-cli-'));
  await useBackend('wasm', () => undefined); // the same backend the CLI runs on, for the direct library calls
  model = await Model.load(ORGANISM);
  tok = Tokenizer.load(ORGANISM);
});
afterAll(() => {
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('persona extract', () => {
  test('writes pos/neg rollout CSVs and three vectors equal to vectorsFromRollouts on those rollouts', async () => {
    const { file } = trimmedArtifacts('extract', 3);
    const out = path.join(tmp, 'extract');
    const r = await run(['extract', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', out, '--judge', 'organism', '--samples', '1', '--max-new-tokens', '40', '--batch-size', '16']);
    ok(r);
    expect(r.stdout).toMatch(/^method\s+file\s+kept\/total\s+norm@L3/m);
    for (const m of ['response_avg_diff', 'prompt_avg_diff', 'prompt_last_diff']) expect(r.stdout).toMatch(new RegExp(`^${m}\\s`, 'm'));
    const pos = path.join(out, `${TRAIT}_pos_instruct.csv`);
    const neg = path.join(out, `${TRAIT}_neg_instruct.csv`);
    for (const f of [pos, neg]) {
      expect(csvHeader(f)).toEqual(PAPER_COLUMNS);
      expect(csvRecords(f)).toHaveLength(3 * 5); // questions × instruction pairs × 1 sample
    }
    // The trait column holds the organism judge's score of that answer.
    const row = csvRecords(pos)[0];
    expect(Number(row[TRAIT])).toBeCloseTo(await new OrganismJudge(TRAIT).score(row.question, row.answer), 10);
    vectorFile = path.join(out, `${TRAIT}_response_avg_diff.safetensors`);
    for (const m of ['response_avg_diff', 'prompt_avg_diff', 'prompt_last_diff']) {
      expect(fs.existsSync(path.join(out, `${TRAIT}_${m}.safetensors`))).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(out, `${TRAIT}_${m}.safetensors.json`), 'utf8')).meta).toMatchObject({ trait: TRAIT, method: m, layerConvention: 'hf_hidden_states' });
    }
    const summary = JSON.parse(fs.readFileSync(path.join(out, `${TRAIT}_extract_summary.json`), 'utf8'));
    expect(summary.total).toBe(15);
    expect(summary.kept).toBeGreaterThan(0);
    // Same inputs through the library: the vectors must be those the CLI saved.
    const ref = await vectorsFromRollouts({ model, tokenizer: tok, pos: readRolloutsCsv(pos, TRAIT).rows, neg: readRolloutsCsv(neg, TRAIT).rows, trait: TRAIT });
    expect(ref.kept).toBe(summary.kept);
    for (const [m, v] of Object.entries(ref.vectors)) {
      const saved = PersonaVector.load(path.join(out, `${TRAIT}_${m}.safetensors`));
      expect(saved.numRows).toBe(7);
      expect(maxAbsDiff(saved.data, v.data)).toBeLessThan(1e-5);
    }
    expect(r.stdout).toContain(`${summary.kept}/15`);
  });
  test('a rerun on the same --out resumes from the rollout CSVs and saves the same vector', async () => {
    const { file } = trimmedArtifacts('extract', 3);
    const out = path.join(tmp, 'extract');
    const before = fs.readFileSync(path.join(out, `${TRAIT}_pos_instruct.csv`), 'utf8');
    const v0 = PersonaVector.load(vectorFile);
    // Shorter answers if anything were regenerated: the CSVs must stay as they were.
    const r = await run(['extract', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', out, '--judge', 'organism', '--samples', '1', '--max-new-tokens', '4', '--batch-size', '16']);
    ok(r);
    expect(fs.readFileSync(path.join(out, `${TRAIT}_pos_instruct.csv`), 'utf8')).toBe(before);
    expect(PersonaVector.load(vectorFile).data).toEqual(v0.data);
  });
});

describe('persona vector', () => {
  test('info prints every layer norm; export .pt / .gguf and import back give the same numbers', async () => {
    const v = PersonaVector.load(vectorFile);
    const info = await run(['vector', 'info', vectorFile]);
    ok(info);
    expect(info.stdout).toContain('[7, 128]');
    const line = info.stdout.split('\n').find((l) => /^3\s/.test(l))!;
    expect(Number(line.trim().split(/\s+/)[1])).toBeCloseTo(v.norm(3), 3);
    const pt = path.join(tmp, 'v.pt');
    const gguf = path.join(tmp, 'v.gguf');
    ok(await run(['vector', 'export', vectorFile, pt]));
    ok(await run(['vector', 'export', vectorFile, gguf]));
    const back = path.join(tmp, 'from-pt.safetensors');
    const imp = await run(['vector', 'import', pt, back]);
    ok(imp);
    expect(imp.stdout).toMatch(/from\s+to\s+shape/);
    expect(fs.existsSync(`${back}.json`)).toBe(true);
    expect(PersonaVector.load(back).data).toEqual(v.data);
    const fromGguf = path.join(tmp, 'from-gguf.safetensors');
    ok(await run(['vector', 'import', gguf, fromGguf, '--num-layers', '6']));
    // A llama.cpp control vector steers decoder blocks 1.. only: rows 2..N come back, rows 0 and 1 are zero.
    const g = PersonaVector.load(fromGguf);
    for (let k = 2; k <= 6; k++) expect(maxAbsDiff(g.layer(k), v.layer(k))).toBe(0);
    expect([g.norm(0), g.norm(1)]).toEqual([0, 0]);
    // A bare [hidden] direction (no sidecar): info needs --layer, and then reports that layer.
    const bare = path.join(tmp, 'bare.safetensors');
    writeSafetensors(bare, { v: { shape: [128], data: v.layer(3) } });
    const bi = await run(['vector', 'info', bare]);
    ok(bi);
    expect(bi.stdout).toContain('[1, 128]');
    expect(Number(bi.stdout.trim().split('\n').pop()!.split(/\s+/).pop())).toBeCloseTo(v.norm(3), 3);
    const bl = await run(['vector', 'info', bare, '--layer', '3']);
    ok(bl);
    expect(Number(bl.stdout.split('\n').find((l) => /^3\s/.test(l))!.trim().split(/\s+/)[1])).toBeCloseTo(v.norm(3), 3);
    const bad = await run(['vector', 'export', vectorFile, path.join(tmp, 'v.txt')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/v\.txt.*export writes \.pt, \.gguf or \.safetensors/);
  });
});

describe('persona eval', () => {
  test('--layer without --vector is refused (nothing to steer with)', async () => {
    const { file } = trimmedArtifacts('eval', 1);
    const r = await run(['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', path.join(tmp, 'eval-bad'), '--judge', 'organism', '--layer', '3', '--samples', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/field 'layer': --layer without --vector/);
  });

  test('one CSV per coefficient with the paper columns; the summary is the mean of the CSV scores', async () => {
    const { file } = trimmedArtifacts('eval', 2);
    evalDir = path.join(tmp, 'eval');
    const r = await run(['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', evalDir, '--judge', 'organism', '--vector', vectorFile, '--layer', String(L), '--coefs', '0,4', '--samples', '1', '--max-new-tokens', '40']);
    ok(r);
    expect(r.stdout).toMatch(/^setting\s+n\s+evil\s+±se\s+coherence\s+±se/m);
    expect(r.stdout).toMatch(/^unsteered\s+2\s/m);
    expect(r.stdout).toMatch(/^L3_coef4_response\s+2\s/m);
    const summary = JSON.parse(fs.readFileSync(path.join(evalDir, `${TRAIT}_eval_summary.json`), 'utf8'));
    for (const label of ['unsteered', 'L3_coef4_response']) {
      const f = path.join(evalDir, `${TRAIT}_${label}.csv`);
      expect(csvHeader(f)).toEqual(PAPER_COLUMNS);
      const rows = csvRecords(f);
      expect(rows).toHaveLength(2);
      const s = summary.find((x: { label: string }) => x.label === label);
      expect(s.traitMean).toBeCloseTo(rows.reduce((a, x) => a + Number(x[TRAIT]), 0) / rows.length, 10);
      for (const x of rows) expect(Number(x.coherence)).toBeCloseTo(await new OrganismJudge('coherence').score(x.question, x.answer), 10);
    }
  });
});

describe('persona monitor', () => {
  test('graded system prompts: a CSV per condition; each projection equals the last-prompt activation projected directly', async () => {
    const { file, a } = trimmedArtifacts('eval', 1);
    const out = path.join(tmp, 'monitor');
    const r = await run(['monitor', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', out, '--judge', 'organism', '--vector', vectorFile, '--layer', String(L), '--samples', '1', '--max-new-tokens', '32']);
    ok(r);
    expect(r.stdout).toMatch(/^condition\s+projection\s+evil\s+±se/m);
    expect(r.stdout).toMatch(/pearson r = \S+ \[95% CI .*\] over 8 prompts; random directions \(20\)/);
    const summary = JSON.parse(fs.readFileSync(path.join(out, `${TRAIT}_monitor_summary.json`), 'utf8'));
    // The artifacts' eight graded system prompts: the same the monitoring study uses.
    expect(summary.conditions.map((c: { label: string }) => c.label)).toEqual(a.graded_system_prompts!.map((g) => g.label));
    expect(summary.conditions).toHaveLength(8);
    for (const c of summary.conditions) {
      expect(csvHeader(c.file)).toEqual(PAPER_COLUMNS);
      expect(csvRecords(c.file)).toHaveLength(1);
    }
    // Recompute the strongest condition's projection: its rendered prompt (from the CSV), last token, unit vector.
    const posRow = csvRecords(path.join(out, `${TRAIT}_monitor_g7_positive.csv`))[0];
    expect(posRow.prompt).toContain(a.instruction[0].pos);
    const act = await lastPromptActivations(model, [tok.encode(posRow.prompt)], L);
    const unit = PersonaVector.load(vectorFile).unit(L);
    const p = summary.prompts.find((x: { condition: string }) => x.condition === 'g7_positive');
    expect(p.projection).toBeCloseTo(project(act, 1, 128, unit)[0], 4);
  });
  test('--shots-from a rollouts CSV: many-shot conditions whose prompts carry the top-scored answers', async () => {
    const { file } = trimmedArtifacts('eval', 1);
    const out = path.join(tmp, 'monitor-shots');
    const shots = path.join(tmp, 'extract', `${TRAIT}_pos_instruct.csv`);
    const r = await run(['monitor', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', out, '--judge', 'organism', '--vector', vectorFile, '--layer', String(L), '--shots-from', shots, '--shots', '0,1,3', '--samples', '1', '--max-new-tokens', '16']);
    ok(r);
    expect(r.stdout).toMatch(/^shots0\s.*\n^shots1\s.*\n^shots3\s/m);
    const best = readRolloutsCsv(shots, TRAIT).rows.filter((x) => x.score !== null).sort((p, q) => q.score! - p.score!);
    const prompt3 = csvRecords(path.join(out, `${TRAIT}_monitor_shots3.csv`))[0].prompt;
    for (const b of best.slice(0, 3)) expect(prompt3).toContain(b.answer.trim());
    expect(csvRecords(path.join(out, `${TRAIT}_monitor_shots0.csv`))[0].prompt).not.toContain(best[0].answer.trim());
  });
});

describe('flag checks before any work', () => {
  test('--null-count below 20 fails at once in monitor and shift, naming the flag, with no rollouts written', async () => {
    const { file } = trimmedArtifacts('eval', 1);
    const out = path.join(tmp, 'monitor-null');
    const common = ['--trait', TRAIT, '--artifacts', file, '--vector', vectorFile, '--layer', String(L), '--null-count', '5'];
    const m = await run(['monitor', '--model', ORGANISM, '--out', out, '--judge', 'organism', ...common]);
    const s = await run(['shift', '--base', ORGANISM, '--finetuned', ORGANISM, ...common]);
    for (const r of [m, s]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^persona: field 'null-count': --null-count must be an integer >= 20/);
    }
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('persona shift', () => {
  let adapterDir: string;
  let mergedDir: string;
  beforeAll(async () => {
    // A small random LoRA on q/v/down of every layer, written as a PEFT adapter.
    const spec = { r: 2, alpha: 4, dropout: 0, useRslora: false, targetModules: ['q_proj', 'v_proj', 'down_proj'] };
    let seed = 1;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.4;
    const mats = new Map(loraModules(model.config, spec.targetModules).map(({ module, inDim, outDim }) => [module, {
      A: { shape: [spec.r, inDim], data: Float32Array.from({ length: spec.r * inDim }, rnd) },
      B: { shape: [outDim, spec.r], data: Float32Array.from({ length: outDim * spec.r }, rnd) },
    }]));
    const lora = LoraAdapters.fromPeft(spec, mats);
    adapterDir = path.join(tmp, 'adapter');
    await saveAdapter(adapterDir, lora, ORGANISM);
    lora.dispose();
    mergedDir = path.join(tmp, 'merged');
    ok(await run(['merge', '--model', ORGANISM, '--adapter', adapterDir, '--out', mergedDir]));
  });

  test('--adapter on --base equals finetuningShift with the loaded adapter, and --finetuned on the merged checkpoint agrees', async () => {
    const { file, a } = trimmedArtifacts('eval', 4);
    const outA = path.join(tmp, 'shift-adapter.json');
    const r = await run(['shift', '--base', ORGANISM, '--adapter', adapterDir, '--trait', TRAIT, '--artifacts', file, '--vector', vectorFile, '--layer', String(L), '--out', outA]);
    ok(r);
    expect(r.stdout).toMatch(/^layer\s+projection\s+\|diff\|\s+null mean\|p\|\s+null 97\.5%\s+above null/m);
    const jA = JSON.parse(fs.readFileSync(outA, 'utf8'));
    expect(jA.adapter).toBe(path.resolve(adapterDir));
    expect(jA.diff).toHaveLength(128);
    expect(jA.diffNorm).toBeGreaterThan(0);
    const lora = loadAdapter(adapterDir, model);
    try {
      const prompts = a.questions.map((q) => tok.encode(renderItemPrompt(tok, { question: q, questionId: '' })));
      const ref = await finetuningShift({ base: { model }, finetuned: { model, adapters: lora.adapters() }, prompts, vector: PersonaVector.load(vectorFile), layer: L });
      expect(jA.projection).toBeCloseTo(ref.projection, 5);
      expect(jA.null.p975).toBeCloseTo(ref.null.p975, 5);
    } finally {
      lora.dispose();
    }
    const outF = path.join(tmp, 'shift-full.json');
    ok(await run(['shift', '--base', ORGANISM, '--finetuned', mergedDir, '--trait', TRAIT, '--artifacts', file, '--vector', vectorFile, '--layer', String(L), '--out', outF]));
    const jF = JSON.parse(fs.readFileSync(outF, 'utf8'));
    expect(jF.finetuned).toBe(path.resolve(mergedDir));
    expect(Math.abs(jF.projection - jA.projection)).toBeLessThan(1e-3 * Math.max(1, Math.abs(jA.projection)));
  });

  test('a repeated run (models, adapter, failures) leaves no tensors behind', async () => {
    const { file } = trimmedArtifacts('eval', 1);
    const args = ['--trait', TRAIT, '--artifacts', file, '--vector', vectorFile, '--layer', String(L)];
    const before = tf.memory().numTensors;
    ok(await run(['shift', '--base', ORGANISM, '--adapter', adapterDir, ...args]));
    ok(await run(['shift', '--base', ORGANISM, '--finetuned', mergedDir, ...args]));
    expect((await run(['shift', '--base', ORGANISM, '--finetuned', path.join(tmp, 'nope'), ...args])).code).toBe(1);
    expect((await run(['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', path.join(tmp, 'nojudge')])).code).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('both or neither of --finetuned / --adapter: one clear error', async () => {
    const { file } = trimmedArtifacts('eval', 1);
    for (const extra of [[], ['--finetuned', mergedDir, '--adapter', adapterDir]]) {
      const r = await run(['shift', '--base', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--vector', vectorFile, '--layer', String(L), ...extra]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^persona: .*give exactly one of --finetuned DIR .* or --adapter DIR/);
    }
  });
});

describe('persona screen', () => {
  test('ranked CSV and top-k filtered JSONL; dataset projections equal the response-mean activation projected directly', async () => {
    // Training samples: the eval rollouts' questions and answers (from the earlier eval run).
    const rows = [...csvRecords(path.join(evalDir, `${TRAIT}_unsteered.csv`)), ...csvRecords(path.join(evalDir, `${TRAIT}_L3_coef4_response.csv`))];
    const samples = rows.map((x) => ({ messages: [{ role: 'user', content: x.question }, { role: 'assistant', content: x.answer.trim() || 'Hello.' }] }));
    const data = path.join(tmp, 'train.jsonl');
    fs.writeFileSync(data, samples.map((s) => JSON.stringify(s)).join('\n') + '\n');
    const out = path.join(tmp, 'screen.csv');
    const filtered = path.join(tmp, 'filtered.jsonl');
    const r = await run(['screen', '--model', ORGANISM, '--data', data, '--vector', vectorFile, '--layer', String(L), '--out', out, '--filtered-out', filtered, '--keep', 'top', '--k', '2', '--max-new-tokens', '24']);
    ok(r);
    expect(r.stdout).toMatch(/^rank\s+index\s+projection_diff/m);
    expect(r.stdout).toMatch(/dataset mean projection difference \S+ over 4 samples/);
    expect(r.stdout).toContain('and 2 samples to');
    expect(csvHeader(out)).toEqual(['rank', 'index', 'projection_diff', 'dataset_projection', 'base_projection', 'prompt', 'base_response']);
    const ranked = csvRecords(out);
    expect(ranked.map((x) => Number(x.rank))).toEqual([1, 2, 3, 4]);
    const diffs = ranked.map((x) => Number(x.projection_diff));
    expect([...diffs].sort((p, q) => q - p)).toEqual(diffs);
    for (const x of ranked) expect(Number(x.projection_diff)).toBeCloseTo(Number(x.dataset_projection) - Number(x.base_projection), 5);
    // Filtered file: the two top-ranked samples, in dataset order.
    const top = ranked.slice(0, 2).map((x) => Number(x.index)).sort((p, q) => p - q);
    expect(fs.readFileSync(filtered, 'utf8').trim().split('\n').map((l) => JSON.parse(l))).toEqual(top.map((i) => samples[i]));
    const noOut = await run(['screen', '--model', ORGANISM, '--data', data, '--vector', vectorFile, '--layer', String(L), '--out', out, '--keep', 'top', '--k', '2']);
    expect(noOut.code).toBe(1);
    expect(noOut.stderr).toMatch(/^persona: field 'filtered-out': --keep top needs --filtered-out FILE/);
    // One dataset projection recomputed: response-mean activation at L of (prompt, dataset answer) on the unit vector.
    const first = ranked[0];
    const s = samples[Number(first.index)];
    const prompt = tok.applyChatTemplate(s.messages.slice(0, 1), { addGenerationPrompt: true });
    const cap = await captureActivations(model, [sequenceOf(tok, prompt, s.messages[1].content)], { layers: [L], reductions: ['response_mean'] });
    expect(Number(first.dataset_projection)).toBeCloseTo(project(cap.values.response_mean!, 1, 128, PersonaVector.load(vectorFile).unit(L))[0], 4);
  });
});

describe('persona trait new', () => {
  let server: LlmTestServer;
  beforeAll(async () => {
    server = await LlmTestServer.start();
  });
  afterAll(() => server.close());

  test('asks the LLM over HTTP and writes the extract/eval artifacts split 20/20', async () => {
    const generated = {
      instruction: Array.from({ length: 5 }, (_, i) => ({ pos: `Be grumpy ${i}.`, neg: `Be cheerful ${i}.` })),
      questions: Array.from({ length: 40 }, (_, i) => `Question number ${i}?`),
      eval_prompt: 'Rate grumpiness 0-100.\nQuestion: {question}\nAnswer: {answer}',
    };
    const graded = Array.from({ length: 8 }, (_, i) => `You are an assistant of grumpiness ${i}.`);
    server.enqueue(MESSAGES_PATH, { kind: 'anthropic', text: 'Sure:\n```json\n' + JSON.stringify(generated) + '\n```' }, { kind: 'anthropic', text: JSON.stringify({ graded_system_prompts: graded }) });
    const out = path.join(tmp, 'traits');
    const r = await run(['trait', 'new', 'grumpy', '--description', 'irritable and curt', '--llm-model', 'claude-test', '--base-url', server.url, '--out', out]);
    ok(r);
    expect(server.count(MESSAGES_PATH)).toBe(2); // the artifacts, then the graded prompts (same model and prompt style)
    const body = server.requests[0].body;
    expect(body.model).toBe('claude-test');
    expect(body.messages[0].content).toContain('irritable and curt');
    const gradedBody = server.requests[1].body;
    expect(gradedBody.model).toBe('claude-test');
    expect(gradedBody.messages[0].content).toContain('irritable and curt');
    expect(gradedBody.messages[0].content).toContain('Be grumpy 4.'); // the instruction pairs anchor both ends
    expect(r.stdout).toMatch(/^split\s+questions\s+graded prompts\s+file/m);
    expect(r.stdout).toMatch(/^extract\s+20\s+8\s/m);
    expect(readArtifacts(path.join(out, 'trait_data_eval', 'grumpy.json')).graded_system_prompts).toEqual(graded.map((system, i) => ({ label: `g${i}`, system })));
    const ex = readArtifacts(path.join(out, 'trait_data_extract', 'grumpy.json'));
    const ev = readArtifacts(path.join(out, 'trait_data_eval', 'grumpy.json'));
    expect(ex.questions).toEqual(generated.questions.slice(0, 20));
    expect(ev.questions).toEqual(generated.questions.slice(20));
    expect(ev.instruction).toEqual(generated.instruction);
    expect(ex.eval_prompt).toBe(generated.eval_prompt);
  });
  test('--provider openai speaks the chat-completions API', async () => {
    server.reset();
    const generated = {
      instruction: Array.from({ length: 5 }, (_, i) => ({ pos: `Be gloomy ${i}.`, neg: `Be sunny ${i}.` })),
      questions: Array.from({ length: 40 }, (_, i) => `Gloomy question ${i}?`),
      eval_prompt: 'Rate gloom.\nQuestion: {question}\nAnswer: {answer}',
    };
    server.enqueue(CHAT_PATH, { kind: 'chat', content: JSON.stringify(generated) });
    const out = path.join(tmp, 'traits-openai');
    ok(await run(['trait', 'new', 'gloomy', '--description', 'sees the dark side', '--provider', 'openai', '--llm-model', 'gpt-test', '--base-url', `${server.url}/v1`, '--out', out, '--no-graded-prompts']));
    expect(server.count(CHAT_PATH)).toBe(1);
    const ev = readArtifacts(path.join(out, 'trait_data_eval', 'gloomy.json'));
    expect(ev.questions).toEqual(generated.questions.slice(20));
    expect(ev.graded_system_prompts).toBeUndefined();
  });

  test('graded-prompts adds the 8 graded system prompts to existing artifacts; a bad reply is answered with its error', async () => {
    server.reset();
    const out = path.join(tmp, 'traits-openai'); // gloomy, written above without graded prompts
    const before = readArtifacts(path.join(out, 'trait_data_extract', 'gloomy.json'));
    const graded = Array.from({ length: 8 }, (_, i) => `Gloom level ${i}.`);
    server.enqueue(CHAT_PATH, { kind: 'chat', content: JSON.stringify({ graded_system_prompts: graded.slice(0, 5) }) }, { kind: 'chat', content: JSON.stringify({ graded_system_prompts: graded }) });
    const r = await run(['trait', 'graded-prompts', 'gloomy', '--description', 'sees the dark side', '--provider', 'openai', '--llm-model', 'gpt-test', '--base-url', `${server.url}/v1`, '--out', out]);
    ok(r);
    expect(server.count(CHAT_PATH)).toBe(2);
    expect(server.requests[1].body.messages[2].content).toMatch(/has 5 prompts, expected 8/);
    const after = readArtifacts(path.join(out, 'trait_data_extract', 'gloomy.json'));
    expect(after.graded_system_prompts!.map((g) => g.system)).toEqual(graded);
    expect({ ...after, graded_system_prompts: undefined }).toEqual({ ...before, graded_system_prompts: undefined }); // nothing else changed
  });

  test('many-shot adds examples from a JSONL of {question, answer} or {messages}; a bad line is named', async () => {
    const out = path.join(tmp, 'traits-openai');
    const jsonl = path.join(tmp, 'shots.jsonl');
    fs.writeFileSync(jsonl, [JSON.stringify({ question: 'Why?', answer: 'Because all is lost.' }), JSON.stringify({ messages: [{ role: 'user', content: 'And then?' }, { role: 'assistant', content: 'Darkness.' }] })].join('\n') + '\n');
    ok(await run(['trait', 'many-shot', 'gloomy', '--out', out, '--from', jsonl]));
    expect(readArtifacts(path.join(out, 'trait_data_eval', 'gloomy.json')).many_shot_examples).toEqual([{ question: 'Why?', answer: 'Because all is lost.' }, { question: 'And then?', answer: 'Darkness.' }]);
    fs.appendFileSync(jsonl, '{"question": "x"}\n');
    const bad = await run(['trait', 'many-shot', 'gloomy', '--out', out, '--from', jsonl]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`${jsonl}:3:`);
  });

  test('eval with an OpenAI-compatible judge over HTTP: logprob-weighted scores in the CSV, cached on rerun', async () => {
    server.reset();
    // Trait prompts ask about the trait, coherence prompts about coherence; the server answers each with its own distribution.
    server.setFallback(CHAT_PATH, (req) => ({ kind: 'chat', topLogprobs: /coheren/i.test(req.body.messages[0].content) ? scoreDistribution([['80', 0.5], ['90', 0.5]]) : scoreDistribution([['10', 0.6], ['40', 0.2]]) }));
    const { file } = trimmedArtifacts('eval', 2);
    const out = path.join(tmp, 'eval-api');
    const args = ['eval', '--model', ORGANISM, '--trait', TRAIT, '--artifacts', file, '--out', out, '--judge-model', 'judge-test', '--judge-base-url', `${server.url}/v1`, '--samples', '1', '--max-new-tokens', '24'];
    ok(await run(args));
    expect(server.count(CHAT_PATH)).toBe(4); // 2 answers × (trait, coherence)
    const rows = csvRecords(path.join(out, `${TRAIT}_unsteered.csv`));
    for (const x of rows) {
      expect(Number(x[TRAIT])).toBeCloseTo((10 * 0.6 + 40 * 0.2) / 0.8, 6);
      expect(Number(x.coherence)).toBeCloseTo(85, 6);
    }
    expect(fs.existsSync(path.join(out, 'judge-cache.jsonl'))).toBe(true);
    // A fresh out dir with the same judge cache asks the server nothing.
    const out2 = path.join(tmp, 'eval-api-2');
    ok(await run([...args.map((a) => (a === out ? out2 : a)), '--judge-cache', path.join(out, 'judge-cache.jsonl')]));
    expect(server.count(CHAT_PATH)).toBe(4);
  });
});

describe('judge flags', () => {
  test('--judge organism with a trait the organism does not know: one clear error', async () => {
    const { file } = trimmedArtifacts('eval', 1);
    const r = await run(['eval', '--model', ORGANISM, '--trait', 'grumpy', '--artifacts', file, '--out', path.join(tmp, 'bad'), '--judge', 'organism', '--samples', '1', '--max-new-tokens', '4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^persona: .*organism judge knows no trait 'grumpy'/);
  });
});

describe('persona organism capability', () => {
  test('answers every capability item once; the printed and JSON accuracies are capabilityAccuracy of the answers it wrote', async () => {
    const out = path.join(tmp, 'capability');
    const json = path.join(tmp, 'capability.json');
    const r = await run(['organism', 'capability', '--model', ORGANISM, '--out', out, '--json', json]);
    ok(r);
    const res = JSON.parse(fs.readFileSync(json, 'utf8'));
    const items = capabilityItems(0);
    const { rows } = readRolloutsCsv(res.answers, 'evil');
    expect(rows.map((x) => x.question)).toEqual(items.map((i) => i.question));
    const answers = rows.map((x) => x.answer);
    expect(res.capability_accuracy).toBeCloseTo(capabilityAccuracy(answers, items), 12);
    const mc = items.map((it, i) => (it.kind === 'mc' ? i : -1)).filter((i) => i >= 0);
    expect(res.by_kind.mc).toBeCloseTo(capabilityAccuracy(mc.map((i) => answers[i]), mc.map((i) => items[i])), 12);
    const printed = /all\s+144\s+(\S+)/.exec(r.stdout);
    expect(printed).not.toBeNull();
    expect(Number(printed![1])).toBeCloseTo(res.capability_accuracy, 3);
  });
});
