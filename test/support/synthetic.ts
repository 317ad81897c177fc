/** Small random checkpoints of any supported family, written in the Hugging Face layout. */
import * as fs from 'fs';
import * as path from 'path';
import seedrandom from 'seedrandom';
import { writeSafetensors, TensorToWrite } from '../../lib/io/safetensors';
import { parameterSpecs } from '../../lib/model/checkpoint';
import { parseModelConfig } from '../../lib/model/config';

export const BASE_CONFIGS: Record<string, Record<string, unknown>> = {
  llama31: {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 48, intermediate_size: 96, num_hidden_layers: 3,
    num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 128, rms_norm_eps: 1e-5, rope_theta: 500000.0,
    rope_scaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 1024 },
    tie_word_embeddings: false, bos_token_id: 1, eos_token_id: [2, 3], pad_token_id: 0,
  },
  qwen3: {
    architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', hidden_size: 48, intermediate_size: 96, num_hidden_layers: 3,
    num_attention_heads: 4, num_key_value_heads: 1, head_dim: 16, vocab_size: 128, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
    tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 0,
  },
  mistral: {
    architectures: ['MistralForCausalLM'], model_type: 'mistral', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 96, rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096,
    tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
  },
};

export function writeSyntheticCheckpoint(dir: string, config: Record<string, unknown>, opts: { seed?: string; dtype?: 'F32' | 'F16' | 'BF16' } = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const cfg = parseModelConfig(config, 'config.json');
  const rng = seedrandom(opts.seed ?? 'synthetic');
  const tensors: Record<string, TensorToWrite> = {};
  for (const spec of parameterSpecs(cfg)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = /norm\.weight$/.test(spec.name);
    for (let i = 0; i < n; i++) data[i] = isNorm ? 1 + 0.1 * (rng() - 0.5) : 0.2 * (rng() - 0.5);
    tensors[spec.name] = { shape: spec.shape, data, dtype: opts.dtype };
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}
