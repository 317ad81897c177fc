/**
 * Engine speed on one model, comparable side by side with other stacks: prefill tokens/s and decode ms per step
 * (and tokens/s) after a warm-up, with the peak resident memory of the process and the GPU adapter it ran on. The
 * model is a checkpoint or random weights of a known shape (lib/model/random.ts).
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import type { Model } from './checkpoint';
import { generate } from './generate';
import { PersonaError } from '../errors';
import { readValues } from '../backend/read';
import { webgpuAdapter, type GpuAdapterSummary } from '../backend/webgpu';
import { startDispatchCounter } from '../backend/dispatches';

export interface BenchOptions {
  batch: number;
  promptLen: number;
  newTokens: number;
  repeats: number;
  seed?: string;
  /** Name of the shape a random model was built from (reported; null for a checkpoint). */
  shape?: string | null;
}

export interface BenchResult {
  backend: string;
  /** The webgpu adapter the backend runs on; null on other backends. */
  adapter: GpuAdapterSummary | null;
  model: string | null;
  shape: string | null;
  batch: number;
  prompt_len: number;
  new_tokens: number;
  repeats: number;
  prefill_ms: number;
  prefill_tokens_per_s: number;
  decode_ms_per_step?: number;
  decode_tokens_per_s?: number;
  /** webgpu only: kernel dispatches and host uploads per decode step (and per step and layer), from one generation. */
  decode_dispatches_per_step?: number;
  decode_dispatches_per_step_per_layer?: number;
  decode_uploads_per_step?: number;
  peak_rss_mb: number;
}

function randomPrompts(model: Model, o: BenchOptions): number[][] {
  const rng = seedrandom(o.seed ?? 'bench');
  // Avoid special ids at the low end so that no EOS cuts decoding short.
  const lo = Math.min(16, model.config.vocabSize - 1);
  return Array.from({ length: o.batch }, () => Array.from({ length: o.promptLen }, () => lo + Math.floor(rng() * (model.config.vocabSize - lo))));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timePrefill(model: Model, ids: number[][]): Promise<number> {
  const t0 = performance.now();
  const out = model.forward({ ids }, { logits: 'last' });
  try {
    await readValues(out.logits!); // the backend has finished once the values are here
  } finally {
    out.logits!.dispose();
  }
  return performance.now() - t0;
}

async function repeat(n: number, f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

export async function benchForward(model: Model, o: BenchOptions): Promise<BenchResult> {
  const ids = randomPrompts(model, o);
  await timePrefill(model, ids); // warm-up
  const times = await repeat(o.repeats, () => timePrefill(model, ids));
  return summary(model, o, median(times));
}

export async function benchGenerate(model: Model, o: BenchOptions): Promise<BenchResult> {
  if (o.newTokens < 2) throw new PersonaError('bench generate needs at least 2 new tokens (one prefill, then decode steps)', { field: 'new-tokens' });
  const ids = randomPrompts(model, o);
  /** Decode time per step measured inside generation: from the first token (end of prefill) to the last. */
  const run = async () => {
    const stamps: number[] = [];
    const g = await generate(model, { prompts: ids }, { greedy: true, maxNewTokens: o.newTokens, eosTokenIds: [], onStep: () => stamps.push(performance.now()) });
    // A kernel whose inputs exceed a device limit is rejected by validation and leaves garbage, not an error.
    const bad = g.tokens.flat().find((t) => !(Number.isInteger(t) && t >= 0 && t < model.config.vocabSize));
    if (bad !== undefined) throw new PersonaError(`generation produced token id ${bad}, outside the vocabulary 0..${model.config.vocabSize - 1}: the backend computed garbage`);
    return (stamps[stamps.length - 1] - stamps[0]) / (stamps.length - 1);
  };
  await timePrefill(model, ids);
  await run(); // warm-up
  const prefill = median(await repeat(o.repeats, () => timePrefill(model, ids)));
  const msPerStep = median(await repeat(o.repeats, run));
  const counted = await decodeDispatches(model, ids, o.newTokens);
  return { ...summary(model, o, prefill), decode_ms_per_step: msPerStep, decode_tokens_per_s: (o.batch * 1000) / msPerStep, ...counted };
}

/**
 * Dispatches and uploads per decode step on webgpu (counted between the first and the last step of one greedy
 * generation, so the prefill is left out); {} on other backends.
 */
export async function decodeDispatches(model: Model, prompts: number[][], newTokens: number): Promise<Pick<BenchResult, 'decode_dispatches_per_step' | 'decode_dispatches_per_step_per_layer' | 'decode_uploads_per_step'>> {
  const counter = startDispatchCounter();
  if (!counter) return {};
  const at: { dispatches: number; uploads: number }[] = [];
  try {
    await generate(model, { prompts }, { greedy: true, maxNewTokens: newTokens, eosTokenIds: [], onStep: () => at.push({ ...counter.counts }) });
  } finally {
    counter.stop();
  }
  const steps = at.length - 1;
  const perStep = (at[steps].dispatches - at[0].dispatches) / steps;
  return {
    decode_dispatches_per_step: perStep,
    decode_dispatches_per_step_per_layer: perStep / model.config.numLayers,
    decode_uploads_per_step: (at[steps].uploads - at[0].uploads) / steps,
  };
}

function summary(model: Model, o: BenchOptions, prefillMs: number): BenchResult {
  return {
    backend: tf.getBackend(),
    adapter: tf.getBackend() === 'webgpu' ? webgpuAdapter() : null,
    model: model.dir,
    shape: o.shape ?? null,
    batch: o.batch,
    prompt_len: o.promptLen,
    new_tokens: o.newTokens,
    repeats: o.repeats,
    prefill_ms: prefillMs,
    prefill_tokens_per_s: (o.batch * o.promptLen * 1000) / prefillMs,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}
