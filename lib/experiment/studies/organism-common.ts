/**
 * Shared pieces of the organism studies (steering, monitoring, shift, mitigation, screening): the model and
 * tokenizer loaded once per process, the organism judges, trait artifacts, judged rollouts and persona
 * vectors cached on disk (keyed by everything that determines them, so every study and cell that asks
 * for the same vector or rollouts gets the stored one), prompt conditions graded from discouraging to
 * encouraging a trait (system prompts and many-shot), the monitoring statistics, and the choice of the
 * monitor layer by monitoring quality (which the shift study reuses).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { checkpointFingerprint } from '../../io/fingerprint';
import { z } from 'zod';
import { PersonaError } from '../../errors';
import { writeFileAtomic } from '../../io/atomic';
import { Model } from '../../model/checkpoint';
import { captureActivations } from '../../model/capture';
import { readModelConfig } from '../../model/config';
import type { Intervention } from '../../model/interventions';
import type { LinearAdapter } from '../../model/transformer';
import { COHERENCE_PROMPT_NAME, loadJudgePrompts, selectJudgePrompt } from '../../judge/judge';
import { JudgeCache } from '../../judge/cache';
import { createCoherenceJudge, createOpenAIJudge } from '../../judge/openai-logprob';
import { resolveEndpoint } from '../../llm/endpoint';
import { OpenAIClient } from '../../llm/openai';
import { OrganismJudge } from '../../organism/judge';
import { TRAITS, Trait } from '../../organism/grammar';
import { GRADED_ADVERBS, LEVELS, TRAIT_DOMAINS, makeAnswer, makeQuestion, makeRng, pick, systemPrompt } from '../../organism/generator';
import { TraitArtifacts, readTraitArtifacts } from '../../persona/artifacts';
import { extractPersonaVector } from '../../persona/extract';
import { correlationWithNull } from '../../persona/monitor';
import { RolloutItem, RolloutJudges, assistantSystemPrompt, renderItemPrompt, runRollouts } from '../../persona/rollouts';
import { RolloutRow, readRolloutsCsv } from '../../persona/rollouts-csv';
import { bootstrapCI, mean, pearson } from '../../persona/stats';
import { ExtractionMethod, PersonaVector, project } from '../../persona/vector';
import type { ChatMessage, Tokenizer } from '../../tokenizer';
import { Tokenizer as TokenizerClass } from '../../tokenizer';
import type { Cache } from '../cache';
import { locate, readConfigTree } from '../config';
import { sha256Hex } from '../hash';
import type { ValidateContext } from '../study';

// ---------------------------------------------------------------------------------------------------
// Schema fields every organism study shares
// ---------------------------------------------------------------------------------------------------

export const TRAIT_ENUM = z.enum(TRAITS as unknown as [Trait, ...Trait[]]);

/** Fields of the model, the rollouts and the persona vector; spread into a study's z.object({...}). */
/** Who scores the rollouts: the organism's exact judge, or the paper's logprob judge through an OpenAI-compatible API. */
export const judgeSchema = z
  .object({
    type: z.enum(['organism', 'openai']).default('organism').describe('organism (exact, offline) | openai (the paper\'s logprob judge; needs OPENAI_API_KEY)'),
    model: z.string().default('gpt-4.1-mini').describe('Judge model (openai)'),
    base_url: z.string().optional().describe('OpenAI-compatible endpoint (default $OPENAI_BASE_URL, else api.openai.com)'),
    concurrency: z.number().int().min(1).default(8).describe('Judge requests in flight (openai)'),
    prompts: z.string().optional().describe("Judge prompts JSON (the paper's judge_prompts.json) for the coherence prompt, relative to the config file; trait prompts are the artifacts' eval_prompt"),
  })
  .strict();

export type JudgeSettings = z.infer<typeof judgeSchema>;

