/**
 * Persona-vector extraction (paper §2.2, generate_vec): contrastive rollouts under positive and negative
 * system prompts, judged; pairs kept by the paper's filter; one activation pass over kept rows; vectors per
 * layer by each requested method (ExtractionMethod in ./vector.ts): mean(pos) − mean(neg) for response_avg (the
 * paper's), prompt_avg and prompt_last; the first principal component of the paired differences (pca_diff) and a
 * logistic-regression probe (probe), both on the response averages (./directions.ts).
 */
import * as path from 'node:path';
import { PersonaError } from '../errors';
import type { Model } from '../model/checkpoint';
import { CaptureSequence, Captured, Reduction, captureActivations, meanOverSequences } from '../model/capture';
import type { Tokenizer } from '../tokenizer';
import { TraitArtifacts, artifactPath } from './artifacts';
import { RolloutItem, RolloutJudges, assistantSystemPrompt, runRollouts } from './rollouts';
import type { RolloutRow } from './rollouts-csv';
import { DEFAULT_PROBE_L2, pcaDiffDirection, probeDirection } from './directions';
import { EXTRACTION_METHODS, ExtractionMethod, PersonaVector } from './vector';

export const DEFAULT_THRESHOLD = 50;
export const COHERENCE_MIN = 50;

/** The activations each method reads. */
export const METHOD_REDUCTION: Record<ExtractionMethod, Reduction> = {
  response_avg_diff: 'response_mean',
  prompt_avg_diff: 'prompt_mean',
  prompt_last_diff: 'prompt_last',
  pca_diff: 'response_mean',
  probe: 'response_mean',
};

export type MeanDiffMethod = 'response_avg_diff' | 'prompt_avg_diff' | 'prompt_last_diff';
/** What extraction computes when no `method` is given: the three mean differences (as the paper's generate_vec). */
export const DEFAULT_METHODS: readonly MeanDiffMethod[] = ['response_avg_diff', 'prompt_avg_diff', 'prompt_last_diff'];

/** The `method` option as a list: one name or several, each checked, duplicates dropped, order kept. */
export function resolveMethods<M extends ExtractionMethod>(method: M | readonly M[] | undefined): M[] {
  const list = (method === undefined ? DEFAULT_METHODS : typeof method === 'string' ? [method] : method) as readonly M[];
  if (list.length === 0) throw new PersonaError(`no extraction method given (${EXTRACTION_METHODS.join(', ')})`, { field: 'method' });
  for (const m of list) if (!EXTRACTION_METHODS.includes(m)) throw new PersonaError(`unknown extraction method '${String(m)}' (${EXTRACTION_METHODS.join(', ')})`, { field: 'method' });
  return [...new Set(list)];
}

function checkMethodOptions(o: MethodOptions): void {
  if (o.probeL2 !== undefined && !(o.probeL2 > 0 && Number.isFinite(o.probeL2))) throw new PersonaError(`probe L2 penalty must be a positive number, got ${o.probeL2}`, { field: 'probe_l2' });
}

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

export interface MethodOptions {
  /** L2 penalty of the probe (on rows scaled to RMS norm 1); default DEFAULT_PROBE_L2. */
  probeL2?: number;
  /** pca_diff: centre the differences first, exactly as repeng's sklearn PCA (default false; see ./directions.ts). */
  pcaCenter?: boolean;
}

/** The rows of one captured reduction at captured layer j for the given sequences (views, no copy). */
function layerRows(c: Captured, r: Reduction, which: readonly number[], j: number): Float32Array[] {
  const v = c.values[r];
  if (!v) throw new PersonaError(`reduction '${r}' was not captured`, { field: 'reductions' });
  const LH = c.layers.length * c.hidden;
  return which.map((i) => v.subarray(i * LH + j * c.hidden, i * LH + (j + 1) * c.hidden));
}

