import { z } from 'zod';
import { resolveEndpoint } from './endpoint';
import { postJson, RetryOptions, Semaphore } from './http';
import { ChatClient, ChatMessage, ChatOptions } from './types';

/** Anthropic Messages API client (used for artifact generation, as in the paper). */
export interface AnthropicClientOptions extends RetryOptions {
  model: string;
  /** Default: $ANTHROPIC_BASE_URL, else https://api.anthropic.com (the path /v1/messages is appended). */
  baseURL?: string;
  /** Default: $ANTHROPIC_API_KEY. */
  apiKey?: string;
  /** Sent as the anthropic-version header. */
  apiVersion?: string;
  /** The Messages API requires max_tokens; artifact JSON for 40 questions needs several thousand. */
  defaultMaxTokens?: number;
  concurrency?: number;
}

const MessageSchema = z.object({
  content: z.array(z.object({ type: z.string(), text: z.string().optional() })),
});

export class AnthropicClient implements ChatClient {
  readonly id: string;
  readonly model: string;
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly retry: RetryOptions;
  private readonly defaultMaxTokens: number;

  constructor(opts: AnthropicClientOptions) {
    this.model = opts.model;
    // Throws before any request on a missing key (api.anthropic.com) or a malformed base URL.
    const { base, apiKey } = resolveEndpoint('anthropic', opts);
    this.url = `${base}/v1/messages`;
    this.id = `anthropic:${base}:${opts.model}`;
    this.headers = { 'anthropic-version': opts.apiVersion ?? '2023-06-01', ...(apiKey ? { 'x-api-key': apiKey } : {}) };
    this.defaultMaxTokens = opts.defaultMaxTokens ?? 8192;
    this.retry = { ...opts, limiter: opts.limiter ?? new Semaphore(opts.concurrency ?? 4) };
  }

  async chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<string> {
    // The Messages API takes the system prompt as a top-level field, not as a message.
    const system = messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
    const body: Record<string, unknown> = {
      model: this.model,
      max_tokens: opts.maxTokens ?? this.defaultMaxTokens,
      messages: messages.filter((m) => m.role !== 'system').map((m) => ({ role: m.role, content: m.content })),
    };
    if (system) body.system = system;
    if (opts.temperature !== undefined) body.temperature = opts.temperature;
    const res = await postJson(this.url, body, { ...this.retry, headers: this.headers, parse: (j) => MessageSchema.parse(j) });
    return res.content.filter((b) => b.type === 'text').map((b) => b.text ?? '').join('');
  }
}
