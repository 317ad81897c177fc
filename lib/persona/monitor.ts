/**
 * Monitoring (paper §4): the projection of the last prompt token's activation at layer L onto the unit
 * persona vector predicts how strongly the response will show the trait. Conditions are system prompts
 * graded from discouraging to encouraging the trait, or many-shot prompts with 0..K trait examples.
 * Every correlation comes with a 95% bootstrap interval and a norm-matched random-direction null.
 */
import * as path from 'node:path';
import { PersonaError } from '../errors';
import type { Model } from '../model/checkpoint';
import { captureActivations } from '../model/capture';
import type { ChatMessage, Tokenizer } from '../tokenizer';
import type { TraitArtifacts } from './artifacts';
import { RolloutItem, RolloutJudges, renderItemPrompt, runRollouts } from './rollouts';
import { bootstrapCI, mean, pearson, randomDirectionNull, stderr } from './stats';
import { PersonaVector, project } from './vector';

export interface CorrelationReport {
  n: number;
  /** Pearson r of the projections with the scores. */
  r: number;
  ci95: { lo: number; hi: number };
  /** The same r for `count` random directions of the vector's norm. */
  null: { count: number; meanAbs: number; p975: number };
  /** |r| above the null's 97.5th percentile of |r|. */
  beatsNull: boolean;
}

export interface CorrelationOptions {
  seed?: string;
  bootstrapReps?: number;
  nullCount?: number;
}

/**
 * Pearson r between projections of `acts` [n, hidden] onto `direction` and `scores`, with a percentile
 * bootstrap CI over items and the random-direction null (independent replications found random
 * directions can do as well as the persona vector, so the null is always reported).
 */
export function correlationWithNull(acts: Float32Array, scores: readonly number[], direction: Float32Array, opts: CorrelationOptions = {}): CorrelationReport {
  const n = scores.length;
  const H = direction.length;
  if (n < 3) throw new PersonaError(`a correlation needs at least 3 items, got ${n}`, { field: 'items' });
  const y = [...scores];
  const rFor = (d: Float32Array) => pearson(Array.from(project(acts, n, H, d)), y);
  const r = rFor(direction);
  const seed = opts.seed ?? '0';
  const nullCount = opts.nullCount ?? 20;
  if (!Number.isFinite(r)) {
    // Constant scores or projections: r is undefined, and so is every comparison.
    return { n, r: NaN, ci95: { lo: NaN, hi: NaN }, null: { count: nullCount, meanAbs: NaN, p975: NaN }, beatsNull: false };
  }
  const proj = Array.from(project(acts, n, H, direction));
  const ci95 = bootstrapCI((idx) => pearson(idx.map((i) => proj[i]), idx.map((i) => y[i])), n, { seed: `${seed}/bootstrap`, reps: opts.bootstrapReps ?? 1000 });
  const nl = randomDirectionNull(rFor, direction, { count: nullCount, seed: `${seed}/null` });
  return { n, r, ci95, null: { count: nullCount, meanAbs: nl.meanAbs, p975: nl.p975 }, beatsNull: Math.abs(r) > nl.p975 };
}

export interface MonitorCondition {
  label: string;
  system?: string;
  history?: ChatMessage[];
}

/**
 * The paper's eight system prompts graded from discouraging to encouraging the trait (Fig. 4), from the
 * trait's artifacts (graded_system_prompts; `persona trait new` writes them, `persona trait graded-prompts`
 * adds them to existing artifacts). The monitoring study and `persona monitor` both use these.
 */
export function gradedSystemPrompts(a: TraitArtifacts, trait: string, where: { file?: string } = {}): MonitorCondition[] {
  if (!a.graded_system_prompts)
    throw new PersonaError(`the artifacts of trait '${trait}' have no graded_system_prompts; add them with: persona trait graded-prompts ${trait} --out ARTIFACT_DIR --description "…" --llm-model MODEL`, { ...where, field: 'graded_system_prompts' });
  return a.graded_system_prompts.map((g) => (g.system === null ? { label: g.label } : { label: g.label, system: g.system }));
}

/** Many-shot prompts: for each K, the first K examples as earlier user/assistant turns. */
export function manyShotConditions(examples: readonly { question: string; answer: string }[], ks: readonly number[]): MonitorCondition[] {
  return ks.map((k) => {
    if (!Number.isInteger(k) || k < 0 || k > examples.length) throw new PersonaError(`many-shot K=${k} needs 0..${examples.length} examples`, { field: 'shots' });
    return { label: `shots${k}`, history: examples.slice(0, k).flatMap((e) => [{ role: 'user', content: e.question }, { role: 'assistant', content: e.answer }]) };
  });
}