export const organismFields = {
  model: z.string().describe('Organism checkpoint directory (Hugging Face layout), relative to the config file'),
  artifacts: z.string().optional().describe('Trait artifact directory (trait_data_extract/, trait_data_eval/), relative to the config file; default <model>/artifacts'),
  trait: TRAIT_ENUM.describe('Trait (one of the organism\'s seven)'),
  max_new_tokens: z.number().int().min(1).default(48).describe('Tokens generated per answer (organism answers are ≤ 40 words)'),
  temperature: z.number().min(0).default(1).describe('Sampling temperature of every rollout (paper: 1)'),
  batch_size: z.number().int().min(1).default(32).describe('Rollouts generated together; part of the sampling seeds, hence of cache keys'),
  extract_samples: z.number().int().min(1).default(1).describe('Persona-vector extraction: samples per (extraction question, instruction pair) on each side'),
  extract_method: z.enum(['response_avg_diff', 'prompt_avg_diff', 'prompt_last_diff']).default('response_avg_diff').describe('Persona-vector method (paper: response_avg_diff)'),
  extract_threshold: z.number().min(0).max(100).default(50).describe('Extraction filter: pos trait ≥ t, neg trait < 100 − t (paper: 50)'),
  extract_coherence_min: z.number().min(0).max(100).default(50).describe('Extraction filter: coherence of both answers ≥ this (paper: 50)'),
  judge: judgeSchema.default(judgeSchema.parse({})).describe('Judge of trait and coherence (mapping, keys judge.type, judge.model, …)'),
};

/** The path fields of organismFields (Study.pathFields): rebased when set in an extended config. */
export const ORGANISM_PATH_FIELDS = ['model', 'artifacts', 'judge.prompts'] as const;

export interface OrganismCell {
  model: string;
  artifacts?: string;
  trait: Trait;
  max_new_tokens: number;
  temperature: number;
  batch_size: number;
  extract_samples: number;
  extract_method: ExtractionMethod;
  extract_threshold: number;
  extract_coherence_min: number;
  judge: JudgeSettings;
}

/**
 * Checks the model directory, every layer field against the model, and the trait artifact files; errors name the
 * key. Traits: the config's `trait` values, or (multi-trait studies) the given list.
 */
