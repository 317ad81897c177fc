import { PersonaError } from '../errors';
import { resolveEndpoint } from '../llm/endpoint';
import { OpenAIClient, OpenAIClientOptions } from '../llm/openai';
import { TopLogprob } from '../llm/types';
import { COHERENCE_PROMPT_NAME, DEFAULT_COHERENCE_PROMPT, LogprobJudge, NextTokenScorer, ScoreScale, TopLogprobStore } from './judge';

/**
 * The paper's API judge: the prompt as a single user message, one completion token at temperature 0
 * with the top 20 logprobs (OpenAI models tokenize 0–100 as single tokens), aggregated by LogprobJudge.
 */
export class OpenAINextTokenScorer implements NextTokenScorer {
  readonly id: string;
  constructor(private readonly client: OpenAIClient, private readonly topK = 20) {
    // Model and request shape determine the output; the endpoint URL does not enter the cache key.
    this.id = `openai-chat:${client.model}:top${topK}`;
  }
  topLogprobs(prompt: string): Promise<TopLogprob[]> {
    return this.client.firstTokenTopLogprobs([{ role: 'user', content: prompt }], this.topK);
  }
}

export interface OpenAIJudgeOptions {
  /** An existing client (shares its concurrency limit), or options to build one. */
  client: OpenAIClient | OpenAIClientOptions;
  template: string;
  scale?: ScoreScale;
  cache?: TopLogprobStore;
  name?: string;
  minMass?: number;
  failAfterUnscored?: number;
}

export function createOpenAIJudge(opts: OpenAIJudgeOptions): LogprobJudge {
  const client = opts.client instanceof OpenAIClient ? opts.client : new OpenAIClient(opts.client);
  return new LogprobJudge({ scorer: new OpenAINextTokenScorer(client), template: opts.template, scale: opts.scale, cache: opts.cache, name: opts.name, minMass: opts.minMass, failAfterUnscored: opts.failAfterUnscored });
}

/** Coherence judge: the same method with the coherence prompt (the paper's, if loaded, else the project's). */
export function createCoherenceJudge(opts: Omit<OpenAIJudgeOptions, 'template' | 'scale'> & { template?: string }): LogprobJudge {
  return createOpenAIJudge({ ...opts, template: opts.template ?? DEFAULT_COHERENCE_PROMPT, scale: '0_100', name: opts.name ?? (opts.template ? undefined : `default-${COHERENCE_PROMPT_NAME}`) });
}

/** The CLI's names for the judge endpoint settings, for error messages. */
export const JUDGE_FLAGS = { baseURL: '--judge-base-url', concurrency: '--judge-concurrency' };

/**
 * Checks an API judge's settings before any work: concurrency, base URL and (for api.openai.com)
 * OPENAI_API_KEY; each error is one line naming the setting in `names` or the environment variable.
 */
export function checkOpenAIJudgeEndpoint(o: { baseURL?: string; concurrency?: number }, names: { baseURL?: string; concurrency?: string } = {}): void {
  const c = o.concurrency;
  if (c !== undefined && (!Number.isInteger(c) || c < 1)) throw new PersonaError(`${names.concurrency ?? 'concurrency'} must be a positive integer, got ${c}`);
  resolveEndpoint('openai', { baseURL: o.baseURL }, { baseURL: names.baseURL, localHint: names.baseURL });
}
