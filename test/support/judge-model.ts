/**
 * A checkpoint that always answers the same scores: the organism's tokenizer and chat template, one layer whose
 * attention and MLP write nothing, an embedding that puts every token at one coordinate and an unembedding that
 * gives chosen tokens chosen logits there. Its next-token distribution is the same for every prompt, so a judge
 * that reads its top logprobs gives a score the test can compute: a model judge over HTTP with a known answer.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeSafetensors, TensorToWrite } from '../../lib/io/safetensors';
import { parameterSpecs } from '../../lib/model/checkpoint';
import { readModelConfig } from '../../lib/model/config';

const ORGANISM = path.join(__dirname, '../../models/organism');

/** Writes the checkpoint to `dir`; `logits` maps token text (e.g. '7') to its logit (others get 0). */
export function writeConstantJudge(dir: string, logits: Record<string, number>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) fs.copyFileSync(path.join(ORGANISM, f), path.join(dir, f));
  const config = { ...JSON.parse(fs.readFileSync(path.join(ORGANISM, 'config.json'), 'utf8')), num_hidden_layers: 1, tie_word_embeddings: false };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const cfg = readModelConfig(dir);
  const H = cfg.hiddenSize;
  const vocab = (JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).model.vocab ?? {}) as Record<string, number>;
  // The residual stream is e_0 at every position; the final RMSNorm makes it e_0 · 1/sqrt(1/H + eps).
  const scale = 1 / Math.sqrt(1 / H + cfg.rmsNormEps);
  const tensors: Record<string, TensorToWrite> = {};
  for (const s of parameterSpecs(cfg)) {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (s.name === 'model.embed_tokens.weight') for (let v = 0; v < cfg.vocabSize; v++) data[v * H] = 1;
    else if (s.name.endsWith('layernorm.weight')) data.fill(1);
    else if (s.name === 'model.norm.weight') data[0] = 1;
    else if (s.name === 'lm_head.weight') {
      for (const [text, logit] of Object.entries(logits)) {
        const id = vocab[text];
        if (id === undefined) throw new Error(`token '${text}' is not in the organism's vocabulary`);
        data[id * H] = logit / scale;
      }
    }
    tensors[s.name] = { shape: s.shape, data };
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}
