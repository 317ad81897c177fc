/**
 * The playground's client and session logic against a real HTTP server on 127.0.0.1 (node:http writing server-sent
 * events by hand, split at awkward places): streamed chunks, [DONE], errors, the vector list, neutral statistics,
 * the prompt reading and the reproduce command.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatCompletionChunk, VectorInfo } from '../../lib/serve/protocol';
import { servedClient } from '../../lib/playground/client';
import { neutralStats, promptReading, reproduceCommand, requestOf, streamAnswer, zScore, ViewSettings } from '../../lib/playground/session';

const VECTORS: VectorInfo[] = [{ name: 'evil', layers: [0, 1, 2, 3], norms: [0, 1, 2, 3], trait: 'evil', best_layer: 2, source: 'runs/x/evil.safetensors' }];

function chunk(over: Partial<ChatCompletionChunk>, content?: string): ChatCompletionChunk {
  return { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: content === undefined ? {} : { content }, logprobs: null, finish_reason: null }], ...over };
}

let server: http.Server;
let base: string;
const seen: unknown[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/v1/models') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'organism', object: 'model', created: 0, owned_by: 'persona', root: 'models/organism' }] }));
      return;
    }
    if (req.url === '/v1/persona/vectors') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ object: 'list', data: VECTORS }));
      return;
    }
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const parsed = JSON.parse(body);
      seen.push(parsed);
      if (parsed.messages[0].content === 'bad') {
        res.statusCode = 400;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: { message: "unknown vector 'nope'", type: 'invalid_request_error', param: 'persona.steer[0].vector', code: null } }));
        return;
      }
      const user = parsed.messages[parsed.messages.length - 1].content as string;
      // The prompt projection encodes the prompt's length, so neutral statistics are checkable.
      const first = chunk({ persona: { prompt: [{ vector: 'evil', layer: 2, projection: user.length }] }, choices: [{ index: 0, delta: { role: 'assistant' }, logprobs: null, finish_reason: null }] });
      const toks = [chunk({ persona: { token: { id: 5, text: 'Hello' }, monitor: [{ vector: 'evil', layer: 2, projection: 0.5 }] } }, 'Hello'), chunk({ persona: { token: { id: 6, text: ' you' }, monitor: [{ vector: 'evil', layer: 2, projection: -1.25 }] } }, ' you')];
      const last = chunk({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] });
      const text = [first, ...toks, last].map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + 'data: [DONE]\n\n';
      res.setHeader('content-type', 'text/event-stream');
      // Cut into 7-byte writes: events span network chunks.
      let i = 0;
      const step = () => {
        if (i >= text.length) return res.end();
        res.write(text.slice(i, i + 7));
        i += 7;
        setImmediate(step);
      };
      step();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const settings: ViewSettings = {
  system: 'Be cruel.', user: "It's late", maxTokens: 8, temperature: 0, topP: 1, seed: 7,
  steer: [{ vector: 'evil', coef: 2.5, layer: 2, positions: 'all' }], monitor: { vector: 'evil', layer: 2 },
};

test('streams an answer through SSE: prompt projection first, then each token with its projection', async () => {
  const client = servedClient(base);
  expect(await client.vectors()).toEqual(VECTORS);
  // The model's id and directory (vLLM's `root`) from /v1/models, for the header and the reproduce commands.
  expect(client.describe()).toBe(`Served by ${base}: model organism`);
  expect(client.modelDir).toBe('models/organism');
  const order: string[] = [];
  const a = await streamAnswer(client, requestOf(settings, true), { prompt: (p) => order.push(`prompt ${p}`), token: (t, i) => order.push(`token ${i} ${t.text} ${t.projection}`) });
  expect(order).toEqual([`prompt ${"It's late".length}`, 'token 0 Hello 0.5', 'token 1  you -1.25']);
  expect(a).toEqual({ tokens: [{ id: 5, text: 'Hello', projection: 0.5 }, { id: 6, text: ' you', projection: -1.25 }], text: 'Hello you', promptProjection: 9, finishReason: 'stop' });
  expect(seen[seen.length - 1]).toEqual({
    messages: [{ role: 'system', content: 'Be cruel.' }, { role: 'user', content: "It's late" }], max_tokens: 8, temperature: 0, seed: 7, stream: true,
    persona: { steer: [{ vector: 'evil', layer: 2, coef: 2.5, positions: 'all' }], monitor: [{ vector: 'evil', layer: 2 }] },
  });
  // Unsteered: the same request without steer.
  expect(requestOf(settings, false).persona).toEqual({ monitor: [{ vector: 'evil', layer: 2 }] });
});

test('stopping mid-stream keeps what came so far (finish reason "stopped") and ends the HTTP response', async () => {
  const ctl = new AbortController();
  const a = await streamAnswer(servedClient(base), requestOf(settings, true), { token: () => ctl.abort() }, ctl.signal);
  expect(a.tokens.map((t) => t.text)).toEqual(['Hello']);
  expect(a.finishReason).toBe('stopped');
});

test("a 400 surfaces the server's error message", async () => {
  await expect(streamAnswer(servedClient(base), { messages: [{ role: 'user', content: 'bad' }] })).rejects.toThrow("POST /v1/chat/completions failed (400: unknown vector 'nope')");
});

test('neutral statistics: mean and sample σ of the prompts\' last-token projections, mean over answer tokens; the reading names the trait', async () => {
  const s = await neutralStats(servedClient(base), ['ab', 'abcd', 'abcdef'], { vector: 'evil', layer: 2 });
  expect(s.values).toEqual([2, 4, 6]);
  expect(s.mean).toBe(4);
  expect(s.std).toBe(2);
  // Every neutral answer is 'Hello you' (0.5, −1.25): the colour scale's centre is their mean.
  expect(s.tokenMean).toBe(-0.375);
  expect(s.tokens).toBe(6);
  expect((seen[seen.length - 1] as { max_tokens: number }).max_tokens).toBe(16);
  expect(zScore(8.6, s)).toBeCloseTo(2.3, 10);
  expect(promptReading('evil', zScore(8.6, s))).toBe('this prompt pushes toward evil: +2.3 σ above neutral prompts');
  expect(promptReading('evil', -1.5)).toBe('this prompt pushes away from evil: −1.5 σ below neutral prompts');
  expect(promptReading('evil', 0.4)).toBe('this prompt is like neutral prompts on evil: +0.4 σ from their mean');
});

test('the reproduce command is persona generate with the same prompt, sampling, seed and steering', () => {
  expect(reproduceCommand(settings, true, VECTORS, 'models/organism')).toEqual({
    command: "persona generate --model models/organism --system 'Be cruel.' --prompt 'It'\\''s late' --max-new-tokens 8 --greedy --seed 7 --steer runs/x/evil.safetensors --layer 2 --coef 2.5 --positions all",
  });
  expect(reproduceCommand({ ...settings, system: '', temperature: 0.7, topP: 0.9 }, false, VECTORS, 'm')).toEqual({
    command: "persona generate --model m --prompt 'It'\\''s late' --max-new-tokens 8 --temperature 0.7 --top-p 0.9 --seed 7",
  });
  const two = { ...settings, steer: [...settings.steer, { vector: 'kind', coef: -1, layer: 2, positions: 'all' as const }] };
  expect(reproduceCommand(two, true, VECTORS)).toEqual({ reason: 'persona generate steers with one vector at a time; this view steers with 2' });
});
