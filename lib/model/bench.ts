/**
 * Engine speed on one checkpoint, comparable side by side with other stacks: prefill tokens/s and decode
 * ms per step (and tokens/s) after a warm-up, with the peak resident memory of the process.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import type { Model } from './checkpoint';
import { generate } from './generate';
import { PersonaError } from '../errors';

export interface BenchOptions {
  batch: number;
  promptLen: number;
  newTokens: number;
  repeats: number;
  seed?: string;
}

export interface BenchResult {
  backend: string;
  model: string | null;
  batch: number;
  prompt_len: number;
  new_tokens: number;
  repeats: number;
  prefill_ms: number;
  prefill_tokens_per_s: number;
  decode_ms_per_step?: number;
  decode_tokens_per_s?: number;
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

function timePrefill(model: Model, ids: number[][]): number {
  const t0 = performance.now();
  const out = model.forward({ ids }, { logits: 'last' });
  out.logits!.dataSync(); // wait for the backend
  out.logits!.dispose();
  return performance.now() - t0;
}

export function benchForward(model: Model, o: BenchOptions): BenchResult {
  const ids = randomPrompts(model, o);
  timePrefill(model, ids); // warm-up
  const times = Array.from({ length: o.repeats }, () => timePrefill(model, ids));
  return summary(model, o, median(times));
}

export function benchGenerate(model: Model, o: BenchOptions): BenchResult {
  if (o.newTokens < 2) throw new PersonaError('bench generate needs at least 2 new tokens (one prefill, then decode steps)', { field: 'new-tokens' });
  const ids = randomPrompts(model, o);
  /** Decode time per step measured inside generation: from the first token (end of prefill) to the last. */
  const run = () => {
    const stamps: number[] = [];
    generate(model, { prompts: ids }, { greedy: true, maxNewTokens: o.newTokens, eosTokenIds: [], onStep: () => stamps.push(performance.now()) });
    return (stamps[stamps.length - 1] - stamps[0]) / (stamps.length - 1);
  };
  timePrefill(model, ids);
  run(); // warm-up
  const prefill = median(Array.from({ length: o.repeats }, () => timePrefill(model, ids)));
  const msPerStep = median(Array.from({ length: o.repeats }, run));
  return { ...summary(model, o, prefill), decode_ms_per_step: msPerStep, decode_tokens_per_s: (o.batch * 1000) / msPerStep };
}

function summary(model: Model, o: BenchOptions, prefillMs: number): BenchResult {
  return {
    backend: tf.getBackend(),
    model: model.dir,
    batch: o.batch,
    prompt_len: o.promptLen,
    new_tokens: o.newTokens,
    repeats: o.repeats,
    prefill_ms: prefillMs,
    prefill_tokens_per_s: (o.batch * o.promptLen * 1000) / prefillMs,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}
