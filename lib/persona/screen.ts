/**
 * Data screening (paper §6): for each training sample, the mean response activation at layer L of the
 * dataset's response minus that of the base model's own response to the same prompt, projected onto the
 * unit persona vector ("projection difference"). High values flag samples that push the model toward
 * the trait. Dataset-level score: the mean over samples, compared with norm-matched random directions.
 */
import { stringify } from 'csv-stringify/sync';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { readJsonl } from '../io/jsonl';
import type { Model } from '../model/checkpoint';
import { captureActivations } from '../model/capture';
import { generate } from '../model/generate';
import type { ChatMessage, Tokenizer } from '../tokenizer';
import { sequenceOf } from './extract';
import { decodeAnswer } from './rollouts';
import { randomDirectionNull } from './stats';
import { PersonaVector, project } from './vector';

/** A chat-format training sample: the last message is the assistant response being trained on. */
export interface TrainingSample {
  messages: ChatMessage[];
}

/** JSONL of {"messages": [...]} (the paper's finetuning datasets); errors name the line. */
export function readTrainingJsonl(file: string): TrainingSample[] {
  const out: TrainingSample[] = [];
  for (const { line, value } of readJsonl(file)) {
    const msgs = (value as { messages?: unknown })?.messages;
    if (!Array.isArray(msgs) || msgs.length < 2) throw new PersonaError('expected {"messages": [...]} with a prompt and an assistant response', { file, line, field: 'messages' });
    msgs.forEach((m, i) => {
      if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') throw new PersonaError(`messages[${i}] needs string role and content`, { file, line, field: `messages[${i}]` });
    });
    if (msgs[msgs.length - 1].role !== 'assistant') throw new PersonaError('the last message must be the assistant response', { file, line, field: `messages[${msgs.length - 1}].role` });
    out.push({ messages: msgs.map((m: ChatMessage) => ({ role: m.role, content: m.content })) });
  }
  if (out.length === 0) throw new PersonaError('no training samples', { file });
  return out;
}

export interface ScreenRow {
  index: number;
  /** Last user message, for the ranked CSV. */
  prompt: string;
  datasetProjection: number;
  baseProjection: number;
  /** datasetProjection − baseProjection. */
  projectionDiff: number;
  baseResponse: string;
}

