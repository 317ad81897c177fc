/**
 * One forward + backward pass: the training objective and its gradients, without any update.
 *
 *   objective = ceScale · Σ CE(loss tokens) + regScale · projection penalty
 *
 * Gradients are taken either w.r.t. every base parameter (full finetuning, `persona train-step`) or only
 * w.r.t. LoRA adapter matrices (base frozen: no gradient is even computed for it).
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { Model, checkTokens, hfParameterValues, parameterSpecs } from '../model/checkpoint';
import { readValues } from '../backend/read';
import { ModelConfig } from '../model/config';
import { Hook } from '../model/hooks';
import { Intervention, interventionHooks } from '../model/interventions';
import { LinearAdapter, Params, forward, vocabChunks } from '../model/transformer';
import { IGNORE_INDEX, causalLmLossSum } from './loss';

/** A training batch: right-padded ids, labels (−100 = no loss) and attention mask, all [B][T]. */
export interface TrainBatch {
  ids: number[][];
  labels: number[][];
  attentionMask?: number[][];
}

/**
 * Projection regularization: penalty = Σ_b (p_b − p⁰_b)², p_b = mean over row b's response tokens of
 * hidden_states[L]·u (u = v/|v|) under the model being trained, p⁰_b the same under the frozen base.
 */
export interface ProjectionPenalty {
  layer: number;
  unit: Float32Array;
}

/** LoRA adapters being trained, by module name ("model.layers.0.self_attn.q_proj"). */
export type Adapters = ReadonlyMap<string, LinearAdapter>;

export interface ObjectiveOptions {
  hooks?: readonly Hook[];
  /** Adapter dropout seed (training mode); undefined = no dropout. */
  dropoutSeed?: number;
  /** Multiplies the CE sum (1 / number of loss tokens of the accumulated batch). Default 1 / this batch's count. */
  ceScale?: number;
  projection?: ProjectionPenalty & { weight: number; baseParams: Params };
}

export interface ObjectiveResult {
  /** Σ CE over loss tokens of this batch. */
  ceSum: number;
  nLossTokens: number;
  /** Σ_b (p_b − p⁰_b)² (0 without a projection penalty). */
  penalty: number;
  /** Gradients by trainable name (base: HF name in memory layout; adapters: "<module>.A"/"<module>.B"). Caller disposes. */
  grads: Map<string, tf.Tensor>;
}

/** Position ids 0..T−1 for every row: right-padded training batches (HF's default in training). */
export function trainingPositions(ids: number[][]): number[][] {
  return ids.map((row) => row.map((_, t) => t));
}

/** Names under which adapter matrices are differentiated. */
export const adapterKey = (module: string, m: 'A' | 'B') => `${module}.${m}`;

export async function objectiveAndGrads(cfg: ModelConfig, base: Params, adapters: Adapters | null, batch: TrainBatch, opts: ObjectiveOptions = {}): Promise<ObjectiveResult> {
  checkTokens(batch.ids, cfg.vocabSize, 'model');
  const input = { ids: batch.ids, attentionMask: batch.attentionMask, positionIds: trainingPositions(batch.ids) };
  const names: string[] = [];
  const xs: tf.Tensor[] = [];
  if (adapters) {
    for (const [m, a] of adapters) {
      names.push(adapterKey(m, 'A'), adapterKey(m, 'B'));
      xs.push(a.A, a.B);
    }
  } else {
    for (const [n, t] of base) {
      names.push(n);
      xs.push(t);
    }
  }
  const responseMask = batch.labels.map((row) => row.map((y) => (y === IGNORE_INDEX ? 0 : 1)));
  const proj = opts.projection;
  const baseProj = proj ? meanProjections(cfg, proj.baseParams, input, proj, responseMask) : null;

  // Filled inside f (closure); an object so that TypeScript does not narrow the fields to null.
  const kept: { ce: tf.Scalar | null; pen: tf.Scalar | null; count: number } = { ce: null, pen: null, count: 0 };
  const f = (...ts: tf.Tensor[]): tf.Scalar => {
    let params: Params = base;
    let ads: Map<string, LinearAdapter> | undefined;
    if (adapters) {
      ads = new Map();
      let i = 0;
      for (const [m, a] of adapters) {
        ads.set(m, { ...a, A: ts[i] as tf.Tensor2D, B: ts[i + 1] as tf.Tensor2D });
        i += 2;
      }
    } else params = new Map(names.map((n, i) => [n, ts[i]]));
    const out = forward(cfg, params, input, { hooks: opts.hooks, adapters: ads, dropoutSeed: opts.dropoutSeed, hiddenStates: !!proj });
    const { sum, count: n } = causalLmLossSum(out.logits!, batch.labels);
    kept.count = n;
    const scale = opts.ceScale ?? (n > 0 ? 1 / n : 0);
    let total = tf.mul(sum, scale) as tf.Scalar;
    kept.ce = tf.keep(sum);
    if (proj && baseProj) {
      const p = projectionOf(out.hiddenStates![proj.layer], proj.unit, responseMask);
      const pen = tf.sum(tf.square(tf.sub(p, baseProj))) as tf.Scalar;
      kept.pen = tf.keep(pen);
      total = tf.add(total, tf.mul(pen, proj.weight));
    }
    return total;
  };
  try {
    const { value, grads } = tf.valueAndGrads(f)(xs);
    value.dispose();
    const map = new Map<string, tf.Tensor>();
    names.forEach((n, i) => map.set(n, grads[i]));
    try {
      // CE sum and penalty in one read: each read waits for the GPU.
      const both = tf.tidy(() => tf.stack([kept.ce ?? tf.scalar(0), kept.pen ?? tf.scalar(0)]));
      let ce: number;
      let pen: number;
      try {
        [ce, pen] = await readValues(both);
      } finally {
        both.dispose();
      }
      return { ceSum: ce, nLossTokens: kept.count, penalty: pen, grads: map };
    } catch (e) {
      tf.dispose(grads);
      throw e;
    }
  } finally {
    for (const t of [kept.ce, kept.pen, baseProj]) t?.dispose();
  }
}

