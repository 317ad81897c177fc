/**
 * Hook sites and the persona-vector layer convention.
 *
 * Sites, per decoder layer i (0-based): blocks.i.resid_pre → (attention) → blocks.i.attn_out,
 * blocks.i.resid_mid → (MLP) → blocks.i.mlp_out, blocks.i.resid_post; plus `embed` and `final_norm`.
 *
 * Layer convention (the paper's and Hugging Face's): "layer L" = `hidden_states[L]`
 *   L = 0      → `embed` (token embeddings)
 *   1 ≤ L ≤ N  → `blocks.{L-1}.resid_post` (output of decoder layer L−1)
 * Hugging Face's `hidden_states[N]` is the *final norm* of the last block's output; an intervention
 * "at layer N" still acts on `blocks.{N-1}.resid_post` (before the norm), exactly as a forward hook on
 * `model.layers[N-1]` does. A persona-vector file of shape [N+1, hidden] is indexed by L.
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';

export type BlockSite = 'resid_pre' | 'attn_out' | 'resid_mid' | 'mlp_out' | 'resid_post';
export const BLOCK_SITES: readonly BlockSite[] = ['resid_pre', 'attn_out', 'resid_mid', 'mlp_out', 'resid_post'];
export type SiteName = 'embed' | 'final_norm' | `blocks.${number}.${BlockSite}`;

export interface HookContext {
  site: SiteName;
  batch: number;
  /** Positions in this forward call. */
  seq: number;
  /** Positions already in the KV cache before this call (0 for a prefill or a plain forward). */
  pastLength: number;
}

/**
 * A hook sees the activation [batch, seq, hidden] at its site. Returning a tensor replaces the
 * activation; returning nothing only reads it. Hooks run inside the forward pass's tf.tidy: a hook
 * that keeps a tensor beyond the call must tf.keep it (and the caller disposes it).
 */
export type HookFn = (act: tf.Tensor3D, ctx: HookContext) => tf.Tensor3D | void;
export interface Hook {
  site: SiteName;
  fn: HookFn;
}

/** The site whose output is `hidden_states[L]` (before the final norm for L = N). */
export function siteForLayer(L: number, numLayers: number): SiteName {
  if (!Number.isInteger(L) || L < 0 || L > numLayers)
    throw new PersonaError(`layer ${L} is out of range: this model has hidden_states layers 0..${numLayers} (${numLayers} decoder layers)`, { field: 'layer' });
  return L === 0 ? 'embed' : (`blocks.${L - 1}.resid_post` as SiteName);
}

export function isSiteName(s: string, numLayers: number): s is SiteName {
  if (s === 'embed' || s === 'final_norm') return true;
  const m = /^blocks\.(\d+)\.(\w+)$/.exec(s);
  return !!m && Number(m[1]) < numLayers && (BLOCK_SITES as readonly string[]).includes(m[2]);
}

/** Groups hooks by site once per forward call. */
export function hooksBySite(hooks: readonly Hook[] | undefined): Map<string, HookFn[]> {
  const m = new Map<string, HookFn[]>();
  for (const h of hooks ?? []) {
    const list = m.get(h.site);
    if (list) list.push(h.fn);
    else m.set(h.site, [h.fn]);
  }
  return m;
}
