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

/**
 * Hooks for a batch whose rows carry different interventions (a server's running batch): row b gets rows[b], as if
 * it ran alone. At each site the rows' interventions are applied slot by slot (slot j = each row's j-th intervention
 * at that site, in list order); a row without one in a slot gets an exact no-op (adds zero, projects out a zero
 * direction), so its activations are those of the row alone.
 */
export function batchInterventionHooks(rows: readonly (readonly Intervention[])[], cfg: ModelConfig): Hook[] {
  rows.forEach((r) => checkInterventions(r, cfg));
  const B = rows.length;
  const H = cfg.hiddenSize;
  const sites: SiteName[] = [];
  for (const r of rows) for (const iv of r) if (!sites.includes(iv.site)) sites.push(iv.site);
  return sites.map((site) => {
    const perRow = rows.map((r) => r.filter((iv) => iv.site === site));
    const slots = Math.max(...perRow.map((r) => r.length));
    // Host-side constants per slot: the steering deltas (coef·v rounded as tf.mul(v, coef) rounds it) and unit
    // ablation directions, zeros for rows without one.
    const deltas: (Float32Array | null)[] = [];
    const units: (Float32Array | null)[] = [];
    const adds: (Positions | null)[][] = [];
    for (let j = 0; j < slots; j++) {
      let d: Float32Array | null = null;
      let u: Float32Array | null = null;
      const pos: (Positions | null)[] = [];
      perRow.forEach((r, b) => {
        const iv = r[j];
        pos.push(iv?.op === 'add' ? iv.positions : null);
        if (iv?.op === 'add') {
          d ??= new Float32Array(B * H);
          const c = Math.fround(iv.coef);
          for (let i = 0; i < H; i++) d[b * H + i] = c * iv.vector[i];
        } else if (iv?.op === 'ablate') {
          u ??= new Float32Array(B * H);
          const n = norm(iv.vector);
          for (let i = 0; i < H; i++) u[b * H + i] = iv.vector[i] / n;
        }
      });
      deltas.push(d);
      units.push(u);
      adds.push(pos);
    }
    const fn = (h0: tf.Tensor3D, ctx: HookContext): tf.Tensor3D => {
      let h = h0;
      const T = ctx.seq;
      for (let j = 0; j < slots; j++) {
        const d = deltas[j];
        if (d) {
          // Which positions of each row this slot adds to (see the Positions convention above).
          const mask = new Float32Array(B * T);
          adds[j].forEach((p, b) => {
            if (p === 'all' || (p === 'prompt' && ctx.pastLength === 0)) mask.fill(1, b * T, (b + 1) * T);
            else if (p === 'response') mask[b * T + T - 1] = 1;
          });
          const delta = tf.tensor3d(d, [B, 1, H]);
          h = tf.add(h, T === 1 && mask.every((m) => m === 1) ? delta : tf.mul(tf.tensor3d(mask, [B, T, 1]), delta));
        }
        const u = units[j];
        if (u) {
          const U = tf.tensor3d(u, [B, H, 1]);
          h = tf.sub(h, tf.matMul(tf.matMul(h, U), U, false, true));
        }
      }
      return h;
    };
    return { site, fn };
  });
}