/** Last-prompt-token activation at hidden_states[layer] for each prompt: [n, hidden]. */
export async function lastPromptActivations(model: Model, prompts: readonly number[][], layer: number, opts: { batchSize?: number; adapters?: Parameters<typeof captureActivations>[2]['adapters'] } = {}): Promise<Float32Array> {
  const c = await captureActivations(model, prompts.map((ids) => ({ ids, promptLength: ids.length })), { layers: [layer], reductions: ['prompt_last'], batchSize: opts.batchSize, adapters: opts.adapters });
  return c.values.prompt_last!;
}

export interface MonitorOptions extends CorrelationOptions {
  model: Model;
  tokenizer: Tokenizer;
  vector: PersonaVector;
  layer: number;
  trait: string;
  questions: readonly string[];
  conditions: readonly MonitorCondition[];
  judges: RolloutJudges;
  outDir: string;
  samples?: number;
  maxNewTokens?: number;
  temperature?: number;
  batchSize?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface MonitorPrompt {
  condition: string;
  question: string;
  projection: number;
  /** Mean trait score over this prompt's judged samples (null when every sample was refused). */
  traitMean: number | null;
}

export interface MonitorResult {
  prompts: MonitorPrompt[];
  conditions: { label: string; projectionMean: number; traitMean: number; traitStderr: number; file: string }[];
  /** Across prompts with a trait score: projection vs mean trait score. */
  correlation: CorrelationReport;
}

export async function monitorProjections(o: MonitorOptions): Promise<MonitorResult> {
  o.vector.checkHidden(o.model.config.hiddenSize, `model ${o.model.dir ?? ''}`.trim());
  const unit = o.vector.unit(o.layer);
  const samples = o.samples ?? 1;
  const prompts: MonitorPrompt[] = [];
  const conditions: MonitorResult['conditions'] = [];
  const acts: Float32Array[] = [];
  for (const cond of o.conditions) {
    const base: RolloutItem[] = o.questions.map((question, i) => ({ question, questionId: `${o.trait}_${i}_${cond.label}`, system: cond.system, history: cond.history }));
    const items = base.flatMap((it) => Array.from({ length: samples }, () => it));
    const file = path.join(o.outDir, `${o.trait}_monitor_${cond.label}.csv`);
    const run = await runRollouts({ model: o.model, tokenizer: o.tokenizer, items, csvFile: file, trait: o.trait, judges: o.judges, maxNewTokens: o.maxNewTokens ?? 64, temperature: o.temperature ?? 1, seed: `${o.seed ?? '0'}/${cond.label}`, batchSize: o.batchSize, onProgress: (d, t) => o.onProgress?.(cond.label, d, t) });
    const ids = base.map((it) => o.tokenizer.encode(renderItemPrompt(o.tokenizer, it)));
    const a = await lastPromptActivations(o.model, ids, o.layer, { batchSize: o.batchSize });
    const proj = project(a, base.length, unit.length, unit);
    const traitAll: number[] = [];
    base.forEach((it, i) => {
      const s = run.rows.slice(i * samples, (i + 1) * samples).map((r) => r.score).filter((v): v is number => v !== null);
      traitAll.push(...s);
      prompts.push({ condition: cond.label, question: it.question, projection: proj[i], traitMean: s.length ? mean(s) : null });
      acts.push(a.slice(i * unit.length, (i + 1) * unit.length));
    });
    conditions.push({ label: cond.label, projectionMean: mean(Array.from(proj)), traitMean: traitAll.length ? mean(traitAll) : NaN, traitStderr: traitAll.length ? stderr(traitAll) : NaN, file });
  }
  const scored = prompts.map((p, i) => ({ p, i })).filter(({ p }) => p.traitMean !== null);
  const H = unit.length;
  const m = new Float32Array(scored.length * H);
  scored.forEach(({ i }, j) => m.set(acts[i], j * H));
  // Projection on the unit vector = projection on the vector itself; the null matches the vector's norm.
  const correlation = correlationWithNull(m, scored.map(({ p }) => p.traitMean!), o.vector.layer(o.layer), o);
  return { prompts, conditions, correlation };
}