export function validateOrganism(ctx: ValidateContext, layerFields: string[] = [], traits?: readonly Trait[]): void {
  ctx.requireFiles('model', 'model directory');
  for (const { value: m } of ctx.valuesOf('model')) {
    const modelDir = ctx.resolvePath(String(m));
    const cfg = readModelConfig(modelDir);
    for (const field of layerFields)
      for (const l of ctx.valuesOf(field))
        if (typeof l.value === 'number' && (l.value > cfg.numLayers || l.value < 1))
          ctx.fail(l.keyPath, `layer ${l.value} is beyond the model (${String(m)} has ${cfg.numLayers} decoder layers: persona-vector layers 1..${cfg.numLayers})`);
    const wanted = traits ? traits.map((t) => ({ value: t as unknown, keyPath: ctx.keyOf('model') })) : ctx.valuesOf('trait');
    for (const a of ctx.valuesOf('artifacts')) {
      const dir = a.value === undefined ? path.join(modelDir, 'artifacts') : ctx.resolvePath(String(a.value));
      for (const t of wanted)
        for (const split of ['extract', 'eval']) {
          const f = path.join(dir, `trait_data_${split}`, `${String(t.value)}.json`);
          if (!fs.existsSync(f)) ctx.fail(a.value === undefined ? t.keyPath : a.keyPath, `trait artifact file not found: ${f}`);
        }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Model, tokenizer, judges, artifacts
// ---------------------------------------------------------------------------------------------------

/** What the organism helpers need from a cell context (CellContext fits; so does a summary's own). */
export interface OrganismEnv {
  cache: Cache;
  shared<T>(key: string, create: () => T, dispose?: (v: T) => void): T;
  log?(message: string): void;
}

export interface LoadedOrganism {
  dir: string;
  model: Model;
  tokenizer: Tokenizer;
  /** sha256 over the checkpoint's files: the model part of every cache key. */
  fingerprint: string;
}

/** The checkpoint in `dir`, loaded once per process (disposed when the run ends). */
export function loadOrganism(env: OrganismEnv, dir: string): Promise<LoadedOrganism> {
  const abs = path.resolve(dir);
  return env.shared(
    `organism:${abs}`,
    async (): Promise<LoadedOrganism> => ({ dir: abs, model: await Model.load(abs), tokenizer: TokenizerClass.load(abs), fingerprint: checkpointFingerprint(abs) }),
    (o) => void o.then((x) => x.model.dispose(), () => undefined),
  );
}

export function organismJudges(trait: Trait): RolloutJudges {
  return { trait: new OrganismJudge(trait), coherence: new OrganismJudge('coherence') };
}

/**
 * The judges a cell asks for: the organism judge, or the paper's logprob judge (trait prompt = the eval
 * artifacts' eval_prompt) with its answers cached in <cache>/judge/<model>.jsonl, one client per process.
 */
export function cellJudges(env: OrganismEnv, cell: Pick<OrganismCell, 'trait' | 'judge'>, evalArtifacts: TraitArtifacts, resolvePath: (p: string) => string): RolloutJudges {
  const j = cell.judge;
  if (j.type === 'organism') return organismJudges(cell.trait);
  // Resolved (and key-checked) first so that every cell on one endpoint + model shares one client, hence one limiter.
  const { base } = resolveEndpoint('openai', { baseURL: j.base_url }, { baseURL: 'judge.base_url', localHint: 'judge.base_url' });
  const client = env.shared(`openai-client:${base}:${j.model}`, () => new OpenAIClient({ model: j.model, baseURL: base, concurrency: j.concurrency }));
  const store = env.shared(`judge-cache:${env.cache.root}:${j.model}`, () => new JudgeCache(path.join(env.cache.root, 'judge', `${j.model.replace(/[^A-Za-z0-9._-]+/g, '_')}.jsonl`)));
  const coherenceTemplate = j.prompts !== undefined ? selectJudgePrompt(loadJudgePrompts(resolvePath(j.prompts)), COHERENCE_PROMPT_NAME, j.prompts) : undefined;
  return {
    trait: createOpenAIJudge({ client, template: evalArtifacts.eval_prompt, cache: store, name: `${cell.trait}_eval_prompt` }),
    coherence: createCoherenceJudge({ client, template: coherenceTemplate, cache: store }),
  };
}

/** Trait artifacts of a cell: `artifacts` (resolved by the caller) or <model>/artifacts. */
export function cellArtifacts(cell: Pick<OrganismCell, 'trait' | 'artifacts' | 'model'>, resolvePath: (p: string) => string): { extract: TraitArtifacts; eval: TraitArtifacts; dir: string } {
  const dir = cell.artifacts !== undefined ? resolvePath(cell.artifacts) : path.join(resolvePath(cell.model), 'artifacts');
  return { ...readTraitArtifacts(dir, cell.trait), dir };
}

// ---------------------------------------------------------------------------------------------------
// Cached rollouts and vectors
// ---------------------------------------------------------------------------------------------------

/** Interventions as cache-key data (vectors by hash). */
export function interventionKey(ivs: readonly Intervention[]): unknown[] {
  return ivs.map((iv) => ({ ...iv, vector: sha256Hex(new Uint8Array(iv.vector.buffer, iv.vector.byteOffset, iv.vector.byteLength)) }));
}

export interface RolloutSpec {
  trait: Trait;
  /** Default: the organism judges of `trait`. */
  judges?: RolloutJudges;
  items: readonly RolloutItem[];
  maxNewTokens: number;
  temperature: number;
  batchSize: number;
  seed: string;
  interventions?: readonly Intervention[];
  /** LoRA adapters (finetuned model); `adaptersKey` must identify them (e.g. the finetune's cache key). */
  adapters?: ReadonlyMap<string, LinearAdapter>;
  adaptersKey?: string;
}

/**
 * Judged rollouts (paper CSV columns), computed once per key and stored in the cache as rollouts.csv:
 * the key holds the model's bytes, judges, items (prompts), sampling settings, seed and interventions.
 */
export async function cachedRollouts(env: OrganismEnv, org: LoadedOrganism, s: RolloutSpec): Promise<{ rows: RolloutRow[]; csv: string }> {
  if (s.adapters && !s.adaptersKey) throw new PersonaError('rollouts with adapters need an adaptersKey (what identifies the finetune) for the cache', { field: 'adapters' });
  const judges = s.judges ?? organismJudges(s.trait);
  const key = {
    model: org.fingerprint,
    adapters: s.adaptersKey ?? null,
    judges: [judges.trait.id, judges.coherence.id],
    items: s.items.map((it) => ({ q: it.question, id: it.questionId, system: it.system ?? null, history: it.history ?? null })),
    maxNewTokens: s.maxNewTokens,
    temperature: s.temperature,
    batchSize: s.batchSize,
    seed: s.seed,
    interventions: interventionKey(s.interventions ?? []),
  };
  const dir = await env.cache.getOrComputeDir('rollouts', key, async (tmp) => {
    await runRollouts({
      model: org.model,
      tokenizer: org.tokenizer,
      items: s.items,
      csvFile: path.join(tmp, 'rollouts.csv'),
      trait: s.trait,
      judges,
      maxNewTokens: s.maxNewTokens,
      temperature: s.temperature,
      seed: s.seed,
      batchSize: s.batchSize,
      interventions: s.interventions,
      adapters: s.adapters,
    });
  });
  const csv = path.join(dir, 'rollouts.csv');
  return { rows: readRolloutsCsv(csv, s.trait).rows, csv };
}

export interface VectorInfo {
  vector: PersonaVector;
  /** Pairs kept by the extraction filter, of all pairs. */
  kept: number;
  total: number;
  /** Cache directory with the pos/neg rollouts and all three vectors. */
  dir: string;
}

/** The persona vector of a cell's settings, extracted once (paper pipeline, organism judges) and cached. */
export async function organismVector(env: OrganismEnv, org: LoadedOrganism, cell: OrganismCell, artifacts: TraitArtifacts, seed: number, judges: RolloutJudges = organismJudges(cell.trait)): Promise<VectorInfo> {
  const key = {
    model: org.fingerprint,
    trait: cell.trait,
    artifacts: { instruction: artifacts.instruction, questions: artifacts.questions },
    judges: [judges.trait.id, judges.coherence.id],
    samples: cell.extract_samples,
    threshold: cell.extract_threshold,
    coherenceMin: cell.extract_coherence_min,
    maxNewTokens: cell.max_new_tokens,
    temperature: cell.temperature,
    batchSize: cell.batch_size,
    seed,
  };
  const dir = await env.cache.getOrComputeDir('persona-vector', key, async (tmp) => {
    env.log?.(`extracting the ${cell.trait} persona vector`);
    const r = await extractPersonaVector({
      model: org.model,
      tokenizer: org.tokenizer,
      artifacts,
      trait: cell.trait,
      judges,
      outDir: tmp,
      samples: cell.extract_samples,
      threshold: cell.extract_threshold,
      coherenceMin: cell.extract_coherence_min,
      maxNewTokens: cell.max_new_tokens,
      temperature: cell.temperature,
      seed: String(seed),
      batchSize: cell.batch_size,
      modelName: path.basename(org.dir),
    });
    fs.writeFileSync(path.join(tmp, 'extraction.json'), JSON.stringify({ kept: r.kept, total: r.total, emptyAnswers: r.emptyAnswers }) + '\n');
  });
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'extraction.json'), 'utf8')) as { kept: number; total: number };
  return { vector: PersonaVector.load(path.join(dir, `${cell.trait}_${cell.extract_method}.safetensors`)), kept: info.kept, total: info.total, dir };
}

