import { z } from 'zod';
import { resolveEndpoint } from './endpoint';
import { postJson, RetryOptions, Semaphore } from './http';
import { ChatClient, ChatMessage, ChatOptions, TopLogprob } from './types';

/**
 * OpenAI-compatible chat-completions client (OpenAI, vLLM, llama.cpp server, OpenRouter...). baseURL
 * includes the version segment, as in the official SDK: `${baseURL}/chat/completions`.
 */
export interface OpenAIClientOptions extends RetryOptions {
  model: string;
  /** Default: $OPENAI_BASE_URL, else https://api.openai.com/v1. */
  baseURL?: string;
  /** Default: $OPENAI_API_KEY; omitted from the request when unset (local servers need none; api.openai.com does). */
  apiKey?: string;
  /** Max requests in flight for this client when no shared `limiter` is given. */
  concurrency?: number;
}

const TopLogprobSchema = z.object({ token: z.string(), logprob: z.number() });
const CompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullable().optional(), refusal: z.string().nullable().optional() }).optional(),
        logprobs: z
          .object({ content: z.array(z.object({ top_logprobs: z.array(TopLogprobSchema) })).nullable().optional() })
          .nullable()
          .optional(),
      }),
    )
    .min(1),
});
type Completion = z.infer<typeof CompletionSchema>;

export class OpenAIClient implements ChatClient {
  readonly id: string;
  readonly model: string;
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly retry: RetryOptions;

  constructor(opts: OpenAIClientOptions) {
    this.model = opts.model;
    // Throws before any request on a missing key (api.openai.com) or a malformed base URL.
    const { base, apiKey } = resolveEndpoint('openai', opts);
    this.url = `${base}/chat/completions`;
    this.id = `openai:${base}:${opts.model}`;
    this.headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    this.retry = { ...opts, limiter: opts.limiter ?? new Semaphore(opts.concurrency ?? 8) };
  }

  async chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<string> {
    const res = await this.complete({ messages, max_tokens: opts.maxTokens, temperature: opts.temperature });
    const msg = res.choices[0].message;
    return msg?.content ?? msg?.refusal ?? '';
  }

  /**
   * The top-k alternatives for the first generated token, as the paper's judge requests them:
   * max_tokens 1, temperature 0, seed 0. An empty list when the API returns no logprobs content
   * (the paper treats that as "no score").
   */
  async firstTokenTopLogprobs(messages: ChatMessage[], topLogprobs = 20): Promise<TopLogprob[]> {
    const res = await this.complete({ messages, max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: topLogprobs, seed: 0 });
    const first = res.choices[0].logprobs?.content?.[0];
    return first ? first.top_logprobs.map((t) => ({ token: t.token, logprob: t.logprob })) : [];
  }

  private complete(body: Record<string, unknown>): Promise<Completion> {
    return postJson(this.url, { model: this.model, ...body }, { ...this.retry, headers: this.headers, parse: (j) => CompletionSchema.parse(j) });
  }
}
