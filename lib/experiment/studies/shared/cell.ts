/**
 * What every study cell is handed, whatever the model: the checkpoint (any supported Hugging Face chat model,
 * the organism included) with its tokenizer and chat template, loaded once per process; the trait's
 * artifacts (any trait that has them: `persona trait new` makes them); and the judges (the paper's logprob
 * judge through an OpenAI-compatible API, or the organism's exact judge for the organism's own traits).
 * The schema fields these need, and the checks a config gets before any model is loaded.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { PersonaError } from '../../../errors';
import { checkpointFingerprint } from '../../../io/fingerprint';
import { Model } from '../../../model/checkpoint';
import { readModelConfig } from '../../../model/config';
import { COHERENCE_PROMPT_NAME, loadJudgePrompts, selectJudgePrompt } from '../../../judge/judge';
import { JudgeCache } from '../../../judge/cache';
import { createCoherenceJudge, createOpenAIJudge } from '../../../judge/openai-logprob';
import { resolveEndpoint } from '../../../llm/endpoint';
import { OpenAIClient } from '../../../llm/openai';
import { TRAITS, isTrait } from '../../../organism/grammar';
import { organismJudges } from '../../../organism/presets';
import { TraitArtifacts, artifactPath, readTraitArtifacts } from '../../../persona/artifacts';
import type { RolloutJudges } from '../../../persona/rollouts';
import { EXTRACTION_METHODS, ExtractionMethod } from '../../../persona/vector';
import type { Tokenizer } from '../../../tokenizer';
import { Tokenizer as TokenizerClass } from '../../../tokenizer';
import type { Cache } from '../../cache';
import type { ValidateContext } from '../../study';

// ---------------------------------------------------------------------------------------------------
// Schema fields every study shares
// ---------------------------------------------------------------------------------------------------

/** A trait is any name that has artifact files (checked against the files in validateCellInputs). */
export const TRAIT_NAME = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'a trait name is letters, digits, _ . - (it names the artifact files <trait>.json)');

/** The paper's judge model, used when judge.type is openai and judge.model is not given. */
export const DEFAULT_JUDGE_MODEL = 'gpt-4.1-mini';

/** Who scores the rollouts: the organism's exact judge, or the paper's logprob judge through an OpenAI-compatible API. */
export const judgeSchema = z
  .object({
    type: z.enum(['organism', 'openai']).default('organism').describe("organism (exact, offline; the organism's seven traits only) | openai (the paper's logprob judge; needs OPENAI_API_KEY for api.openai.com)"),
    model: z.string().optional().describe(`Judge model (openai; default ${DEFAULT_JUDGE_MODEL}). Not used by the organism judge`),
    base_url: z.string().optional().describe('OpenAI-compatible endpoint (default $OPENAI_BASE_URL, else api.openai.com)'),
    concurrency: z.number().int().min(1).default(8).describe('Judge requests in flight (openai)'),
    prompts: z.string().optional().describe("Judge prompts JSON (the paper's judge_prompts.json) for the coherence prompt, relative to the config file; trait prompts are the artifacts' eval_prompt"),
  })
  .strict();

export type JudgeSettings = z.infer<typeof judgeSchema>;

/** Fields of the model, the rollouts and the persona vector; spread into a study's z.object({...}). */
export const studyFields = {
  model: z.string().describe('Checkpoint directory (Hugging Face layout: config.json, *.safetensors, tokenizer.json with its chat template), relative to the config file'),
  artifacts: z.string().optional().describe('Trait artifact directory (trait_data_extract/, trait_data_eval/), relative to the config file; default <model>/artifacts'),
  trait: TRAIT_NAME.describe('Trait: any name with artifact files (<artifacts>/trait_data_{extract,eval}/<trait>.json; `persona trait new` makes them); the organism ships seven'),
  max_new_tokens: z.number().int().min(1).default(48).describe('Tokens generated per answer (organism answers are ≤ 40 words; paper: 1000)'),
  temperature: z.number().min(0).default(1).describe('Sampling temperature of every rollout (paper: 1)'),
  batch_size: z.number().int().min(1).default(32).describe('Rollouts generated together; part of the sampling seeds, hence of cache keys'),
  extract_samples: z.number().int().min(1).default(1).describe('Persona-vector extraction: samples per (extraction question, instruction pair) on each side'),
  extract_method: z.enum(EXTRACTION_METHODS as [ExtractionMethod, ...ExtractionMethod[]]).default('response_avg_diff').describe('Persona-vector method (paper: response_avg_diff; pca_diff and probe from the same judged rollouts); sweep it to compare methods'),
  extract_threshold: z.number().min(0).max(100).default(50).describe('Extraction filter: pos trait ≥ t, neg trait < 100 − t (paper: 50)'),
  extract_coherence_min: z.number().min(0).max(100).default(50).describe('Extraction filter: coherence of both answers ≥ this (paper: 50)'),
  judge: judgeSchema.default(judgeSchema.parse({})).describe('Judge of trait and coherence (mapping, keys judge.type, judge.model, …)'),
};