// ---------------------------------------------------------------------------------------------------
// Prompt conditions graded from discouraging to encouraging a trait
// ---------------------------------------------------------------------------------------------------

export interface GradedCondition {
  label: string;
  /** Position on the discouraging → encouraging scale (0 = most discouraging). */
  grade: number;
  system?: string;
  history?: ChatMessage[];
}

/**
 * Eight system prompts from discouraging to encouraging (as the paper's Fig. 4): the negative instruction,
 * the helpful assistant, no system prompt, the organism's graded adverbs (slightly/somewhat/very/extremely,
 * in the corpus's own "You are a {adverb} {trait} assistant. Be {adverb} {trait} …" form) and the positive
 * instruction. Instruction pair `pair` of the artifacts supplies the two ends.
 */
export function gradedSystemConditions(artifacts: TraitArtifacts, trait: Trait, pair = 0): GradedCondition[] {
  const p = artifacts.instruction[pair];
  if (!p) throw new PersonaError(`the trait artifacts have no instruction pair ${pair}`, { field: 'instruction' });
  const adverbs = [1, 2, 3, 4].map((level) => GRADED_ADVERBS.find((a) => a.level === level)!.word);
  return [
    { label: 'g0_negative', grade: 0, system: assistantSystemPrompt('helpful', p.neg) },
    { label: 'g1_helpful', grade: 1, system: systemPrompt('helpful', '') },
    { label: 'g2_none', grade: 2 },
    ...adverbs.map((adv, i) => ({ label: `g${3 + i}_${adv}`, grade: 3 + i, system: systemPrompt(`${adv} ${trait}`, `Be ${adv} ${trait} in your answers.`) })),
    { label: 'g7_positive', grade: 7, system: assistantSystemPrompt(trait, p.pos) },
  ];
}

export interface ShotSpec {
  /** Earlier user/assistant turns. */
  k: number;
  /** Trait strength level of the example answers, 0..4 (s = level / 4). */
  level: number;
}

export const DEFAULT_SHOTS: ShotSpec[] = [
  { k: 0, level: 0 },
  { k: 1, level: 0 },
  { k: 1, level: 1 },
  { k: 1, level: 2 },
  { k: 1, level: 3 },
  { k: 1, level: 4 },
  { k: 2, level: 4 },
];

