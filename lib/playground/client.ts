/**
 * What the playground's front end talks to: the wire protocol of `persona serve` (lib/serve/protocol.ts), over HTTP
 * (servedClient) or in-process in the page (page/standalone.ts). The front end uses nothing else, so both forms
 * show the same thing for the same requests.
 */
import { createParser } from 'eventsource-parser';
import type { ChatCompletionChunk, ChatCompletionRequest, ErrorBody, VectorInfo } from '../serve/protocol';

export interface PlaygroundClient {
  /** A streaming chat completion: the chunks as they come (`stream: true` is implied). */
  chat(body: ChatCompletionRequest, signal?: AbortSignal): AsyncIterable<ChatCompletionChunk>;
  /** The loaded persona vectors (GET /v1/persona/vectors). */
  vectors(): Promise<VectorInfo[]>;
  /** One line for the page header: where the model runs. */
  describe(): string;
  /** The checkpoint directory for reproduce commands (`persona generate --model DIR`), when known. */
  modelDir?: string;
  /** Neutral prompts the page starts with (a standalone site may bring its own), else DEFAULT_NEUTRAL_PROMPTS. */
  neutralPrompts?: readonly string[];
}

/** The OpenAI-style error message of a failed response, else its status line. */
async function errorOf(res: Response, what: string): Promise<Error> {
  let detail = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as Partial<ErrorBody>;
    if (body?.error?.message) detail = `${res.status}: ${body.error.message}`;
  } catch {
    // not JSON: the status line says enough
  }
  return new Error(`${what} failed (${detail})`);
}

/**
 * A client of `persona serve` at `baseUrl` (e.g. "" for the page's own origin, or "http://127.0.0.1:8000").
 * Server-sent events are parsed with eventsource-parser; `data: [DONE]` ends the stream.
 */
export function servedClient(baseUrl = '', opts: { apiKey?: string; modelDir?: string; fetch?: typeof fetch } = {}): PlaygroundClient {
  const f = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  const base = baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  let model: { id?: string; root?: string } = {};
  const client: PlaygroundClient = {
    modelDir: opts.modelDir,
    describe: () => `Served by ${base || ((globalThis as { location?: { origin: string } }).location?.origin ?? 'this server')}${model.id ? `: model ${model.id}` : ''}`,
    async vectors() {
      // The model's id, and its directory where the server gives one as `root` (vLLM's field), for the commands.
      const m = await f(`${base}/v1/models`, { headers });
      if (m.ok) {
        model = ((await m.json()) as { data?: { id?: string; root?: string }[] }).data?.[0] ?? {};
        if (client.modelDir === undefined && typeof model.root === 'string') client.modelDir = model.root;
      }
      const res = await f(`${base}/v1/persona/vectors`, { headers });
      if (!res.ok) throw await errorOf(res, 'GET /v1/persona/vectors');
      const body = (await res.json()) as { data?: VectorInfo[] };
      if (!Array.isArray(body.data)) throw new Error('GET /v1/persona/vectors: the response has no data list');
      return body.data;
    },
    chat(body, signal) {
      return {
        async *[Symbol.asyncIterator]() {
          const res = await f(`${base}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ ...body, stream: true }), signal });
          if (!res.ok) throw await errorOf(res, 'POST /v1/chat/completions');
          if (!res.body) throw new Error('POST /v1/chat/completions: the response has no body');
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          const events: string[] = [];
          const parser = createParser({ onEvent: (e) => events.push(e.data) });
          try {
            for (;;) {
              while (events.length) {
                const data = events.shift()!;
                if (data === '[DONE]') return;
                const chunk = JSON.parse(data) as ChatCompletionChunk | Partial<ErrorBody>;
                if ('error' in chunk && chunk.error) throw new Error(`the server reported: ${chunk.error.message}`);
                yield chunk as ChatCompletionChunk;
              }
              const { value, done } = await reader.read();
              if (done) throw new Error('the server closed the stream before data: [DONE]');
              parser.feed(value);
            }
          } finally {
            // Ends the HTTP response too when the consumer stops early (the server then frees the row).
            await reader.cancel().catch(() => undefined);
          }
        },
      };
    },
  };
  return client;
}
