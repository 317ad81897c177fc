/** Shapes shared by the LLM clients (OpenAI-compatible, Anthropic) and their users (judges, artifact generation). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatOptions {
  maxTokens?: number;
  temperature?: number;
}

/** Anything that turns a conversation into one assistant reply. */
export interface ChatClient {
  /** Names the endpoint and model, e.g. "openai:gpt-4.1-mini"; used in cache keys and error messages. */
  readonly id: string;
  chat(messages: ChatMessage[], opts?: ChatOptions): Promise<string>;
}

/** One entry of an API's top_logprobs list for a single generated position. */
export interface TopLogprob {
  token: string;
  logprob: number;
}
