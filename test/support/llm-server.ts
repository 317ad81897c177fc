import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 speaking just enough of the OpenAI chat-completions and Anthropic
 * Messages APIs for tests. Each route has a queue of scripted replies (consumed in order) and a
 * fallback; every request is recorded so tests can count them.
 */
export interface TopLogprobReply {
  token: string;
  logprob: number;
}

export type Reply =
  /** OpenAI chat completion with this content and (optionally) first-token top logprobs. */
  | { kind: 'chat'; content?: string; topLogprobs?: TopLogprobReply[] }
  /** Anthropic message with this text. */
  | { kind: 'anthropic'; text: string }
  /** An error status, optionally with Retry-After / retry-after-ms headers. */
  | { kind: 'status'; status: number; retryAfter?: string; retryAfterMs?: string; body?: string }
  /** 200 with a body that is not JSON (or JSON missing required fields if `body` is given). */
  | { kind: 'malformed'; body?: string }
  /** Wait `ms` before sending `then` (for timeouts). */
  | { kind: 'delay'; ms: number; then: Reply };

export interface RecordedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export const CHAT_PATH = '/v1/chat/completions';
export const MESSAGES_PATH = '/v1/messages';

export class LlmTestServer {
  readonly requests: RecordedRequest[] = [];
  /** Highest number of requests open at once (received, reply not yet finished). */
  maxConcurrent = 0;
  private open = 0;
  private readonly queues = new Map<string, Reply[]>();
  private readonly fallbacks = new Map<string, (req: RecordedRequest) => Reply>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private server!: http.Server;
  url = '';

  static async start(): Promise<LlmTestServer> {
    const s = new LlmTestServer();
    s.server = http.createServer((req, res) => s.handle(req, res));
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  /** Queue replies for a path, consumed one per request before the fallback applies. */
  enqueue(path: string, ...replies: Reply[]): this {
    this.queues.set(path, [...(this.queues.get(path) ?? []), ...replies]);
    return this;
  }

  /** Reply computed from the request when the queue is empty. */
  setFallback(path: string, fn: (req: RecordedRequest) => Reply): this {
    this.fallbacks.set(path, fn);
    return this;
  }

  count(path?: string): number {
    return path ? this.requests.filter((r) => r.path === path).length : this.requests.length;
  }

  reset(): void {
    this.requests.length = 0;
    this.maxConcurrent = 0;
    this.queues.clear();
    this.fallbacks.clear();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.open++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.open);
    res.on('close', () => this.open--);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'request body is not JSON' } }));
        return;
      }
      const rec: RecordedRequest = { path, headers: req.headers, body };
      this.requests.push(rec);
      const queued = this.queues.get(path)?.shift();
      const fallback = this.fallbacks.get(path);
      const reply = queued ?? (fallback ? fallback(rec) : undefined);
      if (!reply) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no scripted reply for ${path}` } }));
        return;
      }
      this.send(res, reply, body);
    });
  }

  private send(res: http.ServerResponse, reply: Reply, reqBody: any): void {
    switch (reply.kind) {
      case 'delay': {
        const t = setTimeout(() => {
          this.timers.delete(t);
          if (!res.destroyed) this.send(res, reply.then, reqBody);
        }, reply.ms);
        this.timers.add(t);
        return;
      }
      case 'status': {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (reply.retryAfter !== undefined) headers['retry-after'] = reply.retryAfter;
        if (reply.retryAfterMs !== undefined) headers['retry-after-ms'] = reply.retryAfterMs;
        res.writeHead(reply.status, headers).end(reply.body ?? JSON.stringify({ error: { message: `scripted ${reply.status}` } }));
        return;
      }
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' }).end(reply.body ?? '{"choices": [{"message": {"content": "trunc');
        return;
      case 'chat':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(chatCompletion(reqBody, reply)));
        return;
      case 'anthropic':
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id: 'msg_test',
            type: 'message',
            role: 'assistant',
            model: reqBody.model,
            content: [{ type: 'text', text: reply.text }],
            stop_reason: 'end_turn',
            usage: { input_tokens: 1, output_tokens: 1 },
          }),
        );
        return;
    }
  }
}

function chatCompletion(reqBody: any, reply: { content?: string; topLogprobs?: TopLogprobReply[] }) {
  const top = reply.topLogprobs ?? [];
  const content = reply.content ?? top[0]?.token ?? '';
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    model: reqBody.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        logprobs: reqBody.logprobs
          ? { content: top.length ? [{ token: content, logprob: top[0].logprob, bytes: null, top_logprobs: top.map((t) => ({ ...t, bytes: null })) }] : [], refusal: null }
          : null,
        finish_reason: 'stop',
      },
    ],
  };
}

/** Top logprobs for a judge that puts probability p_i on the score token s_i (remaining mass on "REFUSAL"). */
export function scoreDistribution(dist: [string, number][]): TopLogprobReply[] {
  const rest = 1 - dist.reduce((a, [, p]) => a + p, 0);
  const out = dist.map(([token, p]) => ({ token, logprob: Math.log(p) }));
  if (rest > 1e-9) out.push({ token: 'REFUSAL', logprob: Math.log(rest) });
  return out;
}
