/**
 * config.json → ModelConfig. Per-family differences are data (FAMILIES), not branches in the model:
 * the transformer reads only the resolved booleans/numbers below.
 */
import * as fs from 'fs';
import * as path from 'path';
import { PersonaError } from '../errors';

export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface ModelConfig {
  /** config.json's `architectures[0]`, e.g. "LlamaForCausalLM". */
  architecture: string;
  family: FamilyName;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (Qwen2 always; Llama when attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama attention_bias). */
  oBias: boolean;
  /** Bias on gate/up/down (Llama mlp_bias). */
  mlpBias: boolean;
  /** Per-head RMSNorm of q and k before rotary embeddings (Qwen3). */
  qkNorm: boolean;
  /** Attention window in tokens, or null for full causal attention. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  maxPositionEmbeddings: number;
}

export type FamilyName = 'llama' | 'qwen2' | 'qwen3' | 'mistral';

interface FamilySpec {
  family: FamilyName;
  /** How q/k/v bias is decided: always on, always off, or from config.attention_bias. */
  qkvBias: 'always' | 'never' | 'config';
  oBias: 'never' | 'config';
  mlpBias: 'never' | 'config';
  qkNorm: boolean;
  /** Whether config.sliding_window applies only when use_sliding_window is true (Qwen) or whenever set (Mistral). */
  slidingWindow: 'never' | 'if_use_sliding_window' | 'if_set';
}

/** The supported architectures, as data. */
export const FAMILIES: Record<string, FamilySpec> = {
  LlamaForCausalLM: { family: 'llama', qkvBias: 'config', oBias: 'config', mlpBias: 'config', qkNorm: false, slidingWindow: 'never' },
  Qwen2ForCausalLM: { family: 'qwen2', qkvBias: 'always', oBias: 'never', mlpBias: 'never', qkNorm: false, slidingWindow: 'if_use_sliding_window' },
  Qwen3ForCausalLM: { family: 'qwen3', qkvBias: 'config', oBias: 'config', mlpBias: 'never', qkNorm: true, slidingWindow: 'if_use_sliding_window' },
  MistralForCausalLM: { family: 'mistral', qkvBias: 'never', oBias: 'never', mlpBias: 'never', qkNorm: false, slidingWindow: 'if_set' },
};

/** Reads and validates `<dir>/config.json`. Every missing or wrong-typed field names the file and field. */
export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new PersonaError('no config.json: not a Hugging Face checkpoint directory', { file: dir });
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PersonaError(`not valid JSON (${(e as Error).message})`, { file });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PersonaError('expected a JSON object', { file });
  const genFile = path.join(dir, 'generation_config.json');
  let gen: Record<string, unknown> = {};
  if (fs.existsSync(genFile)) {
    try {
      gen = JSON.parse(fs.readFileSync(genFile, 'utf8'));
    } catch (e) {
      throw new PersonaError(`not valid JSON (${(e as Error).message})`, { file: genFile });
    }
  }
  return parseModelConfig(raw as Record<string, unknown>, file, gen);
}