/** The path fields of studyFields (Study.pathFields): rebased when set in an extended config. */
export const STUDY_PATH_FIELDS = ['model', 'artifacts', 'judge.prompts'] as const;

export interface StudyCell {
  model: string;
  artifacts?: string;
  trait: string;
  max_new_tokens: number;
  temperature: number;
  batch_size: number;
  extract_samples: number;
  extract_method: ExtractionMethod;
  extract_threshold: number;
  extract_coherence_min: number;
  judge: JudgeSettings;
}

/** What the artifacts must carry for a study: the monitoring study's graded system prompts. */
export type ArtifactNeed = 'graded_system_prompts';

/**
 * Checks, before any model is loaded: the model directory, every layer field against the model, the judge
 * against the traits, and every trait's artifact files (and `needs`, the optional fields a study reads);
 * errors name the key. Traits: the config's `trait` values, or (multi-trait studies) the given list.
 */
export function validateCellInputs(ctx: ValidateContext, o: { layerFields?: string[]; traits?: readonly string[]; needs?: readonly ArtifactNeed[] } = {}): void {
  ctx.requireFiles('model', 'model directory');
  const wanted = o.traits ? o.traits.map((t) => ({ value: t as unknown, keyPath: ctx.keyOf('traits') })) : ctx.valuesOf('trait');
  for (const { value: j, keyPath } of ctx.valuesOf('judge')) {
    const judge = (j ?? {}) as Partial<JudgeSettings>;
    if ((judge.type ?? 'organism') === 'organism') {
      if (judge.model !== undefined) ctx.fail([...keyPath, 'model'], "judge.model names an API judge model; the organism judge (judge.type organism) takes none: set judge.type: openai, or remove judge.model");
      for (const t of wanted)
        if (!isTrait(String(t.value))) ctx.fail(t.keyPath, `the organism judge scores only the organism's traits (${TRAITS.join(', ')}), not '${String(t.value)}': set judge.type: openai (with judge.model / judge.base_url)`);
    }
  }
  for (const { value: m } of ctx.valuesOf('model')) {
    const modelDir = ctx.resolvePath(String(m));
    const cfg = readModelConfig(modelDir);
    for (const field of o.layerFields ?? [])
      for (const l of ctx.valuesOf(field))
        if (typeof l.value === 'number' && (l.value > cfg.numLayers || l.value < 1))
          ctx.fail(l.keyPath, `layer ${l.value} is outside the model (${String(m)} has ${cfg.numLayers} decoder layers: persona-vector layers 1..${cfg.numLayers})`);
    for (const a of ctx.valuesOf('artifacts')) {
      const dir = a.value === undefined ? path.join(modelDir, 'artifacts') : ctx.resolvePath(String(a.value));
      for (const t of wanted) {
        const trait = String(t.value);
        // A missing directory is the artifacts key's fault; a directory without this trait's files, the trait's.
        const where = a.value !== undefined && !fs.existsSync(dir) ? a.keyPath : t.keyPath;
        for (const split of ['extract', 'eval'] as const) {
          const f = artifactPath(dir, trait, split);
          if (!fs.existsSync(f)) ctx.fail(where, `trait '${trait}' has no artifacts: ${f} not found (make them with: persona trait new ${trait} --description "…" --llm-model MODEL --out ${dir})`);
        }
        let arts: { extract: TraitArtifacts; eval: TraitArtifacts };
        try {
          arts = readTraitArtifacts(dir, trait);
        } catch (e) {
          ctx.fail(where, (e as Error).message);
        }
        if (o.needs?.includes('graded_system_prompts') && !arts.eval.graded_system_prompts)
          ctx.fail(
            where,
            `the artifacts of trait '${trait}' (${artifactPath(dir, trait, 'eval')}) have no graded_system_prompts, which the monitoring prompts need; add them with: persona trait graded-prompts ${trait} --out ${dir} --description "…" --llm-model MODEL`,
          );
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Model, tokenizer, judges, artifacts
// ---------------------------------------------------------------------------------------------------

/** What the study helpers need from a cell context (CellContext fits; so does a summary's own). */
export interface StudyEnv {
  cache: Cache;
  shared<T>(key: string, create: () => T, dispose?: (v: T) => void): T;
  log?(message: string): void;
}

export interface LoadedModel {
  dir: string;
  model: Model;
  /** The checkpoint's tokenizer and chat template. */
  tokenizer: Tokenizer;
  /** sha256 over the checkpoint's files: the model part of every cache key. */
  fingerprint: string;
}

/**
 * Tokenizers by directory, kept across runs of one process (a real vocabulary's tokenizer.json takes seconds to
 * parse; a tokenizer holds no tensors), reloaded when its files change.
 */
const tokenizers = new Map<string, { stamp: string; tokenizer: Tokenizer }>();

function loadTokenizer(dir: string): Tokenizer {
  const stamp = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']
    .map((f) => {
      const st = fs.statSync(path.join(dir, f), { throwIfNoEntry: false });
      return st ? `${f}:${st.size}:${st.mtimeMs}` : '';
    })
    .join('|');
  const hit = tokenizers.get(dir);
  if (hit && hit.stamp === stamp) return hit.tokenizer;
  const tokenizer = TokenizerClass.load(dir);
  tokenizers.set(dir, { stamp, tokenizer });
  return tokenizer;
}

/** The checkpoint in `dir`, loaded once per process (disposed when the run ends). */
export function loadModel(env: StudyEnv, dir: string): Promise<LoadedModel> {
  const abs = path.resolve(dir);
  return env.shared(
    `model:${abs}`,
    async (): Promise<LoadedModel> => ({ dir: abs, model: await Model.load(abs), tokenizer: loadTokenizer(abs), fingerprint: checkpointFingerprint(abs) }),
    (o) => void o.then((x) => x.model.dispose(), () => undefined),
  );
}

/** The judge model an openai judge uses. */
export function judgeModel(j: JudgeSettings): string {
  return j.model ?? DEFAULT_JUDGE_MODEL;
}

/**
 * The judges a cell asks for: the organism judge, or the paper's logprob judge (trait prompt = the eval
 * artifacts' eval_prompt) with its answers cached in <cache>/judge/<model>.jsonl, one client per process.
 */
export function cellJudges(env: StudyEnv, cell: Pick<StudyCell, 'trait' | 'judge'>, evalArtifacts: TraitArtifacts, resolvePath: (p: string) => string): RolloutJudges {
  const j = cell.judge;
  if (j.type === 'organism') {
    if (!isTrait(cell.trait)) throw new PersonaError(`the organism judge scores only the organism's traits (${TRAITS.join(', ')}), not '${cell.trait}'`, { field: 'judge.type' });
    return organismJudges(cell.trait);
  }
  const model = judgeModel(j);
  // Resolved (and key-checked) first so that every cell on one endpoint + model shares one client, hence one limiter.
  const { base } = resolveEndpoint('openai', { baseURL: j.base_url }, { baseURL: 'judge.base_url', localHint: 'judge.base_url' });
  const client = env.shared(`openai-client:${base}:${model}`, () => new OpenAIClient({ model, baseURL: base, concurrency: j.concurrency }));
  const store = env.shared(`judge-cache:${env.cache.root}:${model}`, () => new JudgeCache(path.join(env.cache.root, 'judge', `${model.replace(/[^A-Za-z0-9._-]+/g, '_')}.jsonl`)));
  const coherenceTemplate = j.prompts !== undefined ? selectJudgePrompt(loadJudgePrompts(resolvePath(j.prompts)), COHERENCE_PROMPT_NAME, j.prompts) : undefined;
  return {
    trait: createOpenAIJudge({ client, template: evalArtifacts.eval_prompt, cache: store, name: `${cell.trait}_eval_prompt` }),
    coherence: createCoherenceJudge({ client, template: coherenceTemplate, cache: store }),
  };
}

/** Top logprobs the paper's judge reads of the first answer token. */
export const JUDGE_TOP_LOGPROBS = 20;

/**
 * Checks an API judge once per process, before any model is loaded: one request asking for the first token's top
 * logprobs. A server or model that returns none cannot give the paper's logprob-weighted score (its 0–10 scale
 * reads logprobs too), so the run stops here, with nothing computed or cached.
 */
export function checkJudge(env: StudyEnv, j: JudgeSettings): Promise<void> {
  if (j.type !== 'openai') return Promise.resolve();
  const model = judgeModel(j);
  const { base } = resolveEndpoint('openai', { baseURL: j.base_url }, { baseURL: 'judge.base_url', localHint: 'judge.base_url' });
  const client = env.shared(`openai-client:${base}:${model}`, () => new OpenAIClient({ model, baseURL: base, concurrency: j.concurrency }));
  return env.shared(`judge-check:${base}:${model}`, async () => {
    const top = await client.firstTokenTopLogprobs([{ role: 'user', content: 'Reply with one number from 0 to 100.' }], JUDGE_TOP_LOGPROBS);
    if (!top.length)
      throw new PersonaError(
        `judge ${model} at ${base} returned no logprobs: the paper's judge reads the top-${JUDGE_TOP_LOGPROBS} logprobs of the answer's first token; use a model and server that return them (e.g. gpt-4.1-mini, or a vLLM / llama.cpp server with logprobs on)`,
        { field: 'judge.model' },
      );
  });
}

/** What judged a cell's rows (results.csv column `judged_by`): the trait judge's identity. */
export function judgedBy(j: RolloutJudges): string {
  return j.trait.id;
}

/** Trait artifacts of a cell: `artifacts` (resolved by the caller) or <model>/artifacts. */
export function cellArtifacts(cell: Pick<StudyCell, 'trait' | 'artifacts' | 'model'>, resolvePath: (p: string) => string): { extract: TraitArtifacts; eval: TraitArtifacts; dir: string } {
  const dir = cell.artifacts !== undefined ? resolvePath(cell.artifacts) : path.join(resolvePath(cell.model), 'artifacts');
  return { ...readTraitArtifacts(dir, cell.trait), dir };
}
