/**
 * The monitoring machinery (paper §4) on any model: prompt conditions graded from discouraging to encouraging
 * a trait, read from the trait's artifacts (graded_system_prompts; many_shot_examples, else answers from the
 * extraction's judged positive rollouts), judged rollouts and last-prompt activations of every condition, the
 * monitoring statistics, and the choice of the monitor layer by monitoring quality (the shift study reuses it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../../../errors';
import { captureActivations } from '../../../model/capture';
import { ManyShotExample, TraitArtifacts, manyShotFromRollouts } from '../../../persona/artifacts';
import { correlationWithNull, gradedSystemPrompts } from '../../../persona/monitor';
import { RolloutItem, RolloutJudges, renderItemPrompt } from '../../../persona/rollouts';
import { readRolloutsCsv } from '../../../persona/rollouts-csv';
import { bootstrapCI, mean, pearson } from '../../../persona/stats';
import type { PersonaVector } from '../../../persona/vector';
import type { ChatMessage } from '../../../tokenizer';
import { cachedRollouts, VectorInfo } from './cached';
import type { LoadedModel, StudyCell, StudyEnv } from './cell';

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
 * The artifacts' graded system prompts (paper Fig. 4: eight, discouraging → encouraging) as conditions;
 * artifacts without them are refused naming the command that adds them.
 */
export function gradedSystemConditions(artifacts: TraitArtifacts, trait: string): GradedCondition[] {
  return gradedSystemPrompts(artifacts, trait).map((c, grade) => ({ ...c, grade }));
}

export interface ShotSpec {
  /** Earlier user/assistant turns. */
  k: number;
  /** Strength level of the example answers (examples carrying this `level`); absent: examples without a level. */
  level?: number;
}

/** The organism's shots (its examples carry strength levels 0..4). */
export const LEVELLED_SHOTS: ShotSpec[] = [
  { k: 0, level: 0 },
  { k: 1, level: 0 },
  { k: 1, level: 1 },
  { k: 1, level: 2 },
  { k: 1, level: 3 },
  { k: 1, level: 4 },
  { k: 2, level: 4 },
];

/** The paper's 0–20 example turns, for examples without levels (as many as there are examples). */
export const PAPER_SHOT_COUNTS = [0, 1, 2, 4, 8, 12, 16, 20];

/** Default shots for a set of examples: LEVELLED_SHOTS when they carry levels, else PAPER_SHOT_COUNTS up to their number. */
export function defaultShots(examples: readonly ManyShotExample[]): ShotSpec[] {
  if (examples.some((e) => e.level !== undefined)) return LEVELLED_SHOTS;
  return PAPER_SHOT_COUNTS.filter((k) => k <= examples.length).map((k) => ({ k }));
}

/**
 * Many-shot prompts: K earlier turns from the examples (the first K of the asked level, in order); the grade
 * is the total trait content K·level (K when the examples have no level).
 */
export function manyShotConditions(examples: readonly ManyShotExample[], shots: readonly ShotSpec[]): GradedCondition[] {
  return shots.map(({ k, level }) => {
    if (!Number.isInteger(k) || k < 0) throw new PersonaError(`many-shot k must be a non-negative integer, got ${k}`, { field: 'shots' });
    const pool = examples.filter((e) => e.level === level);
    if (pool.length < k) throw new PersonaError(`many-shot k = ${k}${level === undefined ? '' : ` at level ${level}`} needs ${k} examples, the artifacts have ${pool.length}`, { field: 'shots' });
    const history: ChatMessage[] = [];
    for (const e of pool.slice(0, k)) history.push({ role: 'user', content: e.question }, { role: 'assistant', content: e.answer });
    return { label: level === undefined ? `k${k}` : `k${k}_s${level}`, grade: k * (level ?? 1), history };
  });
}

/**
 * The many-shot examples of a trait: the artifacts' own, else the extraction's judged positive rollouts
 * (answers to the trait's extraction questions under the positive prompt with score ≥ 50, coherence ≥ 50).
 */
export function traitManyShotExamples(artifacts: TraitArtifacts, vector: Pick<VectorInfo, 'dir'>, trait: string): ManyShotExample[] {
  if (artifacts.many_shot_examples) return artifacts.many_shot_examples;
  const file = path.join(vector.dir, `${trait}_pos_instruct.csv`);
  if (!fs.existsSync(file)) throw new PersonaError('the persona-vector extraction left no positive rollouts to take many-shot examples from', { file });
  const ex = manyShotFromRollouts(readRolloutsCsv(file, trait).rows);
  if (!ex.length) throw new PersonaError(`no answer of the extraction's positive rollouts has ${trait} score ≥ 50 and coherence ≥ 50: give many-shot examples with persona trait many-shot ${trait} --from FILE.jsonl`, { file });
  return ex;
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
  trait: string;
  questions: readonly string[];
  conditions: readonly GradedCondition[];
  samples: number;
  maxNewTokens: number;
  temperature: number;
  batchSize: number;
  seed: string;
  judges: RolloutJudges;
}

/** Judged rollouts of every (condition, question) × samples (cached) and last-prompt activations at every layer. */
export async function monitorData(env: StudyEnv, org: LoadedModel, o: MonitorDataOptions): Promise<MonitorData> {
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
export async function monitorLayer(env: StudyEnv, org: LoadedModel, cell: StudyCell, artifacts: { eval: TraitArtifacts }, vector: PersonaVector, seed: number, o: MonitorLayerOptions & { judges: RolloutJudges }): Promise<{ choice: LayerChoice; data: MonitorData }> {
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
