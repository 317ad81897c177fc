/**
 * Training workaround for grouped-query attention. The engine repeats k/v heads with a rank-5 tf.tile,
 * whose gradient tfjs 4.22 does not implement ("Gradient for tile operation is not implemented for
 * rank-5 tensors"). Here k/v projections are expanded to one kv head per query head before the forward
 * pass (rank ≤ 4 tiles, which have gradients), and the forward runs with numKvHeads = numHeads: every
 * k/v value is the same dot product as before, and the gradient of the original weight is the sum over
 * its copies. Removable once the engine's repeatKv is differentiable.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelConfig } from '../model/config';
import { LinearAdapter, Params, WEIGHT_NAMES } from '../model/transformer';

export function needsKvExpansion(cfg: ModelConfig): boolean {
  return cfg.numKvHeads !== cfg.numHeads;
}

export function expandedConfig(cfg: ModelConfig): ModelConfig {
  return needsKvExpansion(cfg) ? { ...cfg, numKvHeads: cfg.numHeads } : cfg;
}

/** [..., kv·D] → [..., kv·rep·D]: kv head j becomes heads j·rep … j·rep+rep−1 (as repeat_kv orders them). */
export function expandKvColumns(t: tf.Tensor, cfg: ModelConfig): tf.Tensor {
  const rep = cfg.numHeads / cfg.numKvHeads;
  const D = cfg.headDim;
  const lead = t.shape.slice(0, -1);
  const rows = lead.reduce((a, b) => a * b, 1);
  const tiled = tf.tile(t.reshape([rows, cfg.numKvHeads, 1, D]), [1, 1, rep, 1]); // rank 4: has a gradient
  return tiled.reshape([...lead, cfg.numHeads * D]);
}

const isKv = (module: string) => /\.self_attn\.[kv]_proj$/.test(module);

/** Params with k/v weights and biases expanded (only those tensors are new; caller disposes them via tidy). */
export function expandParams(cfg: ModelConfig, params: Params): Params {
  if (!needsKvExpansion(cfg)) return params;
  const out = new Map(params);
  for (let i = 0; i < cfg.numLayers; i++) {
    const w = WEIGHT_NAMES.layer(i);
    for (const m of [w.k, w.v]) {
      out.set(`${m}.weight`, expandKvColumns(params.get(`${m}.weight`)!, cfg));
      if (cfg.qkvBias) out.set(`${m}.bias`, expandKvColumns(params.get(`${m}.bias`)!, cfg));
    }
  }
  return out;
}

/** Adapters with the B matrix of k/v adapters expanded the same way (A is shared by all copies). */
export function expandAdapters(cfg: ModelConfig, adapters: ReadonlyMap<string, LinearAdapter> | undefined): Map<string, LinearAdapter> | undefined {
  if (!adapters || !needsKvExpansion(cfg)) return adapters ? new Map(adapters) : undefined;
  const out = new Map<string, LinearAdapter>();
  for (const [m, a] of adapters) out.set(m, isKv(m) ? { ...a, B: expandKvColumns(a.B, cfg) as tf.Tensor2D } : a);
  return out;
}
