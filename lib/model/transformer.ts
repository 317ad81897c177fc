/**
 * The decoder-only transformer (Llama / Qwen2 / Qwen3 / Mistral), top to bottom:
 *   embed → N × block (RMSNorm → attention → residual → RMSNorm → SwiGLU MLP → residual) → final norm → unembed.
 * Hook sites are called where they stand in the computation (see hooks.ts for names and the layer convention).
 *
 * Shapes: B batch, T positions in this call, P positions already cached, H hidden, D head dim.
 * Linear layers work on [B·T, H] (2-D) activations: it keeps every matmul untransposed in the forward pass
 * (the fast path of the wasm backend) and avoids tfjs's 3-D×2-D matmul gradient bug.
 * Linear weights are held as [in, out], the transpose of Hugging Face's [out, in] (see checkpoint.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { ModelConfig, ropeInverseFrequencies } from './config';
import { Hook, HookContext, HookFn, SiteName, hooksBySite } from './hooks';

/** Hugging Face parameter names; the same for every supported family (differences are which exist). */
export const WEIGHT_NAMES = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  layer: (i: number) => ({
    inputNorm: `model.layers.${i}.input_layernorm.weight`,
    q: `model.layers.${i}.self_attn.q_proj`,
    k: `model.layers.${i}.self_attn.k_proj`,
    v: `model.layers.${i}.self_attn.v_proj`,
    o: `model.layers.${i}.self_attn.o_proj`,
    qNorm: `model.layers.${i}.self_attn.q_norm.weight`,
    kNorm: `model.layers.${i}.self_attn.k_norm.weight`,
    postAttnNorm: `model.layers.${i}.post_attention_layernorm.weight`,
    gate: `model.layers.${i}.mlp.gate_proj`,
    up: `model.layers.${i}.mlp.up_proj`,
    down: `model.layers.${i}.mlp.down_proj`,
  }),
};

/** A low-rank adapter on one linear module: y += scale · dropout(x) A B (PEFT LoRA, A [in, r], B [r, out]). */
export interface LinearAdapter {
  A: tf.Tensor2D;
  B: tf.Tensor2D;
  scale: number;
  dropout: number;
}

/** Per layer, the keys and values of every position seen so far: [B, kvHeads, P, D]. */
export interface KVCache {
  layers: { k: tf.Tensor4D; v: tf.Tensor4D }[];
  /** Attention mask of every cached position, per row (1 real, 0 pad). */
  mask: number[][];
  /** Position id the next token of each row gets. */
  nextPosition: number[];
}

export interface ForwardInput {
  /** Token ids [B][T]. */
  ids: number[][];
  /** 1 for real tokens, 0 for padding, [B][T]. Default: all ones. */
  attentionMask?: number[][];
  /** Position ids [B][T]. Default: cumsum(mask) − 1 continuing from the cache, pads set to 1 (as HF generate). */
  positionIds?: number[][];
  /** Continue from this cache (it is not modified; the returned cache extends it). */
  cache?: KVCache;
}

export interface ForwardOptions {
  hooks?: readonly Hook[];
  /** Return a cache that extends the input's (generation). */
  useCache?: boolean;
  /** Logits at every position [B, T, V] (default) or only at the last [B, 1, V]; 'none' skips the unembedding. */
  logits?: 'all' | 'last' | 'none';
  /** Also return Hugging Face's hidden_states: N+1 tensors [B, T, H]. */
  hiddenStates?: boolean;
  /** LoRA adapters by module name (e.g. "model.layers.0.self_attn.q_proj"). */
  adapters?: ReadonlyMap<string, LinearAdapter>;
  /** Training mode: enables adapter dropout with this seed. */
  dropoutSeed?: number;
}

export interface ForwardOutput {
  logits: tf.Tensor3D | null;
  hiddenStates: tf.Tensor3D[] | null;
  cache: KVCache | null;
}

/** Parameters by Hugging Face name (linear weights as [in, out]). */
export type Params = ReadonlyMap<string, tf.Tensor>;