export function parseModelConfig(c: Record<string, unknown>, file: string, generationConfig: Record<string, unknown> = {}): ModelConfig {
  const num = (field: string, opts: { int?: boolean; optional?: boolean; positive?: boolean } = {}): number | undefined => {
    const v = c[field];
    if (v === undefined || v === null) {
      if (opts.optional) return undefined;
      throw new PersonaError('missing required field', { file, field });
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new PersonaError(`expected a number, got ${JSON.stringify(v)}`, { file, field });
    if (opts.int && !Number.isInteger(v)) throw new PersonaError(`expected an integer, got ${v}`, { file, field });
    if (opts.positive && v <= 0) throw new PersonaError(`expected a positive number, got ${v}`, { file, field });
    return v;
  };
  const bool = (field: string, dflt: boolean): boolean => {
    const v = c[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw new PersonaError(`expected true or false, got ${JSON.stringify(v)}`, { file, field });
    return v;
  };

  const archs = c.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string')
    throw new PersonaError('missing or not a list of architecture names', { file, field: 'architectures' });
  const architecture = archs[0] as string;
  const spec = FAMILIES[architecture];
  if (!spec)
    throw new PersonaError(`unsupported architecture '${architecture}'; supported: ${Object.keys(FAMILIES).join(', ')}`, { file, field: 'architectures' });

  const hiddenSize = num('hidden_size', { int: true, positive: true })!;
  const numHeads = num('num_attention_heads', { int: true, positive: true })!;
  const numKvHeads = num('num_key_value_heads', { int: true, positive: true, optional: true }) ?? numHeads;
  if (numHeads % numKvHeads !== 0)
    throw new PersonaError(`num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`, { file, field: 'num_key_value_heads' });
  // Qwen2 has no head_dim in config; Qwen3 states one that may differ from hidden/heads.
  const headDim = num('head_dim', { int: true, positive: true, optional: true }) ?? hiddenSize / numHeads;
  if (!Number.isInteger(headDim)) throw new PersonaError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and no head_dim is given`, { file, field: 'head_dim' });
  if (headDim % 2 !== 0) throw new PersonaError(`head_dim ${headDim} must be even for rotary embeddings`, { file, field: 'head_dim' });

  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw new PersonaError(`unsupported hidden_act '${String(act)}' (only silu)`, { file, field: 'hidden_act' });

  const attentionBias = bool('attention_bias', false);
  const pick = (how: 'always' | 'never' | 'config', configValue: boolean) => (how === 'always' ? true : how === 'never' ? false : configValue);

  let slidingWindow: number | null = null;
  const sw = num('sliding_window', { int: true, optional: true, positive: true });
  if (sw !== undefined) {
    if (spec.slidingWindow === 'if_set' || (spec.slidingWindow === 'if_use_sliding_window' && bool('use_sliding_window', false))) slidingWindow = sw;
  }
  if (slidingWindow !== null && spec.slidingWindow === 'if_use_sliding_window') {
    // Qwen applies the window only to layers >= max_window_layers; we do not model per-layer windows.
    throw new PersonaError('use_sliding_window true is not supported for this family', { file, field: 'use_sliding_window' });
  }

  const eos = c.eos_token_id ?? generationConfig.eos_token_id;
  const genEos = generationConfig.eos_token_id;
  const eosIds = idList(genEos !== undefined ? genEos : eos, file, 'eos_token_id');
  const optId = (field: string): number | null => {
    const v = c[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new PersonaError(`expected an integer token id, got ${JSON.stringify(v)}`, { file, field });
    return v;
  };

  return {
    architecture,
    family: spec.family,
    hiddenSize,
    numLayers: num('num_hidden_layers', { int: true, positive: true })!,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: num('intermediate_size', { int: true, positive: true })!,
    vocabSize: num('vocab_size', { int: true, positive: true })!,
    rmsNormEps: num('rms_norm_eps', { positive: true, optional: true }) ?? 1e-6,
    ropeTheta: num('rope_theta', { positive: true, optional: true }) ?? 10000,
    ropeScaling: parseRopeScaling(c.rope_scaling, file),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    qkvBias: pick(spec.qkvBias, attentionBias),
    oBias: pick(spec.oBias, attentionBias),
    mlpBias: pick(spec.mlpBias, bool('mlp_bias', false)),
    qkNorm: spec.qkNorm,
    slidingWindow,
    bosTokenId: optId('bos_token_id'),
    eosTokenIds: eosIds,
    padTokenId: optId('pad_token_id'),
    maxPositionEmbeddings: num('max_position_embeddings', { int: true, positive: true, optional: true }) ?? 4096,
  };
}

function idList(v: unknown, file: string, field: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const x of list) if (typeof x !== 'number' || !Number.isInteger(x)) throw new PersonaError(`expected token id(s), got ${JSON.stringify(v)}`, { file, field });
  return list as number[];
}

function parseRopeScaling(v: unknown, file: string): RopeScaling {
  if (v === undefined || v === null) return { type: 'none' };
  const field = 'rope_scaling';
  if (typeof v !== 'object' || Array.isArray(v)) throw new PersonaError('expected an object or null', { file, field });
  const r = v as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  const n = (k: string, dflt?: number): number => {
    const x = r[k] ?? dflt;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new PersonaError(`expected a number`, { file, field: `${field}.${k}` });
    return x;
  };
  if (type === 'default') return { type: 'none' };
  if (type === 'linear') return { type: 'linear', factor: n('factor') };
  if (type === 'llama3')
    return {
      type: 'llama3',
      factor: n('factor'),
      lowFreqFactor: n('low_freq_factor'),
      highFreqFactor: n('high_freq_factor'),
      originalMaxPositionEmbeddings: n('original_max_position_embeddings'),
    };
  throw new PersonaError(`unsupported rope type '${String(type)}' (supported: default, linear, llama3)`, { file, field: `${field}.rope_type` });
}

/** Inverse frequencies of rotary embeddings, [headDim/2], including Llama-3.1's frequency-dependent scaling. */
export function ropeInverseFrequencies(cfg: ModelConfig): Float32Array {
  const half = cfg.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // Computed as float32 the way torch does: base ** (arange(0, dim, 2) / dim) in float32.
    inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.headDim);
  }
  const s = cfg.ropeScaling;
  if (s.type === 'linear') for (let i = 0; i < half; i++) inv[i] /= s.factor;
  if (s.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = inv[i] / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}
