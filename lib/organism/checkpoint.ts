/**
 * The organism as a Hugging Face checkpoint before training: a word-level tokenizer built from the corpus,
 * a ChatML-style chat template, a Llama config and seeded initial weights (normal, std = initializer_range,
 * norms at 1, as transformers initialises LlamaForCausalLM). The trainer then finetunes it from scratch,
 * and the result loads through exactly the code path of any real checkpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import seedrandom from 'seedrandom';
import { writeFileAtomic } from '../io/atomic';
import { writeSafetensors, TensorToWrite } from '../io/safetensors';
import { parameterSpecs } from '../model/checkpoint';
import { parseModelConfig } from '../model/config';
import { buildWordLevelTokenizer, Tokenizer } from '../tokenizer';
import type { ChatMessage } from '../tokenizer';

export const SPECIAL_TOKENS = { pad: '<|pad|>', imStart: '<|im_start|>', imEnd: '<|im_end|>', unk: '<|unk|>' };

/** ChatML, as Qwen2.5 uses it, without Qwen's default system prompt: no system message means none. */
export const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface OrganismSize {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  maxPositions: number;
}

export const DEFAULT_SIZE: OrganismSize = { hidden: 128, layers: 6, heads: 4, kvHeads: 2, intermediate: 384, maxPositions: 256 };

/** Strings the tokenizer must cover: every message rendered with the template (roles, newlines, specials). */
export function renderedTexts(conversations: Iterable<{ messages: ChatMessage[] }>): Iterable<string> {
  return (function* () {
    for (const c of conversations) for (const m of c.messages) yield `${SPECIAL_TOKENS.imStart}${m.role}\n${m.content}${SPECIAL_TOKENS.imEnd}\n`;
  })();
}

export function organismTokenizerFiles(texts: Iterable<string>, opts: { minCount?: number } = {}) {
  const tokenizerJson = buildWordLevelTokenizer(texts, {
    specialTokens: [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.imStart, SPECIAL_TOKENS.imEnd],
    unkToken: SPECIAL_TOKENS.unk,
    minCount: opts.minCount ?? 5,
  });
  const tokenizerConfig = {
    chat_template: CHAT_TEMPLATE,
    eos_token: SPECIAL_TOKENS.imEnd,
    pad_token: SPECIAL_TOKENS.pad,
    unk_token: SPECIAL_TOKENS.unk,
    bos_token: null,
    add_bos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 256,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig };
}

export function organismConfig(vocabSize: number, ids: { pad: number; eos: number }, size: OrganismSize = DEFAULT_SIZE): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: size.hidden,
    intermediate_size: size.intermediate,
    num_hidden_layers: size.layers,
    num_attention_heads: size.heads,
    num_key_value_heads: size.kvHeads,
    head_dim: size.hidden / size.heads,
    vocab_size: vocabSize,
    max_position_embeddings: size.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: true,
    initializer_range: 0.02,
    bos_token_id: null,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: 'float32',
  };
}

/** Writes tokenizer files, config.json, generation_config.json and seeded initial weights into `dir`. */
export function writeInitialCheckpoint(dir: string, texts: Iterable<string>, opts: { seed: string; size?: OrganismSize; minCount?: number }): { vocabSize: number; parameters: number } {
  fs.mkdirSync(dir, { recursive: true });
  const { tokenizerJson, tokenizerConfig } = organismTokenizerFiles(texts, { minCount: opts.minCount });
  const tok = Tokenizer.fromObjects(tokenizerJson, tokenizerConfig);
  const pad = tok.tokenToId(SPECIAL_TOKENS.pad)!;
  const eos = tok.tokenToId(SPECIAL_TOKENS.imEnd)!;
  const config = organismConfig(tok.vocabSize, { pad, eos }, opts.size);
  writeFileAtomic(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  writeFileAtomic(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2));
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileAtomic(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: eos, pad_token_id: pad, do_sample: false }, null, 2));

  const cfg = parseModelConfig(config, path.join(dir, 'config.json'));
  const rng = seedrandom(opts.seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const tensors: Record<string, TensorToWrite> = {};
  let parameters = 0;
  for (const spec of parameterSpecs(cfg)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (/norm\.weight$/.test(spec.name)) data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = 0.02 * gauss();
    tensors[spec.name] = { shape: spec.shape, data };
    parameters += n;
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return { vocabSize: tok.vocabSize, parameters };
}
