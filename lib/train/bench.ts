/**
 * Training speed on one model (a checkpoint or random weights of a known shape), comparable with other stacks: full
 * optimizer steps (forward, backward, clipping, AdamW) on random tokens, LoRA or full-parameter, after one warm-up
 * step.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import type { Model } from '../model/checkpoint';
import { readValues } from '../backend/read';
import { webgpuAdapter, type GpuAdapterSummary } from '../backend/webgpu';
import { LoraAdapters, LORA_TARGETS } from './lora';
import { AdamW, clipGradNorm } from './optimizer';
import { objectiveAndGrads } from './step';

export interface TrainBenchOptions {
  batch: number;
  seqLen: number;
  steps: number;
  /** LoRA rank; 0 = full-parameter finetuning. */
  r: number;
  seed?: string;
  /** Name of the shape a random model was built from (reported; null for a checkpoint). */
  shape?: string | null;
}

export interface TrainBenchResult {
  backend: string;
  /** The webgpu adapter the backend runs on; null on other backends. */
  adapter: GpuAdapterSummary | null;
  model: string | null;
  shape: string | null;
  mode: 'lora' | 'full';
  r: number;
  batch: number;
  seq_len: number;
  steps: number;
  ms_per_step: number;
  tokens_per_s: number;
  peak_rss_mb: number;
}

export async function benchTrain(model: Model, o: TrainBenchOptions): Promise<TrainBenchResult> {
  const rng = seedrandom(o.seed ?? 'bench-train');
  const V = model.config.vocabSize;
  const lo = Math.min(16, V - 1);
  const ids = Array.from({ length: o.batch }, () => Array.from({ length: o.seqLen }, () => lo + Math.floor(rng() * (V - lo))));
  const batch = { ids, labels: ids };
  const lora = o.r > 0 ? LoraAdapters.init(model.config, { r: o.r, alpha: 2 * o.r, dropout: 0, useRslora: true, targetModules: [...LORA_TARGETS] }, 0) : null;
  const vars = lora ? lora.variables() : new Map([...model.params].map(([n, t]) => [n, tf.variable(t)]));
  const opt = new AdamW(vars, { weightDecay: 0.01 });
  const step = async () => {
    const r = await objectiveAndGrads(model.config, lora ? model.params : vars, lora ? lora.adapters() : null, batch);
    try {
      await clipGradNorm(r.grads, 1);
      opt.apply(r.grads, 1e-5);
    } finally {
      tf.dispose([...r.grads.values()]);
    }
  };
  // The last update may still be queued on an asynchronous backend: reading one updated value waits for it.
  const last = [...vars.values()][vars.size - 1];
  const settle = async () => {
    const one = tf.tidy(() => tf.slice(tf.reshape(last, [-1]), 0, 1));
    try {
      await readValues(one);
    } finally {
      one.dispose();
    }
  };
  try {
    await step(); // warm-up: kernel compilation, allocations
    await settle();
    const t0 = performance.now();
    for (let i = 0; i < o.steps; i++) await step();
    await settle();
    const ms = (performance.now() - t0) / o.steps;
    return {
      backend: tf.getBackend(),
      adapter: tf.getBackend() === 'webgpu' ? webgpuAdapter() : null,
      model: model.dir,
      shape: o.shape ?? null,
      mode: lora ? 'lora' : 'full',
      r: o.r,
      batch: o.batch,
      seq_len: o.seqLen,
      steps: o.steps,
      ms_per_step: ms,
      tokens_per_s: (o.batch * o.seqLen * 1000) / ms,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    opt.dispose();
    if (lora) lora.dispose();
    else tf.dispose([...vars.values()]);
  }
}
