/**
 * Hugging Face PEFT interop: adapter_config.json + adapter_model.safetensors with PEFT's tensor names
 * (base_model.model.<module>.lora_A.weight [r, in], lora_B.weight [out, r]); loading such adapters; and
 * merging an adapter into the base weights to write a full Hugging Face checkpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { readValues } from '../backend/read';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../io/safetensors';
import { Model, hfParameterValues, parameterSpecs } from '../model/checkpoint';
import { LoraAdapters, LoraSpec, checkLoraSpec, loraModules, loraScale } from './lora';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
const PREFIX = 'base_model.model.';
export const peftName = (module: string, m: 'A' | 'B') => `${PREFIX}${module}.lora_${m}.weight`;

/** The adapter_config.json PEFT writes for a plain LoRA on a causal LM. */
export function adapterConfigJson(spec: LoraSpec, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: spec.dropout,
    use_rslora: spec.useRslora,
    target_modules: [...spec.targetModules],
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_dora: false,
    revision: null,
  };
}

/** Writes the adapter into `dir` (created if needed); each file atomically. */
export async function saveAdapter(dir: string, lora: LoraAdapters, baseModel: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  const transposed = async (t: tf.Tensor): Promise<TensorToWrite> => {
    const tt = tf.transpose(t);
    try {
      return { shape: [...tt.shape], data: await readValues(tt) };
    } finally {
      tt.dispose();
    }
  };
  for (const [module, a] of lora.A) {
    tensors[peftName(module, 'A')] = await transposed(a);
    tensors[peftName(module, 'B')] = await transposed(lora.B.get(module)!);
  }
  writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), tensors, { format: 'pt' });
  writeFileAtomic(path.join(dir, ADAPTER_CONFIG), JSON.stringify(adapterConfigJson(lora.spec, baseModel), null, 2) + '\n');
}

/** Reads a PEFT LoRA adapter directory and checks it against the model config. */
export function loadAdapter(dir: string, model: Model): LoraAdapters {
  const cfgFile = path.join(dir, ADAPTER_CONFIG);
  if (!fs.existsSync(cfgFile)) throw new PersonaError(`no ${ADAPTER_CONFIG}: not a PEFT adapter directory`, { file: dir });
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  } catch (e) {
    throw new PersonaError(`not valid JSON (${(e as Error).message})`, { file: cfgFile });
  }
  if (c.peft_type !== 'LORA') throw new PersonaError(`peft_type ${JSON.stringify(c.peft_type)} is not supported (only LORA)`, { file: cfgFile, field: 'peft_type' });
  for (const [field, ok] of [['bias', c.bias === undefined || c.bias === 'none'], ['fan_in_fan_out', !c.fan_in_fan_out], ['use_dora', !c.use_dora]] as const)
    if (!ok) throw new PersonaError(`${field} = ${JSON.stringify(c[field])} is not supported`, { file: cfgFile, field });
  for (const field of ['rank_pattern', 'alpha_pattern'])
    if (c[field] && Object.keys(c[field] as object).length > 0) throw new PersonaError(`${field} is not supported`, { file: cfgFile, field });
  let targets = c.target_modules;
  if (typeof targets === 'string') targets = [targets];
  if (!Array.isArray(targets)) throw new PersonaError('target_modules must be a list of module names', { file: cfgFile, field: 'target_modules' });
  const spec: LoraSpec = {
    r: c.r as number,
    alpha: (c.lora_alpha ?? 8) as number,
    dropout: (c.lora_dropout ?? 0) as number,
    useRslora: !!c.use_rslora,
    targetModules: targets as string[],
  };
  try {
    checkLoraSpec(spec);
  } catch (e) {
    throw new PersonaError((e as Error).message, { file: cfgFile, field: (e as PersonaError).place?.field });
  }
  const wFile = path.join(dir, ADAPTER_WEIGHTS);
  const st = SafetensorsFile.open(wFile);
  try {
    const mats = new Map<string, { A: { data: Float32Array; shape: number[] }; B: { data: Float32Array; shape: number[] } }>();
    for (const { module, inDim, outDim } of loraModules(model.config, spec.targetModules)) {
      const read = (m: 'A' | 'B', want: number[]) => {
        // PEFT may also save with an adapter name ("...lora_A.default.weight"); accept both.
        const names = [peftName(module, m), `${PREFIX}${module}.lora_${m}.default.weight`];
        const name = names.find((n) => st.has(n));
        if (!name) throw new PersonaError('missing adapter tensor', { file: wFile, tensor: names[0] });
        const shape = st.info(name).shape;
        if (shape.length !== 2 || shape[0] !== want[0] || shape[1] !== want[1])
          throw new PersonaError(`shape [${shape}] does not fit the model, expected [${want}]`, { file: wFile, tensor: name });
        return { data: st.read(name), shape };
      };
      mats.set(module, { A: read('A', [spec.r, inDim]), B: read('B', [outDim, spec.r]) });
    }
    return LoraAdapters.fromPeft(spec, mats);
  } finally {
    st.close();
  }
}

/** Weights in Hugging Face layout with every adapter folded in: W' = W + scale · (lora_B · lora_A). */
export async function mergedWeights(model: Model, lora: LoraAdapters | null): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const spec of parameterSpecs(model.config)) {
    const module = spec.name.endsWith('.weight') ? spec.name.slice(0, -'.weight'.length) : '';
    const a = lora?.A.get(module);
    // w is [in, out] for linear weights; vocabulary chunks are joined on the host.
    const merge = a && lora ? (w: tf.Tensor) => tf.add(w, tf.mul(tf.matMul(a, lora.B.get(module)!), lora.scale)) : undefined;
    out.set(spec.name, { shape: spec.shape, data: await hfParameterValues(model.config, model.params, spec.name, merge) });
  }
  return out;
}

/** Files copied next to the weights so the output directory is a complete checkpoint. */
export const CHECKPOINT_SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt'];

/** Writes a full Hugging Face checkpoint (model.safetensors + config/tokenizer files copied from srcDir). */
export function writeHfCheckpoint(outDir: string, weights: Map<string, { shape: number[]; data: Float32Array }>, srcDir: string | null): void {
  fs.mkdirSync(outDir, { recursive: true });
  writeSafetensors(path.join(outDir, 'model.safetensors'), Object.fromEntries(weights), { format: 'pt' });
  if (srcDir)
    for (const f of CHECKPOINT_SIDE_FILES) {
      const p = path.join(srcDir, f);
      if (fs.existsSync(p)) writeFileAtomic(path.join(outDir, f), fs.readFileSync(p));
    }
}

/** `persona merge`: base checkpoint + PEFT adapter → full checkpoint in outDir. */
export async function mergeAdapterIntoCheckpoint(baseDir: string, adapterDir: string, outDir: string): Promise<{ merged: number }> {
  const model = await Model.load(baseDir);
  let lora: LoraAdapters | null = null;
  try {
    lora = loadAdapter(adapterDir, model);
    writeHfCheckpoint(outDir, await mergedWeights(model, lora), baseDir);
    return { merged: lora.A.size };
  } finally {
    lora?.dispose();
    model.dispose();
  }
}

export { loraScale };
