/**
 * The wire format of `persona serve`: OpenAI chat completions plus one extension field, `persona`. This file is the
 * contract between the server (lib/serve/server.ts), the engine behind it (lib/serve/engine.ts) and the playground,
 * which speaks only this protocol (over HTTP when served, in-process when it runs standalone in the browser).
 * Types only: nothing here touches Node or the DOM.
 */

/** Where steering adds its vector (the paper's convention, see lib/model/interventions.ts). */
export type PersonaPositions = 'all' | 'prompt' | 'response';

/** `persona` in a chat completion request. Vectors are named as GET /v1/persona/vectors lists them. */
export interface PersonaRequest {
  steer?: { vector: string; layer: number; coef: number; positions?: PersonaPositions }[];
  ablate?: { vector: string; layer: number }[];
  monitor?: { vector: string; layer: number }[];
}

/** One monitored value: the projection a·v/|v| of hidden_states[layer] (after any interventions) on the vector. */
export interface Projection {
  vector: string;
  layer: number;
  projection: number;
}

/**
 * `persona` in a non-streaming response. `prompt_projection` is taken at the last prompt token (the paper's
 * monitoring signal); `token_projections[i]` at generated token i's own position (the activation the model computes
 * when that token is its input, as response-average extraction uses); `tokens[i]` is token i's text piece (the
 * pieces concatenate to the message content, up to any stop string).
 */
export interface PersonaResponse {
  monitor: { vector: string; layer: number; prompt_projection: number; token_projections: number[] }[];
  tokens: { id: number; text: string }[];
}

/**
 * `persona` in a streaming chunk: the first chunk (delta.role) carries `prompt`, each token's chunk carries its
 * token and `monitor` (in the order of the request's monitor list).
 */
export interface PersonaChunk {
  prompt?: Projection[];
  token?: { id: number; text: string };
  monitor?: Projection[];
}

/** An entry of GET /v1/persona/vectors. */
export interface VectorInfo {
  /** What requests call it: the file name without extension, unless its metadata names it (`name`). */
  name: string;
  /** hidden_states indices it has a direction for. */
  layers: number[];
  /** |v| per entry of `layers`. */
  norms: number[];
  trait?: string;
  method?: string;
  model?: string;
  /** The layer its metadata recommends for steering (`best_layer` / `bestLayer`), if any. */
  best_layer?: number;
  source: string;
}

export interface ChatMessageIn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The subset of OpenAI's request the server accepts (unknown top-level fields are ignored, as OpenAI does). */
export interface ChatCompletionRequest {
  model?: string;
  messages: ChatMessageIn[];
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  seed?: number;
  stop?: string | string[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  logprobs?: boolean;
  top_logprobs?: number;
  persona?: PersonaRequest;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: { token: string; logprob: number; bytes: number[] | null }[];
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FinishReason = 'stop' | 'length';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; logprobs: { content: TokenLogprob[] } | null; finish_reason: FinishReason }[];
  usage: Usage;
  persona?: PersonaResponse;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; logprobs: { content: TokenLogprob[] } | null; finish_reason: FinishReason | null }[];
  usage?: Usage | null;
  persona?: PersonaChunk;
}

/** OpenAI's error body. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