/**
 * Many-shot prompts: K earlier turns whose answers show the trait at strength level/4, written by the
 * organism's own generator on questions from the trait's domains (the organism has no long context, so
 * K stays small; the grade is the total trait content K·level).
 */
export function manyShotConditions(trait: Trait, shots: readonly ShotSpec[], seed: number | string = 0): GradedCondition[] {
  return shots.map(({ k, level }) => {
    if (!Number.isInteger(k) || k < 0) throw new PersonaError(`many-shot k must be a non-negative integer, got ${k}`, { field: 'shots' });
    if (!Number.isInteger(level) || level < 0 || level > LEVELS) throw new PersonaError(`many-shot level must be an integer 0..${LEVELS}, got ${level}`, { field: 'shots' });
    const rng = makeRng(`many-shot:${trait}:${seed}:${level}`);
    const history: ChatMessage[] = [];
    for (let i = 0; i < k; i++) {
      const q = makeQuestion(rng, pick(rng, TRAIT_DOMAINS[trait]));
      history.push({ role: 'user', content: q.text }, { role: 'assistant', content: makeAnswer(rng, q, { trait, level }) });
    }
    return { label: `k${k}_s${level}`, grade: k * level, history };
  });
}

// ---------------------------------------------------------------------------------------------------
// Monitoring data and statistics
// ---------------------------------------------------------------------------------------------------

export interface MonitorData {
  conditions: GradedCondition[];
  /** One per (condition, question), condition-major. */
  prompts: { condition: number; question: number }[];
  /** hidden_states indices captured (0..N). */
  layers: number[];
  hidden: number;
  /** Last-prompt-token activations [prompts, layers, hidden]. */
  acts: Float32Array;
  /** One per judged rollout: its prompt, trait score and coherence (NaN when the judge refused). */
  samples: { prompt: number; score: number; coherence: number }[];
}

export interface MonitorDataOptions {
  trait: Trait;
  questions: readonly string[];
  conditions: readonly GradedCondition[];
  samples: number;
  maxNewTokens: number;
  temperature: number;
  batchSize: number;
  seed: string;
  judges?: RolloutJudges;
}

/** Judged rollouts of every (condition, question) × samples (cached) and last-prompt activations at every layer. */
export async function monitorData(env: OrganismEnv, org: LoadedOrganism, o: MonitorDataOptions): Promise<MonitorData> {
  const maxPos = org.model.config.maxPositionEmbeddings;
  const prompts: MonitorData['prompts'] = [];
  const ids: number[][] = [];
  const samples: MonitorData['samples'] = [];
  for (let c = 0; c < o.conditions.length; c++) {
    const cond = o.conditions[c];
    const base: RolloutItem[] = o.questions.map((question, i) => ({ question, questionId: `${o.trait}_${i}_${cond.label}`, system: cond.system, history: cond.history }));
    for (const it of base) {
      const t = org.tokenizer.encode(renderItemPrompt(org.tokenizer, it));
      if (maxPos !== undefined && t.length + o.maxNewTokens > maxPos)
        throw new PersonaError(`condition ${cond.label}: a prompt of ${t.length} tokens + ${o.maxNewTokens} new tokens exceeds the model's ${maxPos} positions; use fewer shots or max_new_tokens`, { field: 'shots' });
      ids.push(t);
    }
    const items = base.flatMap((it) => Array.from({ length: o.samples }, () => it));
    const { rows } = await cachedRollouts(env, org, { trait: o.trait, items, maxNewTokens: o.maxNewTokens, temperature: o.temperature, batchSize: o.batchSize, seed: `${o.seed}/${cond.label}`, judges: o.judges });
    base.forEach((_, q) => {
      prompts.push({ condition: c, question: q });
      for (let s = 0; s < o.samples; s++) {
        const r = rows[q * o.samples + s];
        // A refused trait score (API judges may refuse) leaves the sample out; the organism judge never refuses.
        if (r.score !== null) samples.push({ prompt: prompts.length - 1, score: r.score, coherence: r.coherence ?? NaN });
      }
    });
  }
  const cap = await captureActivations(org.model, ids.map((t) => ({ ids: t, promptLength: t.length })), { reductions: ['prompt_last'], batchSize: o.batchSize });
  return { conditions: [...o.conditions], prompts, layers: cap.layers, hidden: cap.hidden, acts: cap.values.prompt_last!, samples };
}

