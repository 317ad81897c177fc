/**
 * A local-model judge: the paper's logprob method run on any checkpoint the engine loads. The judge
 * prompt is rendered as one user message with the checkpoint's chat template (generation prompt added),
 * one forward pass gives the next-token logits, and the top-k log-softmax entries, each decoded to its
 * token text, go through the same aggregation as the API judge (LogprobJudge).
 */
import * as tf from '@tensorflow/tfjs';
import { readInts, readValues } from '../backend/read';
import { PersonaError } from '../errors';
import type { Model } from '../model/checkpoint';
import type { Tokenizer } from '../tokenizer';
import type { TopLogprob } from '../llm/types';
import { DEFAULT_COHERENCE_PROMPT, LogprobJudge, NextTokenScorer, ScoreScale, TopLogprobStore } from './judge';

export interface LocalScorerOptions {
  /** How many alternatives to return (the paper's API judge uses 20). */
  topK?: number;
  /** Identity for cache keys; default "local:<checkpoint dir>:top<k>". */
  id?: string;
}

export class LocalNextTokenScorer implements NextTokenScorer {
  readonly id: string;
  private readonly topK: number;

  constructor(private readonly model: Model, private readonly tokenizer: Tokenizer, opts: LocalScorerOptions = {}) {
    this.topK = opts.topK ?? 20;
    if (!Number.isInteger(this.topK) || this.topK < 1) throw new PersonaError(`top-k must be a positive integer, got ${this.topK}`, { field: 'top_k' });
    this.id = opts.id ?? `local:${model.dir ?? 'in-memory'}:top${this.topK}`;
  }

  /** Token ids the judge model sees for `prompt`. */
  promptIds(prompt: string): number[] {
    const text = this.tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true });
    const ids = this.tokenizer.encode(text);
    if (ids.length === 0) throw new PersonaError('judge prompt encodes to no tokens', { field: 'judge prompt' });
    return ids;
  }

  async topLogprobs(prompt: string): Promise<TopLogprob[]> {
    return this.topLogprobsOfIds(this.promptIds(prompt));
  }

  /** Top-k log-softmax of the next token after `ids` [T], decoded. */
  async topLogprobsOfIds(ids: number[]): Promise<TopLogprob[]> {
    const out = this.model.forward({ ids: [ids] }, { logits: 'last' });
    let values: Float32Array;
    let indices: Int32Array;
    try {
      const { v, i } = tf.tidy(() => {
        const logp = tf.logSoftmax(out.logits!.reshape([-1])); // [V]
        const k = Math.min(this.topK, logp.shape[0]);
        const top = tf.topk(logp, k, true);
        return { v: top.values, i: top.indices };
      });
      try {
        values = await readValues(v);
        indices = await readInts(i);
      } finally {
        tf.dispose([v, i]);
      }
    } finally {
      tf.dispose([out.logits ?? [], ...(out.hiddenStates ?? [])]);
    }
    return Array.from(indices, (id, j) => ({ token: this.tokenText(id), logprob: values[j] }));
  }

  private tokenText(id: number): string {
    // Ids past the tokenizer's vocabulary (padded embedding rows) have no text; they never parse as scores.
    if (this.tokenizer.idToToken(id) === undefined) return '';
    return this.tokenizer.decode([id]);
  }
}

export interface LocalJudgeOptions extends LocalScorerOptions {
  template: string;
  scale?: ScoreScale;
  cache?: TopLogprobStore;
  name?: string;
  minMass?: number;
  failAfterUnscored?: number;
}

export function createLocalJudge(model: Model, tokenizer: Tokenizer, opts: LocalJudgeOptions): LogprobJudge {
  const scorer = new LocalNextTokenScorer(model, tokenizer, opts);
  return new LogprobJudge({ scorer, template: opts.template, scale: opts.scale, cache: opts.cache, name: opts.name, minMass: opts.minMass, failAfterUnscored: opts.failAfterUnscored });
}

export function createLocalCoherenceJudge(model: Model, tokenizer: Tokenizer, opts: Omit<LocalJudgeOptions, 'template' | 'scale'> & { template?: string } = {}): LogprobJudge {
  return createLocalJudge(model, tokenizer, { ...opts, template: opts.template ?? DEFAULT_COHERENCE_PROMPT, scale: '0_100', name: opts.name ?? (opts.template ? undefined : 'default-coherence_0_100') });
}