/**
 * One method's [layers, hidden] vector from captured activations of pairs (pos[k], neg[k]), with what the method
 * reports about itself for the vector's metadata. pca_diff and probe give unit directions per layer; they are
 * scaled to the norm of the response-average mean difference at that layer, so a steering coefficient pushes
 * equally hard whichever method made the direction and a sweep over methods compares directions only.
 */
export function methodVector(c: Captured, method: ExtractionMethod, pos: readonly number[], neg: readonly number[], o: MethodOptions = {}): { data: Float32Array; meta: Record<string, unknown> } {
  if (!EXTRACTION_METHODS.includes(method)) throw new PersonaError(`unknown extraction method '${String(method)}' (${EXTRACTION_METHODS.join(', ')})`, { field: 'method' });
  const r = METHOD_REDUCTION[method];
  if (method !== 'pca_diff' && method !== 'probe') return { data: meanDifference(c, r, pos, neg), meta: {} };
  const mean = meanDifference(c, 'response_mean', pos, neg);
  const H = c.hidden;
  const data = new Float32Array(c.layers.length * H);
  const stats: Record<string, number>[] = [];
  for (let j = 0; j < c.layers.length; j++) {
    let nn = 0;
    for (let i = j * H; i < (j + 1) * H; i++) nn += mean[i] * mean[i];
    const norm = Math.sqrt(nn);
    const P = layerRows(c, r, pos, j);
    const N = layerRows(c, r, neg, j);
    let dir: Float64Array;
    if (method === 'pca_diff') {
      const d = pcaDiffDirection(P, N, { center: o.pcaCenter });
      dir = d.direction;
      stats.push({ varianceExplained: d.varianceExplained, pairsAgreeing: d.pairsAgreeing });
    } else {
      const d = probeDirection(P, N, { l2: o.probeL2 });
      dir = d.direction;
      stats.push({ accuracy: d.accuracy, iterations: d.iterations, converged: d.converged ? 1 : 0 });
    }
    for (let i = 0; i < H; i++) data[j * H + i] = dir[i] * norm;
  }
  const perLayer = (k: string) => stats.map((s) => s[k]);
  const meta: Record<string, unknown> =
    method === 'pca_diff'
      ? { scale: 'response_avg_diff_norm', centered: o.pcaCenter ?? false, varianceExplained: perLayer('varianceExplained'), pairsAgreeing: perLayer('pairsAgreeing') }
      : { scale: 'response_avg_diff_norm', probeL2: o.probeL2 ?? DEFAULT_PROBE_L2, trainAccuracy: perLayer('accuracy'), converged: stats.every((s) => s.converged === 1) };
  return { data, meta };
}

/** Prompt + answer token ids with the prompt length, tokenized as the paper does (prompt, then prompt+answer). */
export function sequenceOf(tokenizer: Tokenizer, prompt: string, answer: string): CaptureSequence {
  return { ids: tokenizer.encode(prompt + answer), promptLength: tokenizer.encode(prompt).length };
}

export interface VectorsFromRolloutsOptions<M extends ExtractionMethod = MeanDiffMethod> extends MethodOptions {
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
  /** Extraction method(s) (ExtractionMethod); default DEFAULT_METHODS, the three mean differences. */
  method?: M | readonly M[];
  onBatch?: (done: number, total: number) => void;
}

export interface ExtractedVectors<M extends ExtractionMethod = MeanDiffMethod> {
  vectors: Record<M, PersonaVector>;
  kept: number;
  total: number;
  /** Kept pairs whose answer had no tokens (nothing to average over), left out. */
  emptyAnswers: number;
}