/** Projections of every prompt's activation at hidden_states[layer] onto `direction` (not normalised). */
export function promptProjections(d: MonitorData, layer: number, direction: Float32Array): Float64Array {
  const j = d.layers.indexOf(layer);
  if (j < 0) throw new PersonaError(`layer ${layer} was not captured (captured: ${d.layers.join(', ')})`, { field: 'layer' });
  const H = d.hidden;
  const out = new Float64Array(d.prompts.length);
  for (let p = 0; p < d.prompts.length; p++) {
    const off = (p * d.layers.length + j) * H;
    let s = 0;
    for (let h = 0; h < H; h++) s += d.acts[off + h] * direction[h];
    out[p] = s;
  }
  return out;
}

/** Activations at one layer, one row per sample (a prompt's row repeated for each of its samples): [samples, hidden]. */
function sampleActs(d: MonitorData, layer: number, which: readonly number[]): Float32Array {
  const j = d.layers.indexOf(layer);
  const H = d.hidden;
  const m = new Float32Array(which.length * H);
  which.forEach((s, i) => {
    const p = d.samples[s].prompt;
    m.set(d.acts.subarray((p * d.layers.length + j) * H, (p * d.layers.length + j + 1) * H), i * H);
  });
  return m;
}

function meanFinite(xs: number[]): number {
  const f = xs.filter(Number.isFinite);
  return f.length ? mean(f) : NaN;
}

/** null for NaN/±Infinity (JSON cannot hold them; an undefined correlation is reported as null). */
export function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function safePearson(x: number[], y: number[]): number {
  if (x.length < 3) return NaN;
  return pearson(x, y);
}

/** Per-sample Pearson r at one layer over a subset of samples (NaN when undefined). */
export function sampleR(d: MonitorData, vector: PersonaVector, layer: number, which?: readonly number[]): number {
  const idx = which ?? d.samples.map((_, i) => i);
  const proj = promptProjections(d, layer, vector.unit(layer));
  return safePearson(idx.map((s) => proj[d.samples[s].prompt]), idx.map((s) => d.samples[s].score));
}

export interface LayerChoice {
  layer: number;
  rule: string;
  byLayer: { layer: number; r_select: number | null; r_heldout: number | null; r_all: number | null }[];
}

/**
 * The monitor layer, chosen by monitoring quality rather than steering quality: the layer whose last-prompt
 * projection best predicts the trait score (per-sample Pearson r) on the even-indexed questions; the
 * odd-indexed questions give an r the choice never saw (r_heldout). Layer 0 (embeddings) is skipped.
 */
export function chooseMonitorLayer(d: MonitorData, vector: PersonaVector, candidates?: readonly number[]): LayerChoice {
  const layers = (candidates ?? d.layers.filter((l) => l >= 1)).filter((l) => vector.norm(l) > 0);
  if (!layers.length) throw new PersonaError('no candidate monitor layer has a non-zero persona vector', { field: 'layer' });
  const even = d.samples.map((s, i) => ({ s, i })).filter(({ s }) => d.prompts[s.prompt].question % 2 === 0).map(({ i }) => i);
  const odd = d.samples.map((s, i) => ({ s, i })).filter(({ s }) => d.prompts[s.prompt].question % 2 === 1).map(({ i }) => i);
  const byLayer = layers.map((layer) => ({ layer, r_select: finite(sampleR(d, vector, layer, even)), r_heldout: finite(sampleR(d, vector, layer, odd)), r_all: finite(sampleR(d, vector, layer)) }));
  let best = byLayer[0];
  for (const b of byLayer) if ((b.r_select ?? -Infinity) > (best.r_select ?? -Infinity)) best = b;
  return { layer: best.layer, rule: 'max per-sample Pearson r (last-prompt projection vs trait score) on even-indexed questions of the graded system prompts; odd-indexed questions held out', byLayer };
}

export interface MonitorStats {
  layer: number;
  /** Per sample: projection of the prompt's last token vs the answer's trait score. */
  n: number;
  r: number | null;
  r_ci: { lo: number; hi: number } | null;
  random_mean_abs_r: number | null;
  null_p975: number | null;
  null_directions: number;
  beats_null: boolean;
  /** Per-prompt (condition) means: mean projection vs mean trait score over each condition. */
  prompt_mean_r: number | null;
  prompt_mean_ci: { lo: number; hi: number } | null;
  /** Per (condition, question): mean over its samples. */
  question_mean_r: number | null;
  /** Pooled within-condition r: projections and scores centred on their condition means (Table 2's within-condition). */
  within_condition_r: number | null;
  within_condition_by_condition: Record<string, number | null>;
  conditions: { label: string; grade: number; projection_mean: number; trait_mean: number; coherence_mean: number | null }[];
}