export interface ScreenOptions {
  model: Model;
  tokenizer: Tokenizer;
  samples: readonly TrainingSample[];
  vector: PersonaVector;
  layer: number;
  maxNewTokens?: number;
  /** Sampling temperature for the base model's own responses (default greedy). */
  temperature?: number;
  seed?: string;
  batchSize?: number;
  nullCount?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ScreenResult {
  rows: ScreenRow[];
  meanProjectionDiff: number;
  /** The dataset mean for norm-matched random directions. */
  null: { count: number; meanAbs: number; p975: number };
  beatsNull: boolean;
}

/** Projection difference per sample from the two response-mean activations [n, hidden]. */
export function projectionDifference(datasetActs: Float32Array, baseActs: Float32Array, n: number, direction: Float32Array): { dataset: Float32Array; base: Float32Array; diff: Float32Array } {
  const H = direction.length;
  const dataset = project(datasetActs, n, H, direction);
  const base = project(baseActs, n, H, direction);
  return { dataset, base, diff: dataset.map((x, i) => x - base[i]) };
}

export async function screenDataset(o: ScreenOptions): Promise<ScreenResult> {
  const H = o.model.config.hiddenSize;
  o.vector.checkHidden(H, `model ${o.model.dir ?? ''}`.trim());
  o.vector.checkLayers(o.model.config.numLayers, `model ${o.model.dir ?? ''}`.trim());
  const dir = o.vector.layer(o.layer);
  const B = o.batchSize ?? 8;
  const prompts = o.samples.map((s) => o.tokenizer.applyChatTemplate(s.messages.slice(0, -1), { addGenerationPrompt: true }));
  const eos = o.tokenizer.eosTokenIds.length ? o.tokenizer.eosTokenIds : undefined;
  const baseResponses: string[] = [];
  for (let lo = 0; lo < prompts.length; lo += B) {
    const ids = prompts.slice(lo, lo + B).map((p) => o.tokenizer.encode(p));
    const g = await generate(o.model, { prompts: ids }, { maxNewTokens: o.maxNewTokens ?? 64, temperature: o.temperature, seed: `${o.seed ?? '0'}/${lo / B}`, eosTokenIds: eos });
    baseResponses.push(...g.tokens.map((t) => decodeAnswer(o.tokenizer, t)));
    o.onProgress?.(Math.min(lo + B, prompts.length), prompts.length * 2);
  }
  const seqs = o.samples.flatMap((s, i) => {
    const d = sequenceOf(o.tokenizer, prompts[i], s.messages[s.messages.length - 1].content);
    const b = sequenceOf(o.tokenizer, prompts[i], baseResponses[i]);
    if (d.ids.length === d.promptLength) throw new PersonaError(`training sample ${i} has an empty response`, { field: `samples[${i}]` });
    // A base response that ended at once has no tokens to average: use its first (EOS) token instead.
    if (b.ids.length === b.promptLength) b.ids = [...b.ids, eos?.[0] ?? 0];
    return [d, b];
  });
  const cap = await captureActivations(o.model, seqs, { layers: [o.layer], reductions: ['response_mean'], batchSize: B, onBatch: (d) => o.onProgress?.(prompts.length + d / 2, prompts.length * 2) });
  const all = cap.values.response_mean!;
  const n = o.samples.length;
  const ds = new Float32Array(n * H);
  const bs = new Float32Array(n * H);
  for (let i = 0; i < n; i++) {
    ds.set(all.subarray(2 * i * H, (2 * i + 1) * H), i * H);
    bs.set(all.subarray((2 * i + 1) * H, (2 * i + 2) * H), i * H);
  }
  const pd = projectionDifference(ds, bs, n, dir);
  const rows: ScreenRow[] = o.samples.map((s, i) => ({
    index: i,
    prompt: [...s.messages].reverse().find((m) => m.role === 'user')?.content ?? '',
    datasetProjection: pd.dataset[i],
    baseProjection: pd.base[i],
    projectionDiff: pd.diff[i],
    baseResponse: baseResponses[i],
  }));
  // Dataset mean of the projection difference = projection of the mean activation difference.
  const meanDiff = new Float32Array(H);
  for (let i = 0; i < n; i++) for (let j = 0; j < H; j++) meanDiff[j] += (ds[i * H + j] - bs[i * H + j]) / n;
  const meanProjectionDiff = rows.reduce((s, r) => s + r.projectionDiff, 0) / n;
  const nullCount = o.nullCount ?? 20;
  const nl = randomDirectionNull((d) => project(meanDiff, 1, H, d)[0], dir, { count: nullCount, seed: `${o.seed ?? '0'}/screen-null` });
  return { rows, meanProjectionDiff, null: { count: nullCount, meanAbs: nl.meanAbs, p975: nl.p975 }, beatsNull: Math.abs(meanProjectionDiff) > nl.p975 };
}

/** Rows sorted by projection difference, highest first. */
export function rankRows(rows: readonly ScreenRow[]): ScreenRow[] {
  return [...rows].sort((a, b) => b.projectionDiff - a.projectionDiff || a.index - b.index);
}

export function writeScreenCsv(file: string, rows: readonly ScreenRow[]): void {
  const body = stringify(
    rankRows(rows).map((r, k) => [k + 1, r.index, r.projectionDiff, r.datasetProjection, r.baseProjection, r.prompt, r.baseResponse]),
    { header: true, columns: ['rank', 'index', 'projection_diff', 'dataset_projection', 'base_projection', 'prompt', 'base_response'] },
  );
  writeFileAtomic(file, body);
}

export type ScreenFilter = { keep: 'top' | 'bottom'; k: number } | { keep: 'above' | 'below'; threshold: number };

/** Indices (in dataset order) of the samples a filter keeps: top/bottom k by projection difference, or above (≥) / below (<) a threshold. */
export function selectSamples(rows: readonly ScreenRow[], f: ScreenFilter): number[] {
  let picked: ScreenRow[];
  if (f.keep === 'top' || f.keep === 'bottom') {
    if (!Number.isInteger(f.k) || f.k < 0) throw new PersonaError(`k must be a non-negative integer, got ${f.k}`, { field: 'k' });
    const ranked = rankRows(rows);
    picked = f.keep === 'top' ? ranked.slice(0, f.k) : ranked.slice(Math.max(0, ranked.length - f.k));
  } else if (f.keep === 'above' || f.keep === 'below') {
    const t = f.threshold;
    if (!Number.isFinite(t)) throw new PersonaError(`threshold must be a number, got ${t}`, { field: 'threshold' });
    picked = rows.filter((r) => (f.keep === 'above' ? r.projectionDiff >= t : r.projectionDiff < t));
  } else throw new PersonaError(`unknown filter '${(f as { keep: string }).keep}'`, { field: 'keep' });
  return picked.map((r) => r.index).sort((a, b) => a - b);
}

export function writeFilteredDataset(file: string, samples: readonly TrainingSample[], keep: readonly number[]): void {
  writeFileAtomic(file, keep.map((i) => JSON.stringify(samples[i])).join('\n') + (keep.length ? '\n' : ''));
}
