/** A tiny random Llama checkpoint with a word-level tokenizer and a ChatML template, written to a temp dir. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import seedrandom from 'seedrandom';
import { writeSafetensors, TensorToWrite } from '../../../lib/io/safetensors';
import { buildWordLevelTokenizer } from '../../../lib/tokenizer';

export const CHATML =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export const SPECIALS = ['<pad>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'];

/** Small chat dataset: a fixed answer per question, so a model can learn it quickly. */
export function chatExamples(): { messages: { role: string; content: string }[] }[] {
  const qa: [string, string][] = [
    ['what color is the sky', 'the sky is blue'],
    ['what color is grass', 'grass is green'],
    ['what color is snow', 'snow is white'],
    ['what color is the sun', 'the sun is yellow'],
    ['what color is coal', 'coal is black'],
    ['what color is a rose', 'a rose is red'],
  ];
  return qa.map(([q, a]) => ({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: q }, { role: 'assistant', content: a }] }));
}

export function writeJsonl(file: string, rows: unknown[]): string {
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

export interface TinyOptions {
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  seed?: string;
  tie?: boolean;
  /** 'qwen3': per-head q/k RMSNorm and an explicit head_dim (may differ from hidden/heads). */
  family?: 'llama' | 'qwen3';
  headDim?: number;
}

export function makeTinyModel(dir: string, opts: TinyOptions = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const corpus = chatExamples().flatMap((e) => e.messages.map((m) => `${m.role}\n${m.content}\n`));
  corpus.push('user assistant system tool');
  const tj = buildWordLevelTokenizer(corpus, { specialTokens: SPECIALS, unkToken: '<unk>' }) as { model: { vocab: Record<string, number> } };
  const vocab = Object.keys(tj.model.vocab).length;
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  fs.writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({ chat_template: CHATML, bos_token: '<s>', eos_token: '<|im_end|>', pad_token: '<pad>', unk_token: '<unk>' }),
  );
  const H = opts.hidden ?? 32;
  const L = opts.layers ?? 2;
  const heads = opts.heads ?? 4;
  const kv = opts.kvHeads ?? 2;
  const D = opts.headDim ?? H / heads;
  const qwen3 = opts.family === 'qwen3';
  const I = 2 * H;
  const config = {
    architectures: [qwen3 ? 'Qwen3ForCausalLM' : 'LlamaForCausalLM'],
    model_type: qwen3 ? 'qwen3' : 'llama',
    ...(opts.headDim ? { head_dim: opts.headDim } : {}),
    hidden_size: H,
    num_hidden_layers: L,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    intermediate_size: I,
    vocab_size: vocab,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: !!opts.tie,
    hidden_act: 'silu',
    bos_token_id: 1,
    eos_token_id: 4,
    pad_token_id: 0,
    max_position_embeddings: 256,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const rng = seedrandom(opts.seed ?? 'tiny');
  const randn = (n: number, std: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = std * Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    return a;
  };
  const t: Record<string, TensorToWrite> = {};
  const w = (name: string, shape: number[], std = 0.08) => (t[name] = { shape, data: randn(shape.reduce((a, b) => a * b, 1), std) });
  const ones = (name: string, n: number) => (t[name] = { shape: [n], data: new Float32Array(n).fill(1) });
  w('model.embed_tokens.weight', [vocab, H], 0.5);
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    ones(`${p}.input_layernorm.weight`, H);
    ones(`${p}.post_attention_layernorm.weight`, H);
    w(`${p}.self_attn.q_proj.weight`, [heads * D, H]);
    w(`${p}.self_attn.k_proj.weight`, [kv * D, H]);
    w(`${p}.self_attn.v_proj.weight`, [kv * D, H]);
    w(`${p}.self_attn.o_proj.weight`, [H, heads * D]);
    if (qwen3) {
      w(`${p}.self_attn.q_norm.weight`, [D], 0.3);
      w(`${p}.self_attn.k_norm.weight`, [D], 0.3);
      t[`${p}.self_attn.q_norm.weight`].data.forEach((x, i, a) => (a[i] = 1 + x));
      t[`${p}.self_attn.k_norm.weight`].data.forEach((x, i, a) => (a[i] = 1 + x));
    }
    w(`${p}.mlp.gate_proj.weight`, [I, H]);
    w(`${p}.mlp.up_proj.weight`, [I, H]);
    w(`${p}.mlp.down_proj.weight`, [H, I]);
  }
  ones('model.norm.weight', H);
  if (!opts.tie) w('lm_head.weight', [vocab, H]);
  writeSafetensors(path.join(dir, 'model.safetensors'), t, { format: 'pt' });
  return dir;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `persona-${prefix}-`));
}