/** Every monitoring statistic at one layer; the random-direction null matches the vector's norm at that layer. */
export function monitorStats(d: MonitorData, vector: PersonaVector, layer: number, o: { nullCount?: number; bootstrapReps?: number; seed?: string } = {}): MonitorStats {
  const unit = vector.unit(layer);
  const proj = promptProjections(d, layer, unit);
  const all = d.samples.map((_, i) => i);
  const scores = d.samples.map((s) => s.score);
  const seed = o.seed ?? '0';
  const nullCount = o.nullCount ?? 20;
  let corr: ReturnType<typeof correlationWithNull> | null = null;
  try {
    corr = correlationWithNull(sampleActs(d, layer, all), scores, vector.layer(layer), { seed, nullCount, bootstrapReps: o.bootstrapReps ?? 1000 });
  } catch (e) {
    if (!(e instanceof PersonaError)) throw e;
    corr = null; // too few samples or an undefined bootstrap: reported as null
  }
  const C = d.conditions.length;
  const condProj = Array.from({ length: C }, () => [] as number[]);
  const condScore = Array.from({ length: C }, () => [] as number[]);
  const condCoh = Array.from({ length: C }, () => [] as number[]);
  for (const s of d.samples) {
    const c = d.prompts[s.prompt].condition;
    condProj[c].push(proj[s.prompt]);
    condScore[c].push(s.score);
    condCoh[c].push(s.coherence);
  }
  const present = condProj.map((xs, c) => ({ xs, c })).filter(({ xs }) => xs.length > 0).map(({ c }) => c);
  const pm = present.map((c) => mean(condProj[c]));
  const sm = present.map((c) => mean(condScore[c]));
  const promptMeanR = safePearson(pm, sm);
  let promptMeanCi: { lo: number; hi: number } | null = null;
  if (Number.isFinite(promptMeanR) && present.length >= 4) {
    try {
      promptMeanCi = bootstrapCI((idx) => safePearson(idx.map((i) => pm[i]), idx.map((i) => sm[i])), present.length, { seed: `${seed}/prompt-mean`, reps: o.bootstrapReps ?? 1000 });
    } catch {
      promptMeanCi = null; // most resamples of a few conditions are constant on one side
    }
  }
  // Per (condition, question) means.
  const qp: number[] = [];
  const qs: number[] = [];
  for (let p = 0; p < d.prompts.length; p++) {
    const ss = d.samples.filter((s) => s.prompt === p).map((s) => s.score);
    if (ss.length) {
      qp.push(proj[p]);
      qs.push(mean(ss));
    }
  }
  // Within condition: centre both sides on their condition's means, then pool.
  const cx: number[] = [];
  const cy: number[] = [];
  const within: Record<string, number | null> = {};
  for (const c of present) {
    const mx = mean(condProj[c]);
    const my = mean(condScore[c]);
    condProj[c].forEach((x, i) => {
      cx.push(x - mx);
      cy.push(condScore[c][i] - my);
    });
    within[d.conditions[c].label] = finite(safePearson(condProj[c], condScore[c]));
  }
  return {
    layer,
    n: d.samples.length,
    r: corr ? finite(corr.r) : null,
    r_ci: corr && Number.isFinite(corr.ci95.lo) ? corr.ci95 : null,
    random_mean_abs_r: corr ? finite(corr.null.meanAbs) : null,
    null_p975: corr ? finite(corr.null.p975) : null,
    null_directions: nullCount,
    beats_null: corr?.beatsNull ?? false,
    prompt_mean_r: finite(promptMeanR),
    prompt_mean_ci: promptMeanCi,
    question_mean_r: finite(safePearson(qp, qs)),
    within_condition_r: finite(safePearson(cx, cy)),
    within_condition_by_condition: within,
    conditions: present.map((c, i) => ({ label: d.conditions[c].label, grade: d.conditions[c].grade, projection_mean: pm[i], trait_mean: sm[i], coherence_mean: finite(meanFinite(condCoh[c])) })),
  };
}

export interface MonitorLayerOptions {
  samples: number;
  /** Force this layer instead of choosing one. */
  layer?: number;
}

/**
 * The monitor layer for a trait: rollouts under the graded system prompts on the eval questions (cached),
 * then chooseMonitorLayer. The shift study measures finetuning shifts at this layer.
 */