export function forward(cfg: ModelConfig, params: Params, input: ForwardInput, opts: ForwardOptions = {}): ForwardOutput {
  const B = input.ids.length;
  const T = input.ids[0]?.length ?? 0;
  const past = input.cache ? input.cache.mask[0].length : 0;
  const mask = input.attentionMask ?? input.ids.map((row) => row.map(() => 1));
  const positions = input.positionIds ?? defaultPositions(mask, input.cache?.nextPosition);
  const fullMask = input.cache ? input.cache.mask.map((m, b) => m.concat(mask[b])) : mask;
  const hooks = hooksBySite(opts.hooks);
  const ctx = (site: SiteName): HookContext => ({ site, batch: B, seq: T, pastLength: past });
  let dropoutCalls = 0;

  return tf.tidy(() => {
    const p = (name: string) => {
      const t = params.get(name);
      if (!t) throw new Error(`internal: parameter ${name} not loaded`);
      return t;
    };
    /** Calls the hooks at a site on x [B·T, H]; returns the (possibly replaced) activation. */
    const site = (name: SiteName, x: tf.Tensor2D): tf.Tensor2D => {
      const fns = hooks.get(name);
      if (!fns) return x;
      let a = x.reshape([B, T, cfg.hiddenSize]) as tf.Tensor3D;
      for (const fn of fns) a = (fn(a, ctx(name)) as tf.Tensor3D | undefined) ?? a;
      return a.reshape([B * T, cfg.hiddenSize]);
    };
    const linear = (module: string, x: tf.Tensor2D, bias: boolean): tf.Tensor2D => {
      let y: tf.Tensor = tf.matMul(x, p(`${module}.weight`) as tf.Tensor2D);
      if (bias) y = tf.add(y, p(`${module}.bias`));
      const ad = opts.adapters?.get(module);
      if (ad) {
        const xin = opts.dropoutSeed !== undefined && ad.dropout > 0 ? tf.dropout(x, ad.dropout, undefined, opts.dropoutSeed + dropoutCalls++) : x;
        y = tf.add(y, tf.mul(tf.matMul(tf.matMul(xin, ad.A), ad.B), ad.scale));
      }
      return y as tf.Tensor2D;
    };
    const rmsNorm = (x: tf.Tensor, weight: tf.Tensor) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), cfg.rmsNormEps))), weight);

    const { cos, sin } = rotaryTables(cfg, positions); // [B, 1, T, D]
    const attnBias = attentionBias(fullMask, past, T, cfg.slidingWindow); // [B, 1, T, P+T]
    const hiddenStates: tf.Tensor3D[] = [];
    const record = (x: tf.Tensor2D) => opts.hiddenStates && hiddenStates.push(x.reshape([B, T, cfg.hiddenSize]) as tf.Tensor3D);
    const newCache: KVCache['layers'] = [];

    // Embedding: hidden_states[0].
    let h = site('embed', embedLookup(vocabChunks(params, WEIGHT_NAMES.embed), input.ids.flat())); // [B·T, H]
    record(h);

    for (let i = 0; i < cfg.numLayers; i++) {
      const w = WEIGHT_NAMES.layer(i);
      h = site(`blocks.${i}.resid_pre`, h);

      // Attention.
      const x = rmsNorm(h, p(w.inputNorm)) as tf.Tensor2D;
      const heads = (t: tf.Tensor2D, n: number, norm: string | null): tf.Tensor4D => {
        let r = t.reshape([B, T, n, cfg.headDim]);
        if (norm) r = rmsNorm(r, p(norm)) as tf.Tensor4D; // Qwen3: per-head RMSNorm of q and k
        return applyRotary(r.transpose([0, 2, 1, 3]) as tf.Tensor4D, cos, sin); // [B, n, T, D]
      };
      const q = heads(linear(w.q, x, cfg.qkvBias), cfg.numHeads, cfg.qkNorm ? w.qNorm : null);
      let k = heads(linear(w.k, x, cfg.qkvBias), cfg.numKvHeads, cfg.qkNorm ? w.kNorm : null);
      let v = linear(w.v, x, cfg.qkvBias).reshape([B, T, cfg.numKvHeads, cfg.headDim]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
      if (input.cache) {
        k = tf.concat([input.cache.layers[i].k, k], 2);
        v = tf.concat([input.cache.layers[i].v, v], 2);
      }
      if (opts.useCache) newCache.push({ k: tf.keep(k), v: tf.keep(v) });
      const mixed = attend(q, k, v, attnBias, cfg); // [B, heads, T, D]
      const attn = linear(w.o, mixed.transpose([0, 2, 1, 3]).reshape([B * T, cfg.numHeads * cfg.headDim]), cfg.oBias);
      const attnOut = site(`blocks.${i}.attn_out`, attn);
      h = site(`blocks.${i}.resid_mid`, tf.add(h, attnOut));

      // SwiGLU MLP.
      const y = rmsNorm(h, p(w.postAttnNorm)) as tf.Tensor2D;
      const gate = linear(w.gate, y, cfg.mlpBias);
      const mlp = linear(w.down, tf.mul(tf.mul(gate, tf.sigmoid(gate)), linear(w.up, y, cfg.mlpBias)) as tf.Tensor2D, cfg.mlpBias);
      const mlpOut = site(`blocks.${i}.mlp_out`, mlp);
      h = site(`blocks.${i}.resid_post`, tf.add(h, mlpOut));
      if (i < cfg.numLayers - 1) record(h);
    }

    // Final norm: hidden_states[N] in Hugging Face's convention.
    h = site('final_norm', rmsNorm(h, p(WEIGHT_NAMES.finalNorm)) as tf.Tensor2D);
    record(h);

    let logits: tf.Tensor3D | null = null;
    if (opts.logits !== 'none') {
      let hl = h;
      if (opts.logits === 'last') hl = h.reshape([B, T, cfg.hiddenSize]).slice([0, T - 1, 0], [B, 1, cfg.hiddenSize]).reshape([B, cfg.hiddenSize]);
      logits = unembed(params, hl).reshape([B, opts.logits === 'last' ? 1 : T, cfg.vocabSize]) as tf.Tensor3D;
    }
    const cache: KVCache | null = opts.useCache
      ? { layers: newCache, mask: fullMask, nextPosition: positions.map((row, b) => nextPositionOf(row, mask[b], input.cache?.nextPosition[b])) }
      : null;
    return { logits, hiddenStates: opts.hiddenStates ? hiddenStates : null, cache } as unknown as tf.TensorContainer;
  }) as unknown as ForwardOutput;
}

