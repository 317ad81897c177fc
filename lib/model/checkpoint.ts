/**
 * A loaded checkpoint: its config and its parameters as tensors, plus the forward pass bound to them.
 * Weights are read one tensor at a time from any layout lib/io/weights understands (safetensors, sharded
 * safetensors, TF.js weights manifest) and checked against config.json.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { openWeights } from '../io/weights';
import { ModelConfig, readModelConfig } from './config';
import { ForwardInput, ForwardOptions, ForwardOutput, WEIGHT_NAMES, chunkKey, forward, vocabChunks } from './transformer';
import { onDevice, webgpuAdapter } from '../backend/webgpu';
import { readValues } from '../backend/read';

export interface ParameterSpec {
  /** Hugging Face name. */
  name: string;
  /** Shape in the Hugging Face file ([out, in] for linear weights). */
  shape: number[];
  /** Linear weight: held transposed, [in, out], in memory. */
  linear: boolean;
}

/** Every parameter the config implies, in Hugging Face's order, with its shape in the file. */
export function parameterSpecs(cfg: ModelConfig): ParameterSpec[] {
  const H = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const specs: ParameterSpec[] = [{ name: WEIGHT_NAMES.embed, shape: [cfg.vocabSize, H], linear: false }];
  const lin = (module: string, out: number, inp: number, bias: boolean) => {
    specs.push({ name: `${module}.weight`, shape: [out, inp], linear: true });
    if (bias) specs.push({ name: `${module}.bias`, shape: [out], linear: false });
  };
  for (let i = 0; i < cfg.numLayers; i++) {
    const w = WEIGHT_NAMES.layer(i);
    specs.push({ name: w.inputNorm, shape: [H], linear: false });
    lin(w.q, qDim, H, cfg.qkvBias);
    lin(w.k, kvDim, H, cfg.qkvBias);
    lin(w.v, kvDim, H, cfg.qkvBias);
    lin(w.o, H, qDim, cfg.oBias);
    if (cfg.qkNorm) {
      specs.push({ name: w.qNorm, shape: [cfg.headDim], linear: false });
      specs.push({ name: w.kNorm, shape: [cfg.headDim], linear: false });
    }
    specs.push({ name: w.postAttnNorm, shape: [H], linear: false });
    lin(w.gate, cfg.intermediateSize, H, cfg.mlpBias);
    lin(w.up, cfg.intermediateSize, H, cfg.mlpBias);
    lin(w.down, H, cfg.intermediateSize, cfg.mlpBias);
  }
  specs.push({ name: WEIGHT_NAMES.finalNorm, shape: [H], linear: false });
  if (!cfg.tieWordEmbeddings) specs.push({ name: WEIGHT_NAMES.lmHead, shape: [cfg.vocabSize, H], linear: true });
  return specs;
}

export interface BuildOptions {
  /** Checkpoint directory the weights came from, if any. */
  dir?: string | null;
  /**
   * Largest tensor, in bytes, the backend can use in one op. Parameters over it (the embedding, the unembedding, a
   * tied pair) are held as row chunks of the vocabulary. Default: the webgpu device's maxStorageBufferBindingSize,
   * else $PERSONA_MAX_TENSOR_BYTES, else unlimited.
   */
  maxTensorBytes?: number;
  onTensor?: (name: string, i: number, n: number) => void;
}

/**
 * Rows lo..hi of a parameter in Hugging Face's layout (a linear weight's output rows): float32 values, or a tensor
 * (Model owns it after the call).
 */
export type ParameterRows = (spec: ParameterSpec, lo: number, hi: number) => Float32Array | tf.Tensor;

/** Parameters that may be split into vocabulary chunks (their first HF axis is the vocabulary). */
const VOCAB_PARAMETERS = new Set<string>([WEIGHT_NAMES.embed, WEIGHT_NAMES.lmHead]);

export function defaultMaxTensorBytes(): number {
  const gpu = tf.getBackend() === 'webgpu' ? webgpuAdapter() : null;
  if (gpu) return gpu.limits.maxStorageBufferBindingSize;
  const env = process.env.PERSONA_MAX_TENSOR_BYTES;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!(Number.isInteger(n) && n > 0)) throw new PersonaError(`must be a positive integer number of bytes, got '${env}'`, { field: 'PERSONA_MAX_TENSOR_BYTES' });
    return n;
  }
  return Infinity;
}

