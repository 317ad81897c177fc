/**
 * Interventions are values — what to do to the residual stream, where, and at which positions — turned
 * into hooks for one forward pass or a whole generation. The model knows nothing of persona vectors.
 *
 *   steer:  h ← h + coef·v                       at positions all | prompt | response
 *   ablate: h ← h − (h·u)u,  u = v/|v|            at every position
 *
 * Positions (the paper's convention): `all` — every position of every forward call; `prompt` — every
 * position of the first (prefill) call, none afterwards; `response` — the last position of every forward
 * call, which under a KV cache is the last prompt token and then each new token.
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { Hook, HookContext, SiteName, isSiteName, siteForLayer } from './hooks';
import type { ModelConfig } from './config';

export type Positions = 'all' | 'prompt' | 'response';
export const POSITIONS: readonly Positions[] = ['all', 'prompt', 'response'];

export type Intervention =
  | { op: 'add'; site: SiteName; vector: Float32Array; coef: number; positions: Positions }
  | { op: 'ablate'; site: SiteName; vector: Float32Array };

/** Steering at persona-vector layer L (= hidden_states[L], the output of decoder layer L−1). */
export function steer(vector: Float32Array, layer: number, coef: number, positions: Positions = 'all', numLayers?: number): Intervention {
  if (!POSITIONS.includes(positions)) throw new PersonaError(`positions must be one of ${POSITIONS.join(', ')}, got '${positions}'`, { field: 'positions' });
  if (!Number.isFinite(coef)) throw new PersonaError(`coefficient must be a finite number, got ${coef}`, { field: 'coef' });
  return { op: 'add', site: siteForLayer(layer, numLayers ?? Number.MAX_SAFE_INTEGER), vector, coef, positions };
}

/** Directional ablation at persona-vector layer L. */
export function ablate(vector: Float32Array, layer: number, numLayers?: number): Intervention {
  return { op: 'ablate', site: siteForLayer(layer, numLayers ?? Number.MAX_SAFE_INTEGER), vector };
}

/** Checks every intervention against the model (site exists, vector has the hidden size, ablation direction non-zero). */
export function checkInterventions(interventions: readonly Intervention[], cfg: ModelConfig): void {
  for (const iv of interventions) {
    if (!isSiteName(iv.site, cfg.numLayers)) throw new PersonaError(`no hook site '${iv.site}' in a model with ${cfg.numLayers} layers`, { field: 'layer' });
    if (iv.vector.length !== cfg.hiddenSize)
      throw new PersonaError(`vector has hidden size ${iv.vector.length}, the model has ${cfg.hiddenSize}`, { field: 'vector' });
    if (iv.op === 'ablate' && norm(iv.vector) === 0) throw new PersonaError('cannot ablate a zero vector (no direction)', { field: 'vector' });
  }
}

export function interventionHooks(interventions: readonly Intervention[], cfg: ModelConfig): Hook[] {
  checkInterventions(interventions, cfg);
  return interventions.map((iv) => ({ site: iv.site, fn: iv.op === 'add' ? addHook(iv.vector, iv.coef, iv.positions) : ablateHook(iv.vector) }));
}

function addHook(vector: Float32Array, coef: number, positions: Positions) {
  return (h: tf.Tensor3D, ctx: HookContext): tf.Tensor3D => {
    if (positions === 'prompt' && ctx.pastLength > 0) return h;
    const delta = tf.mul(tf.tensor1d(vector), coef); // [H]
    if (positions === 'response') {
      const last = new Float32Array(ctx.seq);
      last[ctx.seq - 1] = 1;
      return tf.add(h, tf.mul(tf.tensor3d(last, [1, ctx.seq, 1]), delta));
    }
    return tf.add(h, delta);
  };
}

function ablateHook(vector: Float32Array) {
  const n = norm(vector);
  const unit = vector.map((x) => x / n);
  return (h: tf.Tensor3D): tf.Tensor3D => {
    const [B, T, H] = h.shape;
    const u = tf.tensor2d(unit, [H, 1]);
    const flat = h.reshape([B * T, H]);
    return tf.sub(flat, tf.matMul(tf.matMul(flat, u), u, false, true)).reshape([B, T, H]);
  };
}

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}