/**
 * A parameter larger than one GPU binding (the embedding, the unembedding) is held as vocabulary chunks, stored under
 * `name#i` in order: the embedding's rows [Vc, H], the unembedding's columns [H, Vc] (it is held as [in, out]).
 */
export const chunkKey = (name: string, i: number): string => `${name}#${i}`;

/** A vocabulary parameter's pieces in order: the whole tensor, or its chunks. */
export function vocabChunks(params: Params, name: string): tf.Tensor[] {
  const whole = params.get(name);
  if (whole) return [whole];
  const out: tf.Tensor[] = [];
  for (let i = 0; params.has(chunkKey(name, i)); i++) out.push(params.get(chunkKey(name, i))!);
  if (out.length === 0) throw new Error(`internal: parameter ${name} not loaded`);
  return out;
}

/** Rows of the embedding for `ids`, chunk by chunk: each chunk gathers its own ids, other rows are zeroed. */
function embedLookup(chunks: tf.Tensor[], ids: number[]): tf.Tensor2D {
  if (chunks.length === 1) return tf.gather(chunks[0], tf.tensor1d(ids, 'int32')) as tf.Tensor2D;
  let out: tf.Tensor2D | null = null;
  let lo = 0;
  for (const c of chunks) {
    const n = c.shape[0];
    const inside = ids.map((id) => (id >= lo && id < lo + n ? 1 : 0));
    // Every chunk takes part (zeros where no id falls in it), so each has a gradient when training the embedding.
    const part = tf.mul(tf.gather(c, tf.tensor1d(ids.map((id, i) => (inside[i] ? id - lo : 0)), 'int32')), tf.tensor2d(inside, [ids.length, 1])) as tf.Tensor2D;
    out = out ? (tf.add(out, part) as tf.Tensor2D) : part;
    lo += n;
  }
  return out!;
}

/** Logits [rows, V] = h · lm_head, one matmul per vocabulary chunk. Tied embeddings use embed^T unless the caller
 * supplies it pre-transposed as lm_head (inference does, see Model). */