/** Vectors [N+1, hidden] for the requested methods from one activation pass over the kept pairs. */
export async function vectorsFromRollouts<M extends ExtractionMethod = MeanDiffMethod>(o: VectorsFromRolloutsOptions<M>): Promise<ExtractedVectors<M>> {
  const methods = resolveMethods(o.method);
  checkMethodOptions(o);
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
  const reductions = [...new Set(methods.map((m) => METHOD_REDUCTION[m]))];
  const cap = await captureActivations(o.model, seqs, { reductions, batchSize: o.batchSize, onBatch: o.onBatch });
  const posIdx = Array.from({ length: kept }, (_, i) => 2 * i);
  const negIdx = posIdx.map((i) => i + 1);
  const vectors = {} as Record<M, PersonaVector>;
  for (const method of methods) {
    const { data, meta } = methodVector(cap, method, posIdx, negIdx, o);
    vectors[method] = new PersonaVector(data, N + 1, cap.hidden, {
      layerConvention: 'hf_hidden_states',
      model: o.modelName ?? o.model.dir ?? undefined,
      trait: o.trait,
      method,
      counts: { kept, total: o.pos.length },
      threshold,
      coherenceMin,
      ...meta,
    });
  }
  return { vectors, kept, total: o.pos.length, emptyAnswers };
}

export interface ExtractOptions<M extends ExtractionMethod = MeanDiffMethod> extends MethodOptions {
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
  /** Extraction method(s) (ExtractionMethod); default DEFAULT_METHODS, the three mean differences. */
  method?: M | readonly M[];
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface ExtractResult<M extends ExtractionMethod = MeanDiffMethod> extends ExtractedVectors<M> {
  files: { pos: string; neg: string; vectors: Record<M, string> };
}

/**
 * The whole flow: pos and neg rollouts (resumable CSVs `<trait>_pos_instruct.csv`, `<trait>_neg_instruct.csv`
 * in outDir), filter, one capture pass, one vector per method saved as `<trait>_<method>.safetensors` + JSON sidecar.
 * The rollouts do not depend on the method, so extracting another method later reuses the CSVs.
 */
export async function extractPersonaVector<M extends ExtractionMethod = MeanDiffMethod>(o: ExtractOptions<M>): Promise<ExtractResult<M>> {
  const methods = resolveMethods(o.method); // before any rollout, so a bad name costs nothing
  checkMethodOptions(o);
  const samples = o.samples ?? 1;
  const files = {
    pos: path.join(o.outDir, `${o.trait}_pos_instruct.csv`),
    neg: path.join(o.outDir, `${o.trait}_neg_instruct.csv`),
    vectors: {} as Record<M, string>,
  };
  artifactPath(o.outDir, o.trait, 'extract'); // checks the trait is usable in file names
  const common = { model: o.model, tokenizer: o.tokenizer, trait: o.trait, judges: o.judges, maxNewTokens: o.maxNewTokens ?? 64, temperature: o.temperature ?? 1, seed: o.seed, batchSize: o.batchSize };
  const pos = await runRollouts({ ...common, items: extractionItems(o.artifacts, o.trait, 'pos', samples, o.antonym), csvFile: files.pos, seed: `${o.seed ?? '0'}/pos`, onProgress: (d, t) => o.onProgress?.('pos rollouts', d, t) });
  const neg = await runRollouts({ ...common, items: extractionItems(o.artifacts, o.trait, 'neg', samples, o.antonym), csvFile: files.neg, seed: `${o.seed ?? '0'}/neg`, onProgress: (d, t) => o.onProgress?.('neg rollouts', d, t) });
  const ex = await vectorsFromRollouts<M>({ model: o.model, tokenizer: o.tokenizer, pos: pos.rows, neg: neg.rows, trait: o.trait, threshold: o.threshold, coherenceMin: o.coherenceMin, batchSize: o.batchSize, modelName: o.modelName, method: methods, probeL2: o.probeL2, pcaCenter: o.pcaCenter, onBatch: (d, t) => o.onProgress?.('activations', d, t) });
  for (const [method, v] of Object.entries(ex.vectors) as [M, PersonaVector][]) {
    const f = path.join(o.outDir, `${o.trait}_${method}.safetensors`);
    v.save(f);
    files.vectors[method] = f;
  }
  return { ...ex, files };
}
