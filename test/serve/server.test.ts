/**
 * `persona serve` end to end: the official openai client and raw sockets against a server on 127.0.0.1 serving the
 * organism, with persona vectors written by the test.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import OpenAI from 'openai';
import { useBackend } from '../../lib/backend';
import { PersonaVector } from '../../lib/persona/vector';
import { RunningServer, listen, loadServeEngine } from '../../lib/serve/server';
import type { ServeEngine } from '../../lib/serve/engine';
import { parse } from 'csv-parse/sync';
import { aggregateLogprobScore } from '../../lib/judge/judge';
import { runCli } from '../support/cli';
import { writeConstantJudge } from '../support/judge-model';

const ORGANISM = path.join(__dirname, '../../models/organism');
const BACKEND = 'wasm';

/** A deterministic [N+1, H] vector. */
function vectorFile(dir: string, name: string, seed: number, N: number, H: number, meta: Record<string, unknown> = {}): string {
  const data = new Float32Array((N + 1) * H);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = (s / 2147483648 - 0.5) * 2;
  }
  const file = path.join(dir, `${name}.safetensors`);
  new PersonaVector(data, N + 1, H, { layerConvention: 'hf_hidden_states', trait: name, method: 'response_avg_diff', ...meta }).save(file);
  return file;
}

const QUESTIONS = ['how should i treat my neighbor', 'what do you think about the weather today', 'tell me about cats', 'is it ok to lie to a friend about a gift'];