function unembed(params: Params, h: tf.Tensor2D): tf.Tensor2D {
  const parts = params.has(WEIGHT_NAMES.lmHead) || params.has(chunkKey(WEIGHT_NAMES.lmHead, 0))
    ? vocabChunks(params, WEIGHT_NAMES.lmHead).map((w) => tf.matMul(h, w as tf.Tensor2D))
    : vocabChunks(params, WEIGHT_NAMES.embed).map((e) => tf.matMul(h, e as tf.Tensor2D, false, true));
  return (parts.length === 1 ? parts[0] : tf.concat(parts, 1)) as tf.Tensor2D;
}

export function disposeCache(cache: KVCache | null | undefined): void {
  if (!cache) return;
  for (const l of cache.layers) tf.dispose([l.k, l.v]);
}

/** HF generate's position ids: cumsum(mask) − 1 over real tokens, pads set to 1; continues from `start`. */
function defaultPositions(mask: number[][], start?: number[]): number[][] {
  return mask.map((row, b) => {
    let next = start ? start[b] : 0;
    return row.map((m) => (m ? next++ : 1));
  });
}

function nextPositionOf(positions: number[], mask: number[], prev: number | undefined): number {
  let next = prev ?? 0;
  for (let t = 0; t < positions.length; t++) if (mask[t]) next = positions[t] + 1;
  return next;
}

/** cos and sin tables [B, 1, T, D] for the given position ids (HF: emb = cat(freqs, freqs)). */
function rotaryTables(cfg: ModelConfig, positions: number[][]): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const inv = ropeInverseFrequencies(cfg);
  const half = inv.length;
  const B = positions.length;
  const T = positions[0]?.length ?? 0;
  const D = cfg.headDim;
  const cos = new Float32Array(B * T * D);
  const sin = new Float32Array(B * T * D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const pos = positions[b][t];
      const o = (b * T + t) * D;
      for (let j = 0; j < half; j++) {
        const a = Math.fround(pos * inv[j]); // float32 angle, as torch computes it
        cos[o + j] = cos[o + j + half] = Math.cos(a);
        sin[o + j] = sin[o + j + half] = Math.sin(a);
      }
    }
  return { cos: tf.tensor4d(cos, [B, 1, T, D]), sin: tf.tensor4d(sin, [B, 1, T, D]) };
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x₂, x₁). x: [B, heads, T, D]. */
function applyRotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [x1, x2] = tf.split(x, 2, 3);
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), sin));
}

/**
 * Softmax attention with grouped-query heads. Query heads j·rep … j·rep+rep−1 share kv head j, so the
 * queries are regrouped as [B, kv, rep·T, D] instead of repeating keys and values (no tile: cheaper, and
 * tfjs's wasm Tile is slow). q [B, heads, T, D], k and v [B, kv, S, D], bias [B, 1, T, S].
 */
function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, cfg: ModelConfig): tf.Tensor4D {
  const [B, heads, T, D] = q.shape;
  const kv = cfg.numKvHeads;
  const S = k.shape[2];
  const grouped = q.reshape([B, kv, (heads / kv) * T, D]);
  const scores = tf.mul(tf.matMul(grouped, k, false, true), 1 / Math.sqrt(D)).reshape([B, heads, T, S]);
  const probs = tf.softmax(tf.add(scores, bias)).reshape([B, kv, (heads / kv) * T, S]);
  return tf.matMul(probs, v).reshape([B, heads, T, D]);
}

/** Additive attention bias [B, 1, T, P+T]: causal, padding (mask 0 keys) and optional sliding window. */
function attentionBias(fullMask: number[][], past: number, T: number, window: number | null): tf.Tensor4D {
  const B = fullMask.length;
  const S = past + T;
  const bias = new Float32Array(B * T * S);
  const NEG = -3.4028234663852886e38; // finfo(float32).min, as HF uses
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const qi = past + t;
      const o = (b * T + t) * S;
      let any = false;
      for (let j = 0; j < S; j++) {
        const allowed = j <= qi && fullMask[b][j] === 1 && (window === null || qi - j < window);
        if (!allowed) bias[o + j] = NEG;
        else any = true;
      }
      // A padding query sees no key. Its output is never used, but it must stay finite (its keys and values are
      // masked for later queries, and NaN · 0 is NaN): the webgpu softmax of a row that is all finfo.min is NaN. It
      // attends to every key instead, as transformers' _unmask_unattended does.
      if (!any) bias.fill(0, o, o + S);
    }
  return tf.tensor4d(bias, [B, 1, T, S]);
}

export type { HookFn };
