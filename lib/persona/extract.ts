/**
 * Persona-vector extraction (paper §2.2, generate_vec): contrastive rollouts under positive and negative
 * system prompts, judged; pairs kept by the paper's filter; one activation pass over kept rows; vectors
 * = mean(pos) − mean(neg) per layer for response_avg (the paper's), prompt_avg and prompt_last.
 */
import * as path from 'node:path';
import { PersonaError } from '../errors';
import type { Model } from '../model/checkpoint';
import { CaptureSequence, Captured, Reduction, captureActivations, meanOverSequences } from '../model/capture';
import type { Tokenizer } from '../tokenizer';
import { TraitArtifacts, artifactPath } from './artifacts';
import { RolloutItem, RolloutJudges, assistantSystemPrompt, runRollouts } from './rollouts';
import type { RolloutRow } from './rollouts-csv';
import { ExtractionMethod, PersonaVector } from './vector';

export const DEFAULT_THRESHOLD = 50;
export const COHERENCE_MIN = 50;

export const METHOD_REDUCTION: Record<ExtractionMethod, Reduction> = {
  response_avg_diff: 'response_mean',
  prompt_avg_diff: 'prompt_mean',
  prompt_last_diff: 'prompt_last',
};

/**
 * Rollout items for one side, question-major then instruction then sample, so row k of the pos and
 * neg files is the same (question, instruction pair, sample) and the paper's paired filter applies.
 */
export function extractionItems(a: TraitArtifacts, trait: string, side: 'pos' | 'neg', samples: number, antonym = 'helpful'): RolloutItem[] {
  if (!Number.isInteger(samples) || samples < 1) throw new PersonaError(`samples per question must be a positive integer, got ${samples}`, { field: 'samples' });
  const name = side === 'pos' ? trait : antonym;
  const items: RolloutItem[] = [];
  a.questions.forEach((question, i) =>
    a.instruction.forEach((pair, j) => {
      for (let s = 0; s < samples; s++) items.push({ question, questionId: `${trait}_${i}_${side}_${j}`, system: assistantSystemPrompt(name, side === 'pos' ? pair.pos : pair.neg) });
    }),
  );
  return items;
}

/**
 * The paper's filter on aligned pos/neg rows: pair k is kept when pos trait ≥ threshold, neg trait
 * < 100 − threshold, and both coherences ≥ 50. A missing (refused) score keeps nothing.
 */
export function keptPairs(pos: readonly RolloutRow[], neg: readonly RolloutRow[], threshold = DEFAULT_THRESHOLD, coherenceMin = COHERENCE_MIN): number[] {
  if (pos.length !== neg.length) throw new PersonaError(`pos and neg rollouts differ in length (${pos.length} vs ${neg.length}); they must be aligned row by row`, { field: 'rollouts' });
  const ok = (v: number | null, f: (x: number) => boolean) => v !== null && f(v);
  const kept: number[] = [];
  for (let k = 0; k < pos.length; k++) {
    if (ok(pos[k].score, (x) => x >= threshold) && ok(neg[k].score, (x) => x < 100 - threshold) && ok(pos[k].coherence, (x) => x >= coherenceMin) && ok(neg[k].coherence, (x) => x >= coherenceMin)) kept.push(k);
  }
  return kept;
}

/** mean over rows `pos` − mean over rows `neg` of one captured reduction: [layers, hidden]. */
export function meanDifference(c: Captured, r: Reduction, pos: readonly number[], neg: readonly number[]): Float32Array {
  const a = meanOverSequences(c, r, pos);
  const b = meanOverSequences(c, r, neg);
  for (let i = 0; i < a.length; i++) a[i] -= b[i];
  return a;
}

/** Prompt + answer token ids with the prompt length, tokenized as the paper does (prompt, then prompt+answer). */
export function sequenceOf(tokenizer: Tokenizer, prompt: string, answer: string): CaptureSequence {
  return { ids: tokenizer.encode(prompt + answer), promptLength: tokenizer.encode(prompt).length };
}

export interface VectorsFromRolloutsOptions {
  model: Model;
  tokenizer: Tokenizer;
  pos: readonly RolloutRow[];
  neg: readonly RolloutRow[];
  trait: string;
  threshold?: number;
  /** Minimum coherence of both rows of a pair (paper: 50). */
  coherenceMin?: number;
  batchSize?: number;
  modelName?: string;
  onBatch?: (done: number, total: number) => void;
}

export interface ExtractedVectors {
  vectors: Record<ExtractionMethod, PersonaVector>;
  kept: number;
  total: number;
  /** Kept pairs whose answer had no tokens (nothing to average over), left out. */
  emptyAnswers: number;
}