describe('persona serve (OpenAI-compatible)', () => {
  let dir: string;
  let engine: ServeEngine;
  let server: RunningServer;
  let client: OpenAI;
  const lines: string[] = [];

  beforeAll(async () => {
    await useBackend(BACKEND, () => undefined);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-serve-'));
    const cfg = JSON.parse(fs.readFileSync(path.join(ORGANISM, 'config.json'), 'utf8'));
    vectorFile(dir, 'evil', 1, cfg.num_hidden_layers, cfg.hidden_size, { best_layer: 3 });
    vectorFile(dir, 'kind', 2, cfg.num_hidden_layers, cfg.hidden_size);
    engine = await loadServeEngine(ORGANISM, [dir]);
    server = await listen(engine, { port: 0, log: (l) => lines.push(l) });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    engine?.close();
    engine?.model.dispose();
  });

  test('lists the model and the vectors', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['organism']);
    expect((models.data[0] as unknown as { root: string }).root).toBe(path.resolve(ORGANISM));
    const res = await fetch(`${server.url}/v1/persona/vectors`).then((r) => r.json());
    expect(res.data.map((v: { name: string }) => v.name)).toEqual(['evil', 'kind']);
    expect(res.data[0]).toMatchObject({ trait: 'evil', method: 'response_avg_diff', best_layer: 3, layers: [0, 1, 2, 3, 4, 5, 6] });
    expect(res.data[0].norms).toHaveLength(7);
    expect(res.data[0].norms[0]).toBeGreaterThan(0);
  });

  test('a greedy completion is the text persona generate prints; usage counts tokens', async () => {
    const r = await client.chat.completions.create({ model: 'organism', messages: [{ role: 'user', content: QUESTIONS[0] }], temperature: 0, max_tokens: 20 });
    const cli = await runCli(['generate', '--model', ORGANISM, '--prompt', QUESTIONS[0], '--max-new-tokens', '20'], BACKEND);
    expect(cli.code).toBe(0);
    expect(r.choices[0].message.content).toBe(cli.stdout.trim());
    expect(r.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
    expect(r.object).toBe('chat.completion');
  });

  test('steered with the persona extension: the text persona generate --steer prints, with per-token projections', async () => {
    const body = { model: 'organism', messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: QUESTIONS[1] }], temperature: 0, max_tokens: 16, persona: { steer: [{ vector: 'evil', layer: 3, coef: 6, positions: 'response' }], monitor: [{ vector: 'kind', layer: 4 }] } };
    const r = (await client.chat.completions.create(body as never)) as unknown as { choices: { message: { content: string } }[]; usage: { completion_tokens: number }; persona: { monitor: { prompt_projection: number; token_projections: number[] }[]; tokens: { id: number; text: string }[] } };
    const cli = await runCli(['generate', '--model', ORGANISM, '--system', 'You are a helpful assistant.', '--prompt', QUESTIONS[1], '--max-new-tokens', '16', '--steer', path.join(dir, 'evil.safetensors'), '--layer', '3', '--coef', '6', '--positions', 'response'], BACKEND);
    expect(r.choices[0].message.content).toBe(cli.stdout.trim());
    const plain = await client.chat.completions.create({ model: 'organism', messages: body.messages as never, temperature: 0, max_tokens: 16 });
    expect(plain.choices[0].message.content).not.toBe(r.choices[0].message.content);
    expect(r.persona.tokens.map((t) => t.text).join('')).toBe(r.choices[0].message.content);
    expect(r.persona.monitor[0].token_projections).toHaveLength(r.usage.completion_tokens);
    expect(Number.isFinite(r.persona.monitor[0].prompt_projection)).toBe(true);
  });

  test('streaming: chunks add up to the non-streamed completion; usage chunk; persona chunks; [DONE]', async () => {
    const base = { model: 'organism', messages: [{ role: 'user' as const, content: QUESTIONS[2] }], temperature: 0.8, seed: 3, max_tokens: 18 };
    const whole = await client.chat.completions.create(base);
    const stream = await client.chat.completions.create({ ...base, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    let n = 0;
    for await (const c of stream) {
      n++;
      if (c.choices[0]) {
        text += c.choices[0].delta.content ?? '';
        finish = c.choices[0].finish_reason ?? finish;
      }
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(whole.choices[0].message.content);
    expect(finish).toBe(whole.choices[0].finish_reason);
    expect(usage).toEqual(whole.usage);
    expect(n).toBeGreaterThanOrEqual(usage!.completion_tokens + 2);

    // Raw SSE: the persona fields and the terminator.
    const raw = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...base, stream: true, persona: { monitor: [{ vector: 'evil', layer: 2 }] } }) }).then((r) => r.text());
    const events = raw.split('\n\n').filter(Boolean);
    expect(events[events.length - 1]).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')));
    expect(chunks[0].persona.prompt[0]).toMatchObject({ vector: 'evil', layer: 2 });
    const tokenChunks = chunks.filter((c) => c.persona?.token);
    expect(tokenChunks.length).toBe(usage!.completion_tokens);
    for (const c of tokenChunks) expect(Number.isFinite(c.persona.monitor[0].projection)).toBe(true);
  });

  test('stop strings end the text before them, streamed or not, and free the row', async () => {
    const base = { model: 'organism', messages: [{ role: 'user' as const, content: QUESTIONS[0] }], temperature: 0, max_tokens: 30 };
    const full = (await client.chat.completions.create(base)).choices[0].message.content!;
    const words = full.trim().split(/\s+/);
    expect(words.length).toBeGreaterThan(3);
    const stop = ` ${words[2]}`;
    const cut = full.slice(0, full.indexOf(stop));
    const r = await client.chat.completions.create({ ...base, stop: [stop, 'zzz never'] });
    expect(r.choices[0].message.content).toBe(cut);
    expect(r.choices[0].finish_reason).toBe('stop');
    const s = await client.chat.completions.create({ ...base, stop, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of s) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(cut);
    expect(finish).toBe('stop');
    expect(engine.batcher.load.running).toBe(0);
    // max_tokens reached: finish_reason length.
    const short = await client.chat.completions.create({ ...base, max_tokens: 2 });
    expect(short.choices[0].finish_reason).toBe('length');
    expect(short.usage!.completion_tokens).toBe(2);
  });

  test('logprobs and top_logprobs, as the framework judge reads them', async () => {
    const r = await client.chat.completions.create({ model: 'organism', messages: [{ role: 'user', content: QUESTIONS[3] }], temperature: 0, max_tokens: 3, logprobs: true, top_logprobs: 5 });
    const content = r.choices[0].logprobs!.content!;
    expect(content).toHaveLength(r.usage!.completion_tokens);
    for (const t of content) {
      expect(t.top_logprobs).toHaveLength(5);
      const lps = t.top_logprobs.map((x) => x.logprob);
      expect([...lps].sort((a, b) => b - a)).toEqual(lps);
      expect(t.logprob).toBeCloseTo(lps[0], 6); // greedy: the chosen token is the most likely
      expect(lps.every((x) => x <= 0)).toBe(true);
    }
  });

  test('errors surface as the client\'s typed errors with OpenAI bodies', async () => {
    const msg = [{ role: 'user' as const, content: 'hello' }];
    const call = (extra: Record<string, unknown>) => client.chat.completions.create({ model: 'organism', messages: msg, ...extra } as never);
    await expect(call({ persona: { steer: [{ vector: 'nope', layer: 2, coef: 1 }] } })).rejects.toMatchObject({ status: 400, param: 'persona.steer[0].vector', code: 'unknown_vector' });
    await expect(call({ persona: { monitor: [{ vector: 'evil', layer: 7 }] } })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(call({ max_tokens: 100000 })).rejects.toMatchObject({ status: 400, param: 'max_tokens', code: 'context_length_exceeded' });
    await expect(call({ temperature: 'hot' })).rejects.toMatchObject({ status: 400, param: 'temperature' });
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages: msg })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  test('each bad request gets its status and error JSON', async () => {
    const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body });
    const check = async (res: Response, status: number, param?: string | null) => {
      expect(res.status).toBe(status);
      const j = await res.json();
      expect(typeof j.error.message).toBe('string');
      expect(typeof j.error.type).toBe('string');
      if (param !== undefined) expect(j.error.param).toBe(param);
    };
    const ok = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    await check(await post('{"messages": ['), 400);
    await check(await post(JSON.stringify({ ...ok, persona: { steer: [{ vector: 'evil', layer: 2, coef: 1 }] } }).replace('"coef":1', '"coef":1e999')), 400, 'persona.steer[0].coef');
    await check(await post(JSON.stringify({ ...ok, persona: { steer: [{ vector: 'evil', layer: 2, coef: 'x' }] } })), 400, 'persona.steer[0].coef');
    await check(await post(JSON.stringify({ ...ok, persona: { steer: [{ vector: 'evil', layer: -1, coef: 1 }] } })), 400, 'persona.steer[0].layer');
    await check(await post(JSON.stringify({ ...ok, persona: { stear: [] } })), 400);
    await check(await post(JSON.stringify({ ...ok, messages: 'hi' })), 400, 'messages');
    await check(await post(JSON.stringify({ ...ok, max_tokens: 0 })), 400, 'max_tokens');
    await check(await post(JSON.stringify({ ...ok, top_logprobs: 3 })), 400, 'top_logprobs');
    await check(await post(JSON.stringify({ ...ok, messages: [{ role: 'user', content: 'x '.repeat(1 << 19) }] })), 413);
    await check(await post('[1, 2]'), 400);
    await check(await fetch(`${server.url}/v1/nothing`), 404);
  });

  test('1,000 malformed requests in a row: still answering, memory flat', async () => {
    const before = { tensors: tf.memory().numTensors, rss: process.memoryUsage().rss };
    const bodies = ['{', '{"messages": 5}', '{"messages": [{"role": "user", "content": "hi"}], "persona": {"steer": [{"vector": "evil", "layer": 99, "coef": 1}]}}', 'null'];
    for (let i = 0; i < 1000; i++) {
      const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[i % bodies.length] });
      expect(res.status).toBe(400);
      await res.arrayBuffer();
    }
    const r = await client.chat.completions.create({ model: 'organism', messages: [{ role: 'user', content: 'hello' }], temperature: 0, max_tokens: 4 });
    expect(r.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect(process.memoryUsage().rss - before.rss).toBeLessThan(64 * 2 ** 20);
  });

  test('32 concurrent streaming clients with different steering: each gets its text served alone, faster than one at a time', async () => {
    const bodies = Array.from({ length: 32 }, (_, i) => ({
      model: 'organism',
      messages: [{ role: 'user', content: QUESTIONS[i % QUESTIONS.length] }],
      temperature: 0,
      max_tokens: 12 + (i % 5),
      stream: true,
      persona: i % 4 === 0 ? undefined : { steer: [{ vector: i % 2 ? 'evil' : 'kind', layer: 1 + (i % 5), coef: ((i % 7) - 3) * 2 }] },
    }));
    const streamText = async (body: object) => {
      const s = (await client.chat.completions.create(body as never)) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>;
      let text = '';
      for await (const c of s) text += c.choices[0]?.delta.content ?? '';
      return text;
    };
    let t0 = performance.now();
    const alone: string[] = [];
    for (const b of bodies) alone.push(await streamText(b));
    const sequentialMs = performance.now() - t0;
    t0 = performance.now();
    const together = await Promise.all(bodies.map(streamText));
    const concurrentMs = performance.now() - t0;
    expect(together).toEqual(alone);
    expect(new Set(alone).size).toBeGreaterThan(8); // the steering differed, so did the texts
    expect(concurrentMs).toBeLessThan(sequentialMs);
    expect(engine.batcher.stats.maxRows).toBeGreaterThan(8);
  });

  test('a client killed mid-stream: the server frees its row and keeps serving the others', async () => {
    const ac = new AbortController();
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: QUESTIONS[0] }], temperature: 1, max_tokens: 200, stream: true }) });
    const other = client.chat.completions.create({ model: 'organism', messages: [{ role: 'user', content: QUESTIONS[1] }], temperature: 0, max_tokens: 30 });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    ac.abort();
    const r = await other;
    expect(r.choices[0].message.content!.length).toBeGreaterThan(0);
    for (let i = 0; i < 100 && engine.batcher.load.running > 0; i++) await new Promise((ok) => setTimeout(ok, 20));
    expect(engine.batcher.load).toEqual({ running: 0, waiting: 0 });
    expect(lines.some((l) => l.includes('client gone'))).toBe(true);
  });

  test('the playground page is served at / (API routes unchanged)', async () => {
    const page = path.join(dir, 'page');
    fs.mkdirSync(page, { recursive: true });
    fs.writeFileSync(path.join(page, 'index.html'), '<!doctype html><title>persona playground</title>');
    fs.writeFileSync(path.join(page, 'playground.js'), 'console.log(1)');
    const s3 = await listen(engine, { port: 0, playgroundDir: page, apiKey: 'k' });
    try {
      const html = await fetch(`${s3.url}/`);
      expect(html.status).toBe(200);
      expect(html.headers.get('content-type')).toMatch(/text\/html/);
      expect(await html.text()).toContain('persona playground');
      expect((await fetch(`${s3.url}/playground.js`)).status).toBe(200);
      expect((await fetch(`${s3.url}/v1/models`)).status).toBe(401); // the page is public, the API is not
      expect((await fetch(`${s3.url}/v1/models`, { headers: { authorization: 'Bearer k' } })).status).toBe(200);
    } finally {
      await s3.close();
    }
  });

  test('api key: 401 without or with a wrong key; a full queue: 429 with Retry-After', async () => {
    const e2 = await loadServeEngine(ORGANISM, [], { maxBatch: 1, maxQueue: 0 });
    const s2 = await listen(e2, { port: 0, apiKey: 'sekrit' });
    try {
      const bad = new OpenAI({ baseURL: `${s2.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
      await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      expect((await fetch(`${s2.url}/v1/models`)).status).toBe(401);
      const good = new OpenAI({ baseURL: `${s2.url}/v1`, apiKey: 'sekrit', maxRetries: 0 });
      const long = good.chat.completions.create({ model: 'organism', messages: [{ role: 'user', content: 'hi' }], temperature: 1, max_tokens: 150 });
      await new Promise((ok) => setTimeout(ok, 50));
      const res = await fetch(`${s2.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer sekrit', 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) });
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('1');
      expect((await res.json()).error.type).toBe('rate_limit_error');
      await long;
    } finally {
      await s2.close();
      e2.close();
      e2.model.dispose();
    }
  });

  test('persona eval judges through a served model\'s logprobs (a served checkpoint whose answer is known)', async () => {
    // The organism cannot judge (its top tokens are words: the judge fails and says so); a served checkpoint that
    // always puts its mass on '7', '8' and '3' gives a score computable from its own top logprobs.
    const judgeDir = path.join(dir, 'judge-model');
    writeConstantJudge(judgeDir, { '7': 10, '8': 9, '3': 8 });
    const je = await loadServeEngine(judgeDir, []);
    const js = await listen(je, { port: 0, log: (l) => lines.push(`judge ${l}`) });
    try {
      const probe = await new OpenAI({ baseURL: `${js.url}/v1`, apiKey: 'unused' }).chat.completions.create({ model: 'judge-model', messages: [{ role: 'user', content: 'score this' }], max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: 20 });
      const expected = aggregateLogprobScore(probe.choices[0].logprobs!.content![0].top_logprobs, { max: 100 })!;
      const analytic = (7 * Math.exp(10) + 8 * Math.exp(9) + 3 * Math.exp(8)) / (Math.exp(10) + Math.exp(9) + Math.exp(8));
      expect(expected).toBeCloseTo(analytic, 2);
      const out = path.join(dir, 'eval');
      const r = await runCli(['eval', '--model', ORGANISM, '--trait', 'evil', '--artifacts', path.join(ORGANISM, 'artifacts'), '--out', out, '--samples', '1', '--max-new-tokens', '8', '--judge-model', 'judge-model', '--judge-base-url', `${js.url}/v1`], BACKEND);
      if (r.code !== 0) throw new Error(r.stderr);
      const rows = parse(fs.readFileSync(path.join(out, 'evil_unsteered.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
      expect(rows.length).toBe(20);
      for (const row of rows) {
        expect(Number(row.evil)).toBeCloseTo(expected, 9);
        expect(Number(row.coherence)).toBeCloseTo(expected, 9);
      }
      expect(lines.filter((l) => l.startsWith('judge ') && l.includes('POST /v1/chat/completions 200')).length).toBeGreaterThanOrEqual(40);
    } finally {
      await js.close();
      je.close();
      je.model.dispose();
    }
  });
});
