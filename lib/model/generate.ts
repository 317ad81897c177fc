/**
 * Batched generation: left padding with an attention mask, a KV cache, greedy or seeded sampling
 * (temperature / top-k / top-p), EOS stopping, min and max new tokens, interventions active throughout.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { PersonaError } from '../errors';
import { readValues } from '../backend/read';
import type { Model } from './checkpoint';
import type { Hook } from './hooks';
import { Intervention, interventionHooks } from './interventions';
import { KVCache, LinearAdapter, disposeCache } from './transformer';
import { selectCacheRows } from './kv-cache';

export interface SamplingOptions {
  /** Argmax decoding (default when no temperature is given). */
  greedy?: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Seed of the sampler; the same seed gives the same tokens run to run. */
  seed?: string | number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  minNewTokens?: number;
  /** Default: the checkpoint's EOS ids (config.json / generation_config.json). */
  eosTokenIds?: number[];
  /** Id used to left-pad prompts and fill finished rows. Default: pad_token_id, else the first EOS id, else 0. */
  padTokenId?: number;
  interventions?: readonly Intervention[];
  hooks?: readonly Hook[];
  adapters?: ReadonlyMap<string, LinearAdapter>;
  /** Called after every decoding step with the step index (0-based). */
  onStep?: (step: number) => void;
}

export interface GenerateInput {
  /** Unpadded prompts (they are left-padded here), or an already left-padded batch with its mask. */
  prompts?: number[][];
  ids?: number[][];
  attentionMask?: number[][];
}

export interface GenerateResult {
  /** New token ids per row, up to and including the first EOS. */
  tokens: number[][];
  /** Whether each row stopped at an EOS (false: ran out of max new tokens). */
  stoppedAtEos: boolean[];
}

export async function generate(model: Model, input: GenerateInput, opts: GenerateOptions): Promise<GenerateResult> {
  const cfg = model.config;
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) throw new PersonaError(`max new tokens must be a positive integer, got ${opts.maxNewTokens}`, { field: 'max_new_tokens' });
  const minNew = opts.minNewTokens ?? 0;
  const eos = opts.eosTokenIds ?? cfg.eosTokenIds;
  const pad = opts.padTokenId ?? cfg.padTokenId ?? eos[0] ?? 0;
  const { ids, mask } = batchOf(input, pad);
  checkContextLength(mask, opts.maxNewTokens, cfg.maxPositionEmbeddings);
  const B = ids.length;
  const hooks = [...interventionHooks(opts.interventions ?? [], cfg), ...(opts.hooks ?? [])];
  // Caller hooks expect the whole batch at every step: with them, finished rows stay (fed padding) instead of leaving.
  const keepAll = (opts.hooks ?? []).length > 0;
  const pick = sampler(opts);

  const tokens: number[][] = ids.map(() => []);
  const done: boolean[] = ids.map(() => false);
  // Rows still generating, as indices into the batch; the cache holds exactly these rows, in this order. A row that
  // stops leaves the batch (its cache row is dropped), so later steps compute only live rows. Each row's numbers do
  // not depend on which other rows share its batch, and the sampler draws for live rows in batch order as before,
  // so the tokens are those of the full batch.
  let live = ids.map((_, b) => b);
  let cache: KVCache | null = null;
  let stepIds = ids;
  let stepMask = mask;
  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const out = model.forward({ ids: stepIds, attentionMask: stepMask, cache: cache ?? undefined }, { hooks, useCache: true, logits: 'last', adapters: opts.adapters });
      disposeCache(cache);
      cache = out.cache;
      let logits: Float32Array; // [live, 1, V]
      try {
        logits = await readValues(out.logits!);
      } finally {
        out.logits!.dispose();
      }
      const next: number[] = [];
      live.forEach((b, r) => {
        if (done[b]) {
          next.push(pad);
          return;
        }
        const row = logits.subarray(r * cfg.vocabSize, (r + 1) * cfg.vocabSize);
        if (step < minNew) for (const e of eos) if (e < row.length) row[e] = -Infinity;
        const id = pick(row);
        tokens[b].push(id);
        next.push(id);
        if (eos.includes(id)) done[b] = true;
      });
      opts.onStep?.(step);
      if (live.every((b) => done[b])) break;
      const keep = live.map((b, r) => (done[b] && !keepAll ? -1 : r)).filter((r) => r >= 0);
      if (keep.length < live.length) {
        const kept = selectCacheRows(cache!, keep);
        disposeCache(cache);
        cache = kept;
        live = keep.map((r) => live[r]);
      }
      stepIds = keep.map((r) => [next[r]]);
      stepMask = keep.map(() => [1]);
    }
  } finally {
    disposeCache(cache);
  }
  return { tokens, stoppedAtEos: done };
}