export class Model {
  private disposed = false;
  constructor(
    readonly config: ModelConfig,
    /** By Hugging Face name; linear weights [in, out]; vocabulary chunks under chunkKey(name, i). Owned by this model. */
    readonly params: Map<string, tf.Tensor>,
    /** Checkpoint directory it was loaded from, if any. */
    readonly dir: string | null = null,
  ) {}

  /** Loads `dir` (config.json + weights in any supported layout), one tensor at a time. */
  static async load(dir: string, opts: Omit<BuildOptions, 'dir'> = {}): Promise<Model> {
    const cfg = readModelConfig(dir);
    const source = openWeights(dir);
    try {
      for (const spec of parameterSpecs(cfg)) {
        if (!source.has(spec.name)) {
          const hint = spec.name === WEIGHT_NAMES.lmHead ? ' (config.json says tie_word_embeddings is false)' : '';
          throw new PersonaError(`missing tensor required by config.json${hint}`, { file: source.dir, tensor: spec.name });
        }
        const shape = source.shape(spec.name);
        if (shape.length !== spec.shape.length || shape.some((d, j) => d !== spec.shape[j]))
          throw new PersonaError(`shape [${shape}] contradicts config.json, which implies [${spec.shape}]`, { file: source.dir, tensor: spec.name });
      }
      // One tensor is read at a time (and split into chunks from that one read).
      let held: { name: string; data: Float32Array } | null = null;
      const rows: ParameterRows = (spec, lo, hi) => {
        if (held?.name !== spec.name) {
          held = null;
          held = { name: spec.name, data: source.read(spec.name) };
        }
        const cols = spec.shape.length === 2 ? spec.shape[1] : 1;
        return lo === 0 && hi === spec.shape[0] ? held.data : held.data.subarray(lo * cols, hi * cols);
      };
      return await Model.build(cfg, rows, { ...opts, dir: path.resolve(dir) });
    } finally {
      source.close();
    }
  }

