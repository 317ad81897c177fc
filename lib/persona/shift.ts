/**
 * Finetuning shift (paper §5): mean activation at the last prompt token over the eval prompts, for the
 * finetuned model minus the base model, projected onto the unit persona vector at layer L. A finetuned
 * model is a full checkpoint, or the base model with LoRA adapters (e.g. from lib/train).
 */
import { PersonaError } from '../errors';
import type { Model } from '../model/checkpoint';
import type { LinearAdapter } from '../model/transformer';
import { captureActivations } from '../model/capture';
import { CorrelationOptions, CorrelationReport, correlationWithNull } from './monitor';
import { randomDirectionNull } from './stats';
import { PersonaVector, project } from './vector';

export interface ModelVariant {
  model: Model;
  adapters?: ReadonlyMap<string, LinearAdapter>;
}

/** Mean over prompts of the last-prompt-token activation at hidden_states[L] for each L of `layers` (one forward pass): [hidden] per layer. */
export async function meanLastPromptActivations(v: ModelVariant, prompts: readonly number[][], layers: readonly number[], batchSize?: number): Promise<Float32Array[]> {
  if (prompts.length === 0) throw new PersonaError('no prompts to average over', { field: 'prompts' });
  const c = await captureActivations(v.model, prompts.map((ids) => ({ ids, promptLength: ids.length })), { layers: [...layers], reductions: ['prompt_last'], batchSize, adapters: v.adapters });
  const a = c.values.prompt_last!; // [prompts, layers, hidden]
  const H = v.model.config.hiddenSize;
  return layers.map((_, j) => {
    const m = new Float32Array(H);
    for (let i = 0; i < prompts.length; i++) for (let h = 0; h < H; h++) m[h] += a[(i * layers.length + j) * H + h];
    for (let h = 0; h < H; h++) m[h] /= prompts.length;
    return m;
  });
}

/** Mean over prompts of the last-prompt-token activation at hidden_states[layer]: [hidden]. */
export async function meanLastPromptActivation(v: ModelVariant, prompts: readonly number[][], layer: number, batchSize?: number): Promise<Float32Array> {
  return (await meanLastPromptActivations(v, prompts, [layer], batchSize))[0];
}

/** finetuned − base, elementwise. */
export function activationShift(finetunedMean: Float32Array, baseMean: Float32Array): Float32Array {
  if (finetunedMean.length !== baseMean.length) throw new PersonaError(`shift: hidden sizes differ (${finetunedMean.length} vs ${baseMean.length})`, { field: 'hidden' });
  return finetunedMean.map((x, i) => x - baseMean[i]);
}

export interface ShiftResult {
  layer: number;
  /** finetuned − base mean activation [hidden]. */
  diff: Float32Array;
  /** diff · v̂ */
  projection: number;
  /** |diff| for scale: the share of the shift along the vector is projection / norm. */
  diffNorm: number;
  /** Projections of the same diff onto norm-matched random directions. */
  null: { count: number; meanAbs: number; p975: number };
  beatsNull: boolean;
}

export interface ShiftOptions {
  base: ModelVariant;
  finetuned: ModelVariant;
  prompts: readonly number[][];
  vector: PersonaVector;
  layer: number;
  batchSize?: number;
  seed?: string;
  nullCount?: number;
}

export async function finetuningShift(o: ShiftOptions): Promise<ShiftResult> {
  for (const [what, v] of [['base model', o.base], ['finetuned model', o.finetuned]] as const) {
    o.vector.checkHidden(v.model.config.hiddenSize, what);
    o.vector.checkLayers(v.model.config.numLayers, what);
  }
  const dir = o.vector.layer(o.layer);
  const diff = activationShift(await meanLastPromptActivation(o.finetuned, o.prompts, o.layer, o.batchSize), await meanLastPromptActivation(o.base, o.prompts, o.layer, o.batchSize));
  return shiftFromDiff(diff, dir, o.layer, o);
}

/** Projection of a shift onto `direction` (normalized) with its random-direction null. */
export function shiftFromDiff(diff: Float32Array, direction: Float32Array, layer: number, opts: { seed?: string; nullCount?: number } = {}): ShiftResult {
  const projection = project(diff, 1, diff.length, direction)[0];
  const nullCount = opts.nullCount ?? 20;
  const nl = randomDirectionNull((d) => project(diff, 1, diff.length, d)[0], direction, { count: nullCount, seed: `${opts.seed ?? '0'}/shift-null` });
  let ss = 0;
  for (const x of diff) ss += x * x;
  return { layer, diff, projection, diffNorm: Math.sqrt(ss), null: { count: nullCount, meanAbs: nl.meanAbs, p975: nl.p975 }, beatsNull: Math.abs(projection) > nl.p975 };
}

/**
 * Across several finetuned models: Pearson r of their shift projections with their trait scores
 * (the paper's Figure 6 statistic), with bootstrap CI and the random-direction null.
 */
export function correlateShifts(items: readonly { diff: Float32Array; traitScore: number }[], direction: Float32Array, opts: CorrelationOptions = {}): CorrelationReport {
  const H = direction.length;
  const acts = new Float32Array(items.length * H);
  items.forEach((it, i) => {
    if (it.diff.length !== H) throw new PersonaError(`shift ${i} has hidden size ${it.diff.length}, the vector has ${H}`, { field: 'hidden' });
    acts.set(it.diff, i * H);
  });
  return correlationWithNull(acts, items.map((i) => i.traitScore), direction, opts);
}