function batchOf(input: GenerateInput, pad: number): { ids: number[][]; mask: number[][] } {
  if (input.ids) {
    const mask = input.attentionMask ?? input.ids.map((r) => r.map(() => 1));
    if (mask.length !== input.ids.length || mask.some((m, b) => m.length !== input.ids![b].length))
      throw new PersonaError('attention mask must have the same shape as the token ids', { field: 'attention_mask' });
    mask.forEach((m, b) => {
      if (m[m.length - 1] !== 1) throw new PersonaError(`row ${b} does not end with a real token: generation needs left padding`, { field: 'attention_mask' });
    });
    return { ids: input.ids, mask };
  }
  const prompts = input.prompts ?? [];
  if (prompts.length === 0) throw new PersonaError('no prompts to generate from', { field: 'prompts' });
  prompts.forEach((p, b) => {
    if (p.length === 0) throw new PersonaError(`prompt ${b} is empty`, { field: 'prompts' });
  });
  const T = Math.max(...prompts.map((p) => p.length));
  return {
    ids: prompts.map((p) => [...new Array(T - p.length).fill(pad), ...p]),
    mask: prompts.map((p) => [...new Array(T - p.length).fill(0), ...new Array(p.length).fill(1)]),
  };
}

/**
 * Refuses, before any forward pass, a batch whose longest prompt (real tokens: positions count only those) plus
 * maxNewTokens exceeds max_position_embeddings. HF would generate past it, but RoPE models trained to that length
 * degrade into repetition ("out out out"), so a prompt over the limit is refused, and so is prompt + new tokens
 * over it, suggesting a smaller --max-new-tokens.
 */
function checkContextLength(mask: number[][], maxNewTokens: number, limit: number): void {
  const promptLen = Math.max(...mask.map((m) => m.reduce((s, x) => s + (x ? 1 : 0), 0)));
  if (promptLen >= limit) {
    // >=: a prompt that fills the limit leaves no room for even one new token.
    throw new PersonaError(
      `the prompt is ${promptLen} tokens, ${promptLen > limit ? 'longer than' : 'as long as'} the model's max_position_embeddings ${limit}, leaving no room for the ${maxNewTokens} max new tokens; shorten the prompt`,
      { field: 'max_position_embeddings' },
    );
  }
  if (promptLen + maxNewTokens > limit) {
    throw new PersonaError(
      `the prompt (${promptLen} tokens) plus max new tokens (${maxNewTokens}) is ${promptLen + maxNewTokens}, over the model's max_position_embeddings ${limit}; use --max-new-tokens ${limit - promptLen} or less`,
      { field: 'max_new_tokens' },
    );
  }
}

/** Returns a function from one row of logits to a token id. */
export function sampler(opts: SamplingOptions): (logits: Float32Array) => number {
  const greedy = opts.greedy ?? opts.temperature === undefined;
  if (greedy) return argmax;
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0)) throw new PersonaError(`temperature must be > 0 (use greedy decoding for 0), got ${temperature}`, { field: 'temperature' });
  const topP = opts.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new PersonaError(`top-p must be in (0, 1], got ${topP}`, { field: 'top_p' });
  const topK = opts.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) throw new PersonaError(`top-k must be a non-negative integer, got ${topK}`, { field: 'top_k' });
  const rng = seedrandom(String(opts.seed ?? 0));
  return (logits) => {
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
    if (max === -Infinity) return argmax(logits);
    // Candidates sorted by logit, cut by top-k, then by top-p (the smallest prefix whose mass reaches p). Tokens more
    // than 30 nats below the best are left out before sorting (together they carry < vocab·e^-30 of the mass), so a
    // 150k vocabulary is not sorted whole for every row at every step.
    const floor = max - 30 * temperature;
    let order: number[] = [];
    for (let i = 0; i < logits.length; i++) if (logits[i] >= floor) order.push(i);
    order.sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0) order = order.slice(0, topK);
    let probs = order.map((i) => Math.exp((logits[i] - max) / temperature));
    let total = probs.reduce((s, p) => s + p, 0);
    if (topP < 1) {
      let cum = 0;
      let keep = 0;
      while (keep < probs.length && cum < topP * total) cum += probs[keep++];
      order = order.slice(0, Math.max(1, keep));
      probs = probs.slice(0, Math.max(1, keep));
      total = probs.reduce((s, p) => s + p, 0);
    }
    let r = rng() * total;
    for (let j = 0; j < order.length; j++) {
      r -= probs[j];
      if (r < 0) return order[j];
    }
    return order[order.length - 1];
  };
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}
