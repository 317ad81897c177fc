/**
 * LoRA with PEFT's semantics: on each target linear W [out, in], y = W x + scale · B(A(dropout(x))),
 * A = lora_A.weight [r, in] kaiming-uniform(a=√5) → U(−1/√in, 1/√in), B = lora_B.weight [out, r] zeros,
 * scale = alpha / r, or alpha / √r with rsLoRA. In memory A and B are held transposed ([in, r], [r, out])
 * as the engine's adapters expect.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { PersonaError } from '../errors';
import { ModelConfig } from '../model/config';
import { LinearAdapter, WEIGHT_NAMES } from '../model/transformer';
import { parameterSpecs } from '../model/checkpoint';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraSpec {
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  targetModules: string[];
}

export function loraScale(spec: Pick<LoraSpec, 'r' | 'alpha' | 'useRslora'>): number {
  return spec.useRslora ? spec.alpha / Math.sqrt(spec.r) : spec.alpha / spec.r;
}

export function checkLoraSpec(spec: LoraSpec): void {
  if (!Number.isInteger(spec.r) || spec.r <= 0) throw new PersonaError(`LoRA rank must be a positive integer, got ${spec.r}`, { field: 'r' });
  if (!Number.isFinite(spec.alpha)) throw new PersonaError(`lora_alpha must be a number, got ${spec.alpha}`, { field: 'lora_alpha' });
  if (!(spec.dropout >= 0 && spec.dropout < 1)) throw new PersonaError(`lora_dropout must be in [0, 1), got ${spec.dropout}`, { field: 'lora_dropout' });
  if (spec.targetModules.length === 0) throw new PersonaError('no target modules', { field: 'target_modules' });
  for (const t of spec.targetModules)
    if (!(LORA_TARGETS as readonly string[]).includes(t))
      throw new PersonaError(`unknown target module '${t}' (supported: ${LORA_TARGETS.join(', ')})`, { field: 'target_modules' });
}

/** Adapted modules in Hugging Face parameter order, with their [in, out] sizes. */
export function loraModules(cfg: ModelConfig, targets: readonly string[]): { module: string; inDim: number; outDim: number }[] {
  const set = new Set(targets);
  const out: { module: string; inDim: number; outDim: number }[] = [];
  for (const s of parameterSpecs(cfg)) {
    if (!s.linear || s.name === WEIGHT_NAMES.lmHead) continue;
    const module = s.name.slice(0, -'.weight'.length);
    const leaf = module.slice(module.lastIndexOf('.') + 1);
    if (set.has(leaf)) out.push({ module, inDim: s.shape[1], outDim: s.shape[0] });
  }
  return out;
}

/** Trainable LoRA matrices as tf.Variables (A [in, r], B [r, out]) by module name. */
export class LoraAdapters {
  private constructor(
    readonly spec: LoraSpec,
    readonly A: Map<string, tf.Variable>,
    readonly B: Map<string, tf.Variable>,
  ) {}

  /** Fresh adapters, PEFT's init, reproducible from `seed`. */
  static init(cfg: ModelConfig, spec: LoraSpec, seed: number): LoraAdapters {
    checkLoraSpec(spec);
    const rng = seedrandom(`lora:${seed}`);
    const A = new Map<string, tf.Variable>();
    const B = new Map<string, tf.Variable>();
    for (const { module, inDim, outDim } of loraModules(cfg, spec.targetModules)) {
      const bound = 1 / Math.sqrt(inDim);
      const a = new Float32Array(spec.r * inDim); // PEFT layout [r, in], row-major
      for (let i = 0; i < a.length; i++) a[i] = (rng() * 2 - 1) * bound;
      A.set(module, tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(a, [spec.r, inDim])))));
      B.set(module, tf.tidy(() => tf.variable(tf.zeros([spec.r, outDim]))));
    }
    return new LoraAdapters(spec, A, B);
  }

  /** Adapters from PEFT-layout matrices (lora_A.weight [r, in], lora_B.weight [out, r]). */
  static fromPeft(spec: LoraSpec, mats: Map<string, { A: { data: Float32Array; shape: number[] }; B: { data: Float32Array; shape: number[] } }>): LoraAdapters {
    const A = new Map<string, tf.Variable>();
    const B = new Map<string, tf.Variable>();
    for (const [module, m] of mats) {
      A.set(module, tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(m.A.data, m.A.shape as [number, number])))));
      B.set(module, tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(m.B.data, m.B.shape as [number, number])))));
    }
    return new LoraAdapters(spec, A, B);
  }

  get scale(): number {
    return loraScale(this.spec);
  }

  /** The engine's adapter map (shares the variables). */
  adapters(): Map<string, LinearAdapter> {
    const m = new Map<string, LinearAdapter>();
    for (const [module, a] of this.A) m.set(module, { A: a as tf.Tensor2D, B: this.B.get(module)! as tf.Tensor2D, scale: this.scale, dropout: this.spec.dropout });
    return m;
  }

  /** Trainable variables by trainer key ("<module>.A" / "<module>.B"). */
  variables(): Map<string, tf.Variable> {
    const m = new Map<string, tf.Variable>();
    for (const [module, a] of this.A) {
      m.set(`${module}.A`, a);
      m.set(`${module}.B`, this.B.get(module)!);
    }
    return m;
  }

  dispose(): void {
    tf.dispose([...this.A.values(), ...this.B.values()]);
  }
}
