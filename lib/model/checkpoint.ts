/**
 * A loaded checkpoint: its config and its parameters as tensors, plus the forward pass bound to them.
 * Weights are read one tensor at a time from any layout lib/io/weights understands (safetensors, sharded
 * safetensors, TF.js weights manifest) and checked against config.json.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { openWeights, WeightSource } from '../io/weights';
import { ModelConfig, readModelConfig } from './config';
import { ForwardInput, ForwardOptions, ForwardOutput, WEIGHT_NAMES, forward } from './transformer';

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

export class Model {
  private disposed = false;
  constructor(
    readonly config: ModelConfig,
    /** By Hugging Face name; linear weights [in, out]. Owned by this model. */
    readonly params: Map<string, tf.Tensor>,
    /** Checkpoint directory it was loaded from, if any. */
    readonly dir: string | null = null,
  ) {}

  /** Loads `dir` (config.json + weights in any supported layout). */
  static load(dir: string, opts: { onTensor?: (name: string, i: number, n: number) => void } = {}): Model {
    const cfg = readModelConfig(dir);
    const source = openWeights(dir);
    try {
      return new Model(cfg, loadParams(cfg, source, opts.onTensor), path.resolve(dir));
    } finally {
      source.close();
    }
  }

  forward(input: ForwardInput, opts: ForwardOptions = {}): ForwardOutput {
    if (this.disposed) throw new PersonaError('this model has been disposed');
    checkTokens(input.ids, this.config.vocabSize, this.dir ?? 'model');
    return forward(this.config, this.inferenceParams(), input, opts);
  }

  private tiedHead: { from: tf.Tensor; head: tf.Tensor } | null = null;
  /**
   * For tied embeddings, a cached [H, V] copy of embed^T as lm_head: an untransposed unembedding matmul is
   * ~6× faster on wasm than transposing the embedding at every decoding step. Training calls the functional
   * forward with its own parameters, so gradients still reach the one shared embedding.
   */
  private inferenceParams(): Map<string, tf.Tensor> {
    if (!this.config.tieWordEmbeddings) return this.params;
    const embed = this.params.get(WEIGHT_NAMES.embed)!;
    if (this.tiedHead?.from !== embed) {
      this.tiedHead?.head.dispose();
      this.tiedHead = { from: embed, head: tf.transpose(embed) };
    }
    return new Map(this.params).set(WEIGHT_NAMES.lmHead, this.tiedHead.head);
  }

  /** The parameter as Hugging Face stores it ([out, in] for linear weights); caller disposes. */
  hfTensor(name: string): tf.Tensor {
    const spec = parameterSpecs(this.config).find((s) => s.name === name);
    const t = this.params.get(name);
    if (!spec || !t) throw new PersonaError(`no parameter named '${name}'`, { tensor: name });
    return spec.linear ? tf.transpose(t) : tf.clone(t);
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
    this.tiedHead?.head.dispose();
    this.tiedHead = null;
  }
}

function loadParams(cfg: ModelConfig, source: WeightSource, onTensor?: (name: string, i: number, n: number) => void): Map<string, tf.Tensor> {
  const specs = parameterSpecs(cfg);
  const where = source.dir;
  const params = new Map<string, tf.Tensor>();
  try {
    specs.forEach((spec, i) => {
      if (!source.has(spec.name)) {
        const hint = spec.name === WEIGHT_NAMES.lmHead ? ' (config.json says tie_word_embeddings is false)' : '';
        throw new PersonaError(`missing tensor required by config.json${hint}`, { file: where, tensor: spec.name });
      }
      const shape = source.shape(spec.name);
      if (shape.length !== spec.shape.length || shape.some((d, j) => d !== spec.shape[j]))
        throw new PersonaError(`shape [${shape}] contradicts config.json, which implies [${spec.shape}]`, { file: where, tensor: spec.name });
      const data = source.read(spec.name);
      const t = tf.tensor(data, spec.shape, 'float32');
      if (spec.linear) {
        params.set(spec.name, tf.transpose(t));
        t.dispose();
      } else params.set(spec.name, t);
      onTensor?.(spec.name, i, specs.length);
    });
  } catch (e) {
    tf.dispose([...params.values()]);
    throw e;
  }
  return params;
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
