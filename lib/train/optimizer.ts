/**
 * AdamW exactly as torch.optim.AdamW (decoupled weight decay), global-norm gradient clipping as
 * torch.nn.utils.clip_grad_norm_, and Hugging Face get_scheduler's learning-rate schedules.
 * Written here rather than using tf.train.adam because tfjs has no decoupled weight decay and its
 * optimizer state cannot be saved and restored bit-exactly for resume.
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { readScalar, readValues } from '../backend/read';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Which parameters get weight decay (HF Trainer: not biases nor norm weights). Default all. */
  decays?: (name: string) => boolean;
}

/** HF Trainer's decay rule: no weight decay on biases and (RMS/Layer)norm weights. */
export function hfDecays(name: string): boolean {
  return !/\.bias$/.test(name) && !/norm/i.test(name);
}

export class AdamW {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  private readonly o: Required<AdamWOptions>;

  constructor(readonly params: Map<string, tf.Variable>, opts: AdamWOptions = {}) {
    this.o = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decays: () => true, ...opts };
    for (const [n, p] of params) {
      this.m.set(n, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(n, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** One update with learning rate lr; grads by parameter name (missing = zero gradient is NOT assumed: all required). */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.step++;
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.o;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, this.step));
    const stepSize = lr / bc1;
    for (const [n, p] of this.params) {
      const g = grads.get(n);
      if (!g) throw new PersonaError(`internal: no gradient for ${n}`);
      tf.tidy(() => {
        const m = this.m.get(n)!;
        const v = this.v.get(n)!;
        const decayed = weightDecay !== 0 && this.o.decays(n) ? tf.mul(p, 1 - lr * weightDecay) : p;
        const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v1), bc2Sqrt), eps);
        m.assign(m1);
        v.assign(v1);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize)));
      });
    }
  }

  /** Moments as plain arrays (for checkpoints). */
  async stateArrays(): Promise<{ step: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> }> {
    const read = async (src: Map<string, tf.Variable>) => {
      const out = new Map<string, Float32Array>();
      for (const [n, t] of src) out.set(n, await readValues(t));
      return out;
    };
    return { step: this.step, m: await read(this.m), v: await read(this.v) };
  }

  loadState(step: number, m: Map<string, Float32Array>, v: Map<string, Float32Array>, where: string): void {
    for (const [name, src, dst] of [['m', m, this.m], ['v', v, this.v]] as const)
      for (const [n, t] of dst) {
        const a = src.get(n);
        if (!a || a.length !== t.size) throw new PersonaError(`optimizer state ${name} for '${n}' missing or of the wrong size`, { file: where, tensor: n });
        t.assign(tf.tensor(a, t.shape));
      }
    this.step = step;
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
  }
}

/** torch.nn.utils.clip_grad_norm_: scales grads in place (returns new map) if the global norm exceeds maxNorm; returns the pre-clip norm. */
export async function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): Promise<number> {
  // Summed pairwise, not with one addN: a shader binds every input of addN, and GPUs allow as few as 8 per stage.
  const sq = tf.tidy(() => [...grads.values()].reduce<tf.Tensor>((acc, g) => tf.add(acc, tf.sum(tf.square(g))), tf.scalar(0)));
  let total: number;
  try {
    total = Math.sqrt(await readScalar(sq));
  } finally {
    sq.dispose();
  }
  if (maxNorm > 0 && Number.isFinite(maxNorm)) {
    const coef = Math.min(1, maxNorm / (total + 1e-6));
    if (coef < 1)
      for (const [n, g] of grads) {
        grads.set(n, tf.mul(g, coef));
        g.dispose();
      }
  }
  return total;
}

export type SchedulerType = 'linear' | 'cosine' | 'constant' | 'constant_with_warmup';
export const SCHEDULERS: readonly SchedulerType[] = ['linear', 'cosine', 'constant', 'constant_with_warmup'];

/**
 * HF get_scheduler's multiplier for the update at optimizer step `step` (0-based: the first update uses
 * step 0, so with warmup the first update has lr 0, as in HF).
 */
export function lrMultiplier(type: SchedulerType, step: number, warmup: number, total: number): number {
  if (type === 'constant') return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  if (type === 'constant_with_warmup') return 1;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (type === 'linear') return Math.max(0, (total - step) / Math.max(1, total - warmup));
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * 0.5 * progress)));
}
