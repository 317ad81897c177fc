/**
 * Activation capture with on-the-fly reductions. For each sequence (prompt + response tokens) and each
 * requested hidden_states layer L, one forward pass computes
 *   prompt_mean   — mean of hidden_states[L] over the prompt tokens
 *   response_mean — mean over the response tokens (the paper's response_avg)
 *   prompt_last   — the activation at the last prompt token
 * Each reduction is a weighted sum taken inside the hook (one [B, R, T]×[B, T, H] matmul per layer), so
 * no [layers, seq, hidden] activation outlives its layer.
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { readValues } from '../backend/read';
import type { Model } from './checkpoint';
import { Hook, SiteName, siteForLayer } from './hooks';
import { Intervention, interventionHooks } from './interventions';
import type { LinearAdapter } from './transformer';

export type Reduction = 'prompt_mean' | 'response_mean' | 'prompt_last';
export const REDUCTIONS: readonly Reduction[] = ['prompt_mean', 'response_mean', 'prompt_last'];

export interface CaptureSequence {
  ids: number[];
  /** Tokens [0, promptLength) are the prompt; the rest is the response. */
  promptLength: number;
}

export interface CaptureOptions {
  /** hidden_states indices to capture; default every layer 0..N. */
  layers?: number[];
  reductions: readonly Reduction[];
  batchSize?: number;
  interventions?: readonly Intervention[];
  adapters?: ReadonlyMap<string, LinearAdapter>;
  onBatch?: (done: number, total: number) => void;
}

/** Per reduction, [numSequences, layers.length, hidden] row-major. */
export interface Captured {
  layers: number[];
  hidden: number;
  count: number;
  values: Partial<Record<Reduction, Float32Array>>;
}

/** The site whose activation *is* hidden_states[L]: for L = N that is the final norm's output (HF). */
export function hiddenStateSite(L: number, numLayers: number): SiteName {
  return L === numLayers ? 'final_norm' : siteForLayer(L, numLayers);
}

export async function captureActivations(model: Model, seqs: readonly CaptureSequence[], opts: CaptureOptions): Promise<Captured> {
  const cfg = model.config;
  const N = cfg.numLayers;
  const H = cfg.hiddenSize;
  const layers = opts.layers ?? Array.from({ length: N + 1 }, (_, i) => i);
  const reductions = [...opts.reductions];
  if (reductions.length === 0) throw new PersonaError('no reductions requested', { field: 'reductions' });
  for (const r of reductions) if (!REDUCTIONS.includes(r)) throw new PersonaError(`unknown reduction '${r}' (${REDUCTIONS.join(', ')})`, { field: 'reductions' });
  const sites = layers.map((L) => hiddenStateSite(L, N));
  seqs.forEach((s, i) => {
    if (!(s.promptLength >= 1 && s.promptLength <= s.ids.length)) throw new PersonaError(`sequence ${i}: prompt length ${s.promptLength} must be within 1..${s.ids.length}`, { field: 'promptLength' });
    if (reductions.includes('response_mean') && s.promptLength === s.ids.length) throw new PersonaError(`sequence ${i} has no response tokens to average`, { field: 'response' });
  });

  const out: Captured = { layers, hidden: H, count: seqs.length, values: {} };
  for (const r of reductions) out.values[r] = new Float32Array(seqs.length * layers.length * H);
  const batchSize = opts.batchSize ?? 8;
  const ivHooks = interventionHooks(opts.interventions ?? [], cfg);

  for (let start = 0; start < seqs.length; start += batchSize) {
    const batch = seqs.slice(start, start + batchSize);
    const T = Math.max(...batch.map((s) => s.ids.length));
    const pad = cfg.padTokenId ?? 0;
    const ids = batch.map((s) => [...new Array(T - s.ids.length).fill(pad), ...s.ids]);
    const mask = batch.map((s) => [...new Array(T - s.ids.length).fill(0), ...new Array(s.ids.length).fill(1)]);
    const weights = reductionWeights(batch, T, reductions); // [B, R, T]
    const kept: tf.Tensor[] = new Array(layers.length);
    const captureHooks: Hook[] = sites.map((site, j) => ({
      site,
      fn: (act) => {
        kept[j] = tf.keep(tf.matMul(tf.tensor3d(weights, [batch.length, reductions.length, T]), act)); // [B, R, H]
      },
    }));
    const res = model.forward({ ids, attentionMask: mask }, { hooks: [...ivHooks, ...captureHooks], logits: 'none', adapters: opts.adapters });
    // One read per batch for every layer (a GPU read is a round trip): [layers, B, R, H].
    let stacked: tf.Tensor;
    try {
      stacked = tf.stack(kept);
    } finally {
      tf.dispose(kept);
    }
    try {
      const all = await readValues(stacked);
      const per = batch.length * reductions.length * H;
      for (let j = 0; j < layers.length; j++)
        for (let b = 0; b < batch.length; b++)
          reductions.forEach((r, k) => {
            const o = j * per + (b * reductions.length + k) * H;
            out.values[r]!.set(all.subarray(o, o + H), ((start + b) * layers.length + j) * H);
          });
    } finally {
      stacked.dispose();
      tf.dispose([res.logits ?? [], ...(res.hiddenStates ?? [])]);
    }
    opts.onBatch?.(Math.min(start + batchSize, seqs.length), seqs.length);
  }
  return out;
}

/** Row weights selecting each reduction's positions in the left-padded row. [B, R, T] flattened. */
function reductionWeights(batch: readonly CaptureSequence[], T: number, reductions: Reduction[]): Float32Array {
  const R = reductions.length;
  const w = new Float32Array(batch.length * R * T);
  batch.forEach((s, b) => {
    const off = T - s.ids.length;
    const P = s.promptLength;
    const n = s.ids.length;
    reductions.forEach((r, k) => {
      const o = (b * R + k) * T + off;
      if (r === 'prompt_mean') for (let t = 0; t < P; t++) w[o + t] = 1 / P;
      if (r === 'response_mean') for (let t = P; t < n; t++) w[o + t] = 1 / (n - P);
      if (r === 'prompt_last') w[o + P - 1] = 1;
    });
  });
  return w;
}

/** Mean over sequences of one reduction: [layers, hidden]. */
export function meanOverSequences(c: Captured, r: Reduction, which?: readonly number[]): Float32Array {
  const v = c.values[r];
  if (!v) throw new PersonaError(`reduction '${r}' was not captured`, { field: 'reductions' });
  const rows = which ?? Array.from({ length: c.count }, (_, i) => i);
  if (rows.length === 0) throw new PersonaError(`no sequences to average for '${r}'`);
  const LH = c.layers.length * c.hidden;
  const m = new Float32Array(LH);
  for (const i of rows) for (let j = 0; j < LH; j++) m[j] += v[i * LH + j];
  for (let j = 0; j < LH; j++) m[j] /= rows.length;
  return m;
}