/** Per-row mean of h·u over response tokens, [B]. h: [B, T, H]. */
function projectionOf(h: tf.Tensor3D, unit: Float32Array, responseMask: number[][]): tf.Tensor1D {
  return tf.tidy(() => {
    const [B, T, H] = h.shape;
    const proj = tf.matMul(h.reshape([B * T, H]), tf.tensor2d(unit, [H, 1])).reshape([B, T]);
    const m = tf.tensor2d(responseMask.flat(), [B, T]);
    const n = responseMask.map((r) => Math.max(1, r.reduce((a, b) => a + b, 0)));
    return tf.div(tf.sum(tf.mul(proj, m), 1), tf.tensor1d(n)) as tf.Tensor1D;
  });
}

function meanProjections(cfg: ModelConfig, params: Params, input: Parameters<typeof forward>[2], pen: ProjectionPenalty, responseMask: number[][]): tf.Tensor1D {
  return tf.tidy(() => {
    const out = forward(cfg, params, input, { hiddenStates: true, logits: 'none' });
    return projectionOf(out.hiddenStates![pen.layer], pen.unit, responseMask);
  });
}

export interface TrainStepResult {
  /** Mean CE over the loss tokens of the whole batch (HF's loss). */
  loss: number;
  nLossTokens: number;
  /** L2 norm of the gradient of every parameter, by Hugging Face name. */
  gradNorms: Record<string, number>;
  /** Full gradients (Hugging Face layout, flattened row-major) of the parameters asked for. */
  grads: Record<string, Float32Array>;
}

/**
 * `persona train-step`: one forward and backward pass of HF's SFT loss w.r.t. every parameter, no update.
 * The batch is right padded; position ids are 0..T−1.
 */
export async function trainStep(model: Model, batch: TrainBatch, opts: { interventions?: Intervention[]; gradsOf?: string[] } = {}): Promise<TrainStepResult> {
  const cfg = model.config;
  const hooks = opts.interventions?.length ? interventionHooks(opts.interventions, cfg) : undefined;
  const r = await objectiveAndGrads(cfg, model.params, null, batch, { hooks });
  try {
    if (r.nLossTokens === 0) throw new PersonaError('no label is different from -100: the loss is undefined', { field: 'labels' });
    // By Hugging Face name: a parameter held as vocabulary chunks has one gradient per chunk.
    // Every norm in one read (tf.stack's concat splits its inputs to respect the storage-buffer limit).
    const specs = parameterSpecs(cfg);
    const sq = tf.tidy(() => tf.stack(specs.map((s) => vocabChunks(r.grads, s.name).reduce<tf.Tensor>((acc, g) => tf.add(acc, tf.sum(tf.square(g))), tf.scalar(0)))));
    const gradNorms: Record<string, number> = {};
    try {
      const values = await readValues(sq);
      specs.forEach((s, i) => (gradNorms[s.name] = Math.sqrt(values[i])));
    } finally {
      sq.dispose();
    }
    const grads: Record<string, Float32Array> = {};
    for (const n of opts.gradsOf ?? []) grads[n] = await hfParameterValues(cfg, r.grads, n);
    return { loss: r.ceSum / r.nLossTokens, nLossTokens: r.nLossTokens, gradNorms, grads };
  } finally {
    tf.dispose([...r.grads.values()]);
  }
}