/** Vectors [N+1, hidden] for the three methods from one activation pass over the kept pairs. */
export async function vectorsFromRollouts(o: VectorsFromRolloutsOptions): Promise<ExtractedVectors> {
  const threshold = o.threshold ?? DEFAULT_THRESHOLD;
  const coherenceMin = o.coherenceMin ?? COHERENCE_MIN;
  const pairs = keptPairs(o.pos, o.neg, threshold, coherenceMin);
  const seqs: CaptureSequence[] = [];
  let emptyAnswers = 0;
  for (const k of pairs) {
    const p = sequenceOf(o.tokenizer, o.pos[k].prompt, o.pos[k].answer);
    const n = sequenceOf(o.tokenizer, o.neg[k].prompt, o.neg[k].answer);
    if (p.ids.length === p.promptLength || n.ids.length === n.promptLength) {
      emptyAnswers++;
      continue;
    }
    seqs.push(p, n);
  }
  const kept = seqs.length / 2;
  if (kept === 0)
    throw new PersonaError(`no rollout pair passed the filter (pos ${o.trait} ≥ ${threshold}, neg < ${100 - threshold}, coherence ≥ ${coherenceMin}; ${pairs.length} passed, ${emptyAnswers} of those had empty answers) out of ${o.pos.length}`, { field: 'threshold' });
  const N = o.model.config.numLayers;
  const cap = await captureActivations(o.model, seqs, { reductions: ['response_mean', 'prompt_mean', 'prompt_last'], batchSize: o.batchSize, onBatch: o.onBatch });
  const posIdx = Array.from({ length: kept }, (_, i) => 2 * i);
  const negIdx = posIdx.map((i) => i + 1);
  const vectors = {} as Record<ExtractionMethod, PersonaVector>;
  for (const method of Object.keys(METHOD_REDUCTION) as ExtractionMethod[]) {
    const diff = meanDifference(cap, METHOD_REDUCTION[method], posIdx, negIdx);
    vectors[method] = new PersonaVector(diff, N + 1, cap.hidden, {
      layerConvention: 'hf_hidden_states',
      model: o.modelName ?? o.model.dir ?? undefined,
      trait: o.trait,
      method,
      counts: { kept, total: o.pos.length },
      threshold,
      coherenceMin,
    });
  }
  return { vectors, kept, total: o.pos.length, emptyAnswers };
}

export interface ExtractOptions {
  model: Model;
  tokenizer: Tokenizer;
  artifacts: TraitArtifacts;
  trait: string;
  judges: RolloutJudges;
  outDir: string;
  samples?: number;
  antonym?: string;
  threshold?: number;
  coherenceMin?: number;
  maxNewTokens?: number;
  temperature?: number;
  seed?: string;
  batchSize?: number;
  modelName?: string;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface ExtractResult extends ExtractedVectors {
  files: { pos: string; neg: string; vectors: Record<ExtractionMethod, string> };
}

/**
 * The whole flow: pos and neg rollouts (resumable CSVs `<trait>_pos_instruct.csv`, `<trait>_neg_instruct.csv`
 * in outDir), filter, one capture pass, three vectors saved as `<trait>_<method>.safetensors` + JSON sidecar.
 */
export async function extractPersonaVector(o: ExtractOptions): Promise<ExtractResult> {
  const samples = o.samples ?? 1;
  const files = {
    pos: path.join(o.outDir, `${o.trait}_pos_instruct.csv`),
    neg: path.join(o.outDir, `${o.trait}_neg_instruct.csv`),
    vectors: {} as Record<ExtractionMethod, string>,
  };
  artifactPath(o.outDir, o.trait, 'extract'); // checks the trait is usable in file names
  const common = { model: o.model, tokenizer: o.tokenizer, trait: o.trait, judges: o.judges, maxNewTokens: o.maxNewTokens ?? 64, temperature: o.temperature ?? 1, seed: o.seed, batchSize: o.batchSize };
  const pos = await runRollouts({ ...common, items: extractionItems(o.artifacts, o.trait, 'pos', samples, o.antonym), csvFile: files.pos, seed: `${o.seed ?? '0'}/pos`, onProgress: (d, t) => o.onProgress?.('pos rollouts', d, t) });
  const neg = await runRollouts({ ...common, items: extractionItems(o.artifacts, o.trait, 'neg', samples, o.antonym), csvFile: files.neg, seed: `${o.seed ?? '0'}/neg`, onProgress: (d, t) => o.onProgress?.('neg rollouts', d, t) });
  const ex = await vectorsFromRollouts({ model: o.model, tokenizer: o.tokenizer, pos: pos.rows, neg: neg.rows, trait: o.trait, threshold: o.threshold, coherenceMin: o.coherenceMin, batchSize: o.batchSize, modelName: o.modelName, onBatch: (d, t) => o.onProgress?.('activations', d, t) });
  for (const [method, v] of Object.entries(ex.vectors) as [ExtractionMethod, PersonaVector][]) {
    const f = path.join(o.outDir, `${o.trait}_${method}.safetensors`);
    v.save(f);
    files.vectors[method] = f;
  }
  return { ...ex, files };
}
