/**
 * `persona bench serve`: the same load served concurrently (N streaming clients at once, continuous batching) and
 * one request at a time, through real HTTP on 127.0.0.1, side by side. Per mode: requests/s, generated tokens/s,
 * p50/p99 latency (request sent → last chunk) and time to first token.
 */
import { createParser } from 'eventsource-parser';
import { PersonaError } from '../errors';
import type { ServeEngine } from './engine';
import { listen } from './server';
import type { ChatCompletionChunk } from './protocol';

export interface ServeBenchOptions {
  clients: number;
  maxTokens: number;
  /** User messages, used round-robin. */
  prompts: readonly string[];
  /** Sampling temperature (default 1, seeded per client so both modes generate the same tokens). */
  temperature?: number;
  /** Steering per client (cycled): a persona extension or none. */
  personas?: readonly (object | undefined)[];
}

export interface ServeModeStats {
  requests: number;
  tokens: number;
  wallMs: number;
  requestsPerSecond: number;
  tokensPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  firstTokenP50Ms: number;
}

export interface ServeBenchResult {
  model: string;
  clients: number;
  maxTokens: number;
  concurrent: ServeModeStats;
  sequential: ServeModeStats;
  /** concurrent tokens/s ÷ sequential tokens/s. */
  speedup: number;
  maxBatchRows: number;
  /** Whether each client got the same text in both modes. */
  sameText: boolean;
}

/** Streams one request; returns its text, tokens, latency and time to first token. */
async function streamOnce(url: string, body: object): Promise<{ text: string; tokens: number; ms: number; firstMs: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok || !res.body) throw new PersonaError(`bench request failed: HTTP ${res.status} ${await res.text()}`);
  let text = '';
  let tokens = 0;
  let firstMs = NaN;
  const parser = createParser({
    onEvent: (ev) => {
      if (ev.data === '[DONE]') return;
      const chunk = JSON.parse(ev.data) as ChatCompletionChunk & { error?: { message: string } };
      if (chunk.error) throw new PersonaError(`bench request failed: ${chunk.error.message}`);
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      const delta = chunk.choices[0]?.delta.content;
      if (delta) {
        if (Number.isNaN(firstMs)) firstMs = performance.now() - t0;
        text += delta;
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(part, { stream: true }));
  return { text, tokens, ms: performance.now() - t0, firstMs };
}

function percentile(xs: number[], p: number): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function stats(runs: { tokens: number; ms: number; firstMs: number }[], wallMs: number): ServeModeStats {
  const tokens = runs.reduce((s, r) => s + r.tokens, 0);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    requests: runs.length,
    tokens,
    wallMs: Math.round(wallMs),
    requestsPerSecond: r2(runs.length / (wallMs / 1000)),
    tokensPerSecond: r2(tokens / (wallMs / 1000)),
    latencyP50Ms: Math.round(percentile(runs.map((r) => r.ms), 50)),
    latencyP99Ms: Math.round(percentile(runs.map((r) => r.ms), 99)),
    firstTokenP50Ms: Math.round(percentile(runs.map((r) => r.firstMs), 50)),
  };
}

export async function benchServe(engine: ServeEngine, o: ServeBenchOptions, log: (line: string) => void = () => {}): Promise<ServeBenchResult> {
  if (!(Number.isInteger(o.clients) && o.clients >= 1)) throw new PersonaError(`--clients must be a positive integer, got ${o.clients}`, { field: 'clients' });
  if (o.prompts.length === 0) throw new PersonaError('no prompts to send', { field: 'prompts' });
  const server = await listen(engine, { port: 0 });
  try {
    const bodies = Array.from({ length: o.clients }, (_, i) => ({
      messages: [{ role: 'user', content: o.prompts[i % o.prompts.length] }],
      max_tokens: o.maxTokens,
      temperature: o.temperature ?? 1,
      seed: i,
      stream: true,
      stream_options: { include_usage: true },
      ...(o.personas?.length && o.personas[i % o.personas.length] ? { persona: o.personas[i % o.personas.length] } : {}),
    }));
    await streamOnce(server.url, { ...bodies[0], max_tokens: 2 }); // warm-up: kernels compiled, caches allocated
    log(`sequential: ${o.clients} requests one at a time`);
    let t0 = performance.now();
    const sequential: Awaited<ReturnType<typeof streamOnce>>[] = [];
    for (const b of bodies) sequential.push(await streamOnce(server.url, b));
    const seqMs = performance.now() - t0;
    log(`concurrent: ${o.clients} clients at once`);
    const rowsBefore = engine.batcher.stats.maxRows;
    t0 = performance.now();
    const concurrent = await Promise.all(bodies.map((b) => streamOnce(server.url, b)));
    const conMs = performance.now() - t0;
    const c = stats(concurrent, conMs);
    const s = stats(sequential, seqMs);
    return {
      model: engine.modelName,
      clients: o.clients,
      maxTokens: o.maxTokens,
      concurrent: c,
      sequential: s,
      speedup: Math.round((c.tokensPerSecond / s.tokensPerSecond) * 100) / 100,
      maxBatchRows: Math.max(rowsBefore, engine.batcher.stats.maxRows),
      sameText: concurrent.every((r, i) => r.text === sequential[i].text),
    };
  } finally {
    await server.close();
  }
}