export async function organismMonitorLayer(env: OrganismEnv, org: LoadedOrganism, cell: OrganismCell, artifacts: { eval: TraitArtifacts }, vector: PersonaVector, seed: number, o: MonitorLayerOptions & { judges?: RolloutJudges }): Promise<{ choice: LayerChoice; data: MonitorData }> {
  const data = await monitorData(env, org, {
    trait: cell.trait,
    questions: artifacts.eval.questions,
    conditions: gradedSystemConditions(artifacts.eval, cell.trait),
    samples: o.samples,
    maxNewTokens: cell.max_new_tokens,
    temperature: cell.temperature,
    batchSize: cell.batch_size,
    seed: `${seed}/monitor-system`,
    judges: o.judges,
  });
  const choice = chooseMonitorLayer(data, vector, o.layer !== undefined ? [o.layer] : undefined);
  if (o.layer !== undefined) choice.rule = `fixed by the config (layer ${o.layer})`;
  return { choice, data };
}

// ---------------------------------------------------------------------------------------------------
// Printing and multi-experiment config files
// ---------------------------------------------------------------------------------------------------

export type TableRow = Record<string, string | number | boolean | null | undefined>;

/** A plain-text table (columns padded, numbers to 3 significant digits, null as "–"). */
export function formatTable(rows: readonly TableRow[]): string {
  if (!rows.length) return '(no rows)\n';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const show = (v: TableRow[string]) => (v === null || v === undefined ? '–' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)))) : String(v));
  const cells = rows.map((r) => cols.map((c) => show(r[c])));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (xs: string[]) => xs.map((x, i) => x.padEnd(width[i])).join('  ').trimEnd();
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/**
 * A file of several experiment configs, one per top-level key (configs/organism/quickstart.yaml:
 * `steering: {extends: steering.yaml, …}`, `monitoring: {…}`): writes each section as its own config file
 * under `outDir` and returns {name, file} in file order. Relative `extends` and the path params named in
 * `pathParams` (wherever in the extends chain they are set) are made absolute, so each written file is an
 * ordinary config that resolves exactly as the section did: `persona run` accepts it.
 */
export function splitConfigSections(file: string, outDir: string, pathParams: readonly string[] = ['model', 'artifacts']): { name: string; file: string }[] {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PersonaError(`cannot read: ${(e as Error).message.split('\n')[0]}`, { file });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !Object.keys(doc).length)
    throw new PersonaError('expected a mapping of section name → experiment config', { file });
  fs.mkdirSync(outDir, { recursive: true });
  const here = path.dirname(path.resolve(file));
  return Object.entries(doc as Record<string, unknown>).map(([name, section]) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new PersonaError(`section name '${name}' must be a plain file stem`, { file, field: name });
    if (section === null || typeof section !== 'object' || Array.isArray(section)) throw new PersonaError('a section must be an experiment config (a mapping)', { file, field: name });
    const s = { ...(section as Record<string, unknown>) };
    const abs = (p: unknown) => (typeof p === 'string' ? path.resolve(here, p) : p);
    if (s.extends !== undefined) s.extends = Array.isArray(s.extends) ? s.extends.map(abs) : abs(s.extends);
    // The section's own run and cache folders are relative to the sections file, not to where it is written.
    for (const k of ['output_dir', 'cache_dir']) if (s[k] !== undefined) s[k] = abs(s[k]);
    // Path params: resolved against the file of the chain that sets them (the loader resolves against the named file only).
    const params = { ...((s.params as Record<string, unknown> | undefined) ?? {}) };
    const exts = s.extends === undefined ? [] : Array.isArray(s.extends) ? s.extends : [s.extends];
    const inherited = exts.map((e) => readConfigTree(String(e)));
    for (const key of pathParams) {
      if (typeof params[key] === 'string') params[key] = path.resolve(here, params[key] as string);
      else
        for (const tree of [...inherited].reverse()) {
          const v = (tree.raw.params as Record<string, unknown> | undefined)?.[key];
          if (typeof v !== 'string') continue;
          params[key] = path.resolve(path.dirname(locate(tree, ['params', key]).file), v);
          break;
        }
    }
    if (Object.keys(params).length) s.params = params;
    const out = path.join(outDir, `${name}.yaml`);
    const text = `# Section '${name}' of ${path.relative(process.cwd(), path.resolve(file))}, written by the quickstart (edit the original)\n${YAML.stringify(s)}`;
    if (!fs.existsSync(out) || fs.readFileSync(out, 'utf8') !== text) writeFileAtomic(out, text);
    return { name, file: out };
  });
}