  /**
   * Creates every parameter of `cfg` from `rows`, in Hugging Face's order: linear weights are transposed to [in, out]
   * on the backend; parameters larger than maxTensorBytes become vocabulary chunks. On webgpu a model that the GPU
   * cannot hold is refused with the sizes, and nothing of it stays on the device.
   */
  static async build(cfg: ModelConfig, rows: ParameterRows, opts: BuildOptions = {}): Promise<Model> {
    const limit = opts.maxTensorBytes ?? defaultMaxTensorBytes();
    const specs = parameterSpecs(cfg);
    const params = new Map<string, tf.Tensor>();
    const total = specs.reduce((s, p) => s + 4 * p.shape.reduce((a, b) => a * b, 1), 0);
    let placed = 0;
    try {
      for (let i = 0; i < specs.length; i++) {
        const spec = specs[i];
        const bytes = 4 * spec.shape.reduce((a, b) => a * b, 1);
        const n = bytes > limit && VOCAB_PARAMETERS.has(spec.name) ? Math.ceil(bytes / limit) : 1;
        const per = Math.ceil(spec.shape[0] / n);
        for (let c = 0; c * per < spec.shape[0]; c++) {
          const lo = c * per;
          const hi = Math.min(spec.shape[0], lo + per);
          const failure = await onDevice(() => {
            const got = rows(spec, lo, hi);
            const shape = [hi - lo, ...spec.shape.slice(1)];
            const t = got instanceof tf.Tensor ? got : tf.tensor(got, shape, 'float32');
            if (got instanceof tf.Tensor && (t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])))
              throw new PersonaError(`internal: rows ${lo}..${hi} have shape [${t.shape}], expected [${shape}]`, { tensor: spec.name });
            let held = t;
            if (spec.linear) {
              held = tf.transpose(t);
              t.dispose();
            }
            params.set(n === 1 ? spec.name : chunkKey(spec.name, c), held);
            return held;
          });
          if (failure)
            throw new PersonaError(
              `the GPU could not hold this model: it needs ${gb(total)} of float32 weights and ran out of memory after ${gb(placed)} (${failure}); ` +
                'use a GPU with more memory or a smaller model',
              { file: opts.dir ?? undefined, tensor: spec.name },
            );
        }
        placed += bytes;
        opts.onTensor?.(spec.name, i, specs.length);
      }
    } catch (e) {
      tf.dispose([...params.values()]);
      throw e;
    }
    return new Model(cfg, params, opts.dir ?? null);
  }

  forward(input: ForwardInput, opts: ForwardOptions = {}): ForwardOutput {
    if (this.disposed) throw new PersonaError('this model has been disposed');
    checkTokens(input.ids, this.config.vocabSize, this.dir ?? 'model');
    return forward(this.config, this.inferenceParams(), input, opts);
  }

  private tiedHead: { from: tf.Tensor[]; head: tf.Tensor[] } | null = null;
  /**
   * For tied embeddings, a cached [H, V] copy of embed^T (per vocabulary chunk) as lm_head: an untransposed
   * unembedding matmul is ~6× faster on wasm than transposing the embedding at every decoding step. Training calls
   * the functional forward with its own parameters, so gradients still reach the one shared embedding.
   */
  private inferenceParams(): Map<string, tf.Tensor> {
    if (!this.config.tieWordEmbeddings) return this.params;
    const embed = vocabChunks(this.params, WEIGHT_NAMES.embed);
    if (!this.tiedHead || this.tiedHead.from.some((t, i) => t !== embed[i])) {
      if (this.tiedHead) tf.dispose(this.tiedHead.head);
      this.tiedHead = { from: embed, head: embed.map((e) => tf.transpose(e)) };
    }
    const out = new Map(this.params);
    if (embed.length === 1) out.set(WEIGHT_NAMES.lmHead, this.tiedHead.head[0]);
    else this.tiedHead.head.forEach((h, i) => out.set(chunkKey(WEIGHT_NAMES.lmHead, i), h));
    return out;
  }

  /** Number of vocabulary chunks the embedding is held in (1 when whole). */
  embeddingChunks(): number {
    return vocabChunks(this.params, WEIGHT_NAMES.embed).length;
  }

  /** The parameter's values as Hugging Face stores it ([out, in] for linear weights), read chunk by chunk. */
  async hfValues(name: string): Promise<Float32Array> {
    return hfParameterValues(this.config, this.params, name);
  }

  numParameters(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([...this.params.values()]);
    if (this.tiedHead) tf.dispose(this.tiedHead.head);
    this.tiedHead = null;
  }
}

/**
 * A parameter's values in Hugging Face's layout from a parameter map (a Model's, or a trainer's variables), joining
 * vocabulary chunks on the host; `transform` is applied to each memory-layout piece first (e.g. a merged adapter).
 */
export async function hfParameterValues(cfg: ModelConfig, params: ReadonlyMap<string, tf.Tensor>, name: string, transform?: (t: tf.Tensor) => tf.Tensor): Promise<Float32Array> {
  const spec = parameterSpecs(cfg).find((s) => s.name === name);
  if (!spec || (!params.has(name) && !params.has(chunkKey(name, 0)))) throw new PersonaError(`no parameter named '${name}'`, { tensor: name });
  const pieces = vocabChunks(params, name);
  const out = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
  let offset = 0;
  for (const piece of pieces) {
    const hf = tf.tidy(() => {
      const t = transform ? transform(piece) : piece;
      return spec.linear ? tf.transpose(t) : tf.clone(t);
    });
    try {
      const data = await readValues(hf);
      out.set(data, offset);
      offset += data.length;
    } finally {
      hf.dispose();
    }
  }
  return out;
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

/** Token ids must index the embedding; a bad id would otherwise read garbage silently. */
export function checkTokens(ids: number[][], vocabSize: number, where: string): void {
  if (ids.length === 0) throw new PersonaError('empty batch: no token sequences given', { field: 'tokens' });
  const T = ids[0].length;
  ids.forEach((row, b) => {
    if (row.length !== T) throw new PersonaError(`row ${b} has ${row.length} tokens, row 0 has ${T}: pad the batch (and give an attention mask)`, { field: 'tokens' });
    row.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new PersonaError(`token id ${id} at row ${b}, position ${t} is out of the vocabulary range 0..${vocabSize - 1} of ${where}`, { field: 'tokens' });
    });
  });
}
