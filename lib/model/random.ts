/**
 * Models with random weights of a real checkpoint's shape, for speed measurements without the checkpoint
 * (`persona bench --shape NAME`). The shapes are Hugging Face config.json fields (shapes.json), parsed by the same
 * parser as a checkpoint's config.json.
 *
 * Weights are computed on the backend, not on the host: a 7B model's values drawn in JS would take minutes and a
 * second host copy. Element (r, c) of a parameter is
 *
 *   x = (a_r·c_c + b_r·d_c) mod P,   value = std·√12·((x + ½)/P − ½)     (uniform, mean 0, standard deviation std)
 *
 * with a_r, b_r, c_c, d_c integers in [0, P) hashed on the host from (seed, parameter name, row or column index):
 * O(rows + cols) host work per parameter. P is prime and every intermediate an integer below 2^24, so float32
 * arithmetic is exact on every backend (float ops only: tfjs computes some int32 ops through float32 on webgpu;
 * cpu, wasm and webgpu give the same bits), and values depend only on the global row index (a parameter split into
 * vocabulary chunks holds the same values). For a fixed row, x is uniform over the columns' random (c, d), and two
 * rows are independent unless their (a, b) are proportional mod P.
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { Model, ParameterRows, ParameterSpec, parameterSpecs } from './checkpoint';
import { ModelConfig, parseModelConfig } from './config';
import shapesJson from './shapes.json';

const SHAPES_FILE = 'lib/model/shapes.json';

/** Hugging Face config.json fields by shape name. */
export const SHAPES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = Object.fromEntries(
  Object.entries(shapesJson as Record<string, unknown>).filter(([k]) => !k.startsWith('_')),
) as Record<string, Record<string, unknown>>;

export function shapeNames(): string[] {
  return Object.keys(SHAPES);
}

/**
 * The ModelConfig of a known shape; `overrides` replaces config.json fields (tests use it for small variants of the
 * same families).
 */
export function shapeConfig(name: string, overrides: Record<string, unknown> = {}): ModelConfig {
  const raw = Object.prototype.hasOwnProperty.call(SHAPES, name) ? SHAPES[name] : undefined;
  if (!raw) throw new PersonaError(`unknown shape '${name}'; known shapes: ${shapeNames().join(', ')}`, { field: 'shape' });
  return parseModelConfig({ ...raw, ...overrides }, `${SHAPES_FILE} (${name})`);
}

/** Number of parameters (and so float32 weights ×4 bytes) a config implies. */
export function numParametersOf(cfg: ModelConfig): number {
  return parameterSpecs(cfg).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}

export interface RandomModelOptions {
  /** Same seed, same weights (on a given backend; across backends too, as the arithmetic is exact). Default 0. */
  seed?: number | string;
  maxTensorBytes?: number;
  onTensor?: (name: string, i: number, n: number) => void;
}

/** Standard deviation of matrices and biases, as in Hugging Face's initializer_range; norm weights are ones. */
export const RANDOM_STD = 0.02;

/** A model of `cfg` with seeded random weights made on the backend (see the file comment). */
export async function randomModel(cfg: ModelConfig, opts: RandomModelOptions = {}): Promise<Model> {
  return Model.build(cfg, randomParameterRows(opts.seed ?? 0), { dir: null, maxTensorBytes: opts.maxTensorBytes, onTensor: opts.onTensor });
}

// Largest prime with 2(P−1)² + P < 2^24: a·c + b·d and the quotient's multiple stay exact in float32.
const P = 2897;
/**
 * A float32 a little below 1/P: y times it (one correctly rounded float32 multiply, on every backend) is below y/P
 * and within 0.01 of it for y < 2^24, so its floor is y div P or one less. A division would round either way.
 */
const BELOW_1_OVER_P = Math.fround(Math.fround(1 / P) * (1 - 2 ** -20));

/** Rows lo..hi of every parameter, as tensors computed on the backend. */
export function randomParameterRows(seed: number | string): ParameterRows {
  const seedKey = fnv1a(String(seed));
  return (spec: ParameterSpec, lo: number, hi: number): tf.Tensor => {
    const n = hi - lo;
    if (spec.shape.length === 1 && !spec.name.endsWith('.bias')) return tf.fill([n], 1); // RMSNorm weights
    const cols = spec.shape.length === 2 ? spec.shape[1] : 1;
    const t = uniformRows(mix(seedKey, fnv1a(spec.name)), lo, hi, cols, RANDOM_STD);
    if (spec.shape.length === 2) return t;
    const flat = t.reshape([n]);
    t.dispose();
    return flat;
  };
}

/**
 * [hi − lo, cols] of the formula in the file comment. Intermediates are freed as it goes: at most three full-size
 * tensors exist at once (a large embedding chunk would otherwise need a dozen).
 */
function uniformRows(key: number, lo: number, hi: number, cols: number, std: number): tf.Tensor2D {
  const ints = (which: number, from: number, count: number, min: number) => {
    const k = mix(key, which);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = min + (mix(k, from + i) % (P - min));
    return out;
  };
  const n = hi - lo;
  const small = [
    tf.tensor2d(ints(1, lo, n, 1), [n, 1]), // a ≥ 1: no all-zero row
    tf.tensor2d(ints(2, lo, n, 0), [n, 1]),
    tf.tensor2d(ints(3, 0, cols, 0), [1, cols]),
    tf.tensor2d(ints(4, 0, cols, 0), [1, cols]),
  ];
  const [a, b, c, d] = small;
  const then = <T extends tf.Tensor>(out: T, ...free: tf.Tensor[]): T => {
    tf.dispose(free);
    return out;
  };
  try {
    const ac = tf.mul(a, c);
    const bd = tf.mul(b, d);
    const y = then(tf.add(ac, bd), ac, bd); // a·c + b·d < 2^24: exact
    // floor(y · BELOW_1_OVER_P) is floor(y / P) or one less, never more (see BELOW_1_OVER_P), so y − q·P is in [0, 2P).
    const yr = tf.mul(y, BELOW_1_OVER_P);
    const q = then(tf.floor(yr), yr);
    const qp = then(tf.mul(q, P), q);
    const m = then(tf.sub(y, qp), y, qp);
    const over = tf.sub(m, P - 0.5);
    const isOver = then(tf.step(over), over); // 1 where m ≥ P
    const back = then(tf.mul(isOver, P), isOver);
    const x = then(tf.sub(m, back), m, back); // in [0, P)
    const scale = std * Math.sqrt(12);
    const scaled = then(tf.mul(x, scale / P), x);
    return then(tf.add(scaled, scale * (0.5 / P - 0.5)), scaled) as tf.Tensor2D;
  } finally {
    tf.dispose(small);
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Murmur3's finaliser over a combined pair: a well-mixed unsigned 32-bit hash of (h, x). */
function mix(h: number, x: number): number {
  let z = (Math.imul(h ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(x, 0xc2b2ae35)) >>> 0;
  z ^= z >>> 16;
  z = Math.imul(z, 0x85ebca6b);
  z ^= z >>> 13;
  z = Math.imul(z, 0xc2b2ae35);
  z ^= z >>> 16;
  return z >>> 0;
}
