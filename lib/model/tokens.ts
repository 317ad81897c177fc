/**
 * Per-token activations of one sequence (what TransformerLens users get from run_with_cache): every
 * position's activation at chosen hidden_states layers and hook sites, from one forward pass, read from
 * the device once. Written as safetensors, one [T, hidden] float32 tensor per layer or site:
 *   hidden_states.L      hidden_states[L] in Hugging Face's convention (L = N: after the final norm)
 *   <site>               a hook site by name: embed, blocks.i.{resid_pre,attn_out,resid_mid,mlp_out,resid_post}, final_norm
 *   input_ids            [T] int64, the tokens
 * and metadata: prompt_length (positions 0..prompt_length-1 are the prompt, the rest the response),
 * layer_convention, model.
 */
import * as tf from '@tensorflow/tfjs';
import { readValues } from '../backend/read';
import { PersonaError } from '../errors';
import { IntTensorToWrite, TensorToWrite, writeSafetensors } from '../io/safetensors';
import { hiddenStateSite } from './capture';
import type { Model } from './checkpoint';
import { Hook, SiteName, isSiteName } from './hooks';
import { Intervention, interventionHooks } from './interventions';
import type { LinearAdapter } from './transformer';

export interface TokenCaptureOptions {
  /** hidden_states indices (0..N); stored as `hidden_states.L`. */
  layers?: readonly number[];
  /** Hook sites by name; stored under the site's name. */
  sites?: readonly string[];
  interventions?: readonly Intervention[];
  adapters?: ReadonlyMap<string, LinearAdapter>;
}

export interface CapturedTensor {
  /** Name in the safetensors file. */
  name: string;
  site: SiteName;
  /** The hidden_states index, for layers. */
  layer?: number;
  /** [T, hidden] row-major. */
  values: Float32Array;
}

export interface TokenCapture {
  ids: number[];
  hidden: number;
  tensors: CapturedTensor[];
}

/** The requested layers and sites as named capture points, checked against the model. */
export function capturePoints(numLayers: number, layers: readonly number[] = [], sites: readonly string[] = []): { name: string; site: SiteName; layer?: number }[] {
  const out: { name: string; site: SiteName; layer?: number }[] = [];
  for (const L of layers) {
    if (!Number.isInteger(L) || L < 0 || L > numLayers) throw new PersonaError(`layer ${L} is out of range: this model has hidden_states layers 0..${numLayers}`, { field: 'layers' });
    out.push({ name: `hidden_states.${L}`, site: hiddenStateSite(L, numLayers), layer: L });
  }
  for (const s of sites) {
    if (!isSiteName(s, numLayers))
      throw new PersonaError(`no hook site '${s}' in a model with ${numLayers} layers (embed, blocks.0..${numLayers - 1}.{resid_pre,attn_out,resid_mid,mlp_out,resid_post}, final_norm)`, { field: 'sites' });
    out.push({ name: s, site: s });
  }
  const names = out.map((p) => p.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new PersonaError(`'${dup}' is requested twice`, { field: 'layers' });
  if (!out.length) throw new PersonaError('nothing to capture: give layers or sites', { field: 'layers' });
  return out;
}

/** Activations of `ids` at every position for each requested layer/site (interventions applied first). */
export async function captureTokenActivations(model: Model, ids: readonly number[], opts: TokenCaptureOptions): Promise<TokenCapture> {
  const cfg = model.config;
  if (!ids.length) throw new PersonaError('no tokens to capture', { field: 'tokens' });
  const points = capturePoints(cfg.numLayers, opts.layers, opts.sites);
  const H = cfg.hiddenSize;
  const T = ids.length;
  const kept: tf.Tensor[] = new Array(points.length);
  const hooks: Hook[] = points.map((p, j) => ({
    site: p.site,
    fn: (act) => {
      kept[j] = tf.keep(act.reshape([T, H]));
    },
  }));
  // Intervention hooks first: a capture at a steered site sees the steered activation.
  const res = model.forward({ ids: [[...ids]] }, { hooks: [...interventionHooks(opts.interventions ?? [], cfg), ...hooks], logits: 'none', adapters: opts.adapters });
  let stacked: tf.Tensor;
  try {
    stacked = tf.stack(kept);
  } finally {
    tf.dispose(kept);
    tf.dispose([res.logits ?? [], ...(res.hiddenStates ?? [])]);
  }
  try {
    const all = await readValues(stacked); // one read for every point: [points, T, H]
    return { ids: [...ids], hidden: H, tensors: points.map((p, j) => ({ ...p, values: all.slice(j * T * H, (j + 1) * T * H) })) };
  } finally {
    stacked.dispose();
  }
}

/** Writes a capture as safetensors (names and layout in the module comment), atomically. */
export function writeTokenCapture(file: string, cap: TokenCapture, meta: { promptLength: number; model?: string }): void {
  const T = cap.ids.length;
  if (!(Number.isInteger(meta.promptLength) && meta.promptLength >= 0 && meta.promptLength <= T)) throw new PersonaError(`prompt length ${meta.promptLength} must be within 0..${T}`, { field: 'promptLength' });
  const tensors: Record<string, TensorToWrite | IntTensorToWrite> = { input_ids: { shape: [T], data: Int32Array.from(cap.ids), dtype: 'I64' } };
  for (const t of cap.tensors) tensors[t.name] = { shape: [T, cap.hidden], data: t.values };
  writeSafetensors(file, tensors, { format: 'pt', prompt_length: String(meta.promptLength), layer_convention: 'hf_hidden_states', ...(meta.model ? { model: meta.model } : {}) });
}
