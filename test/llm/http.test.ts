import { PersonaError } from '../../lib/errors';
import { backoffDelay, parseRetryAfter, postJson, Semaphore } from '../../lib/llm/http';
import { OpenAIClient } from '../../lib/llm/openai';
import { CHAT_PATH, LlmTestServer } from '../support/llm-server';

const fast = { backoffBaseMs: 5, backoffMaxMs: 20, maxRetries: 3, timeoutMs: 2000 };

describe('postJson retries against a real server', () => {
  let server: LlmTestServer;
  beforeAll(async () => {
    server = await LlmTestServer.start();
  });
  afterAll(() => server.close());
  beforeEach(() => server.reset());

  const client = (extra: object = {}) => new OpenAIClient({ model: 'm', baseURL: `${server.url}/v1`, apiKey: 'k', ...fast, ...extra });

  test('500 twice, then success: three requests, the answer returned', async () => {
    server.enqueue(CHAT_PATH, { kind: 'status', status: 500 }, { kind: 'status', status: 502 }, { kind: 'chat', content: 'hello' });
    await expect(client().chat([{ role: 'user', content: 'hi' }])).resolves.toBe('hello');
    expect(server.count(CHAT_PATH)).toBe(3);
  });

  test('429 with retry-after-ms waits at least that long although backoff is 5 ms', async () => {
    server.enqueue(CHAT_PATH, { kind: 'status', status: 429, retryAfterMs: '200' }, { kind: 'chat', content: 'ok' });
    const t0 = Date.now();
    await expect(client().chat([{ role: 'user', content: 'hi' }])).resolves.toBe('ok');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(server.count()).toBe(2);
  });

  test('429 with Retry-After in seconds is honoured', async () => {
    server.enqueue(CHAT_PATH, { kind: 'status', status: 429, retryAfter: '1' }, { kind: 'chat', content: 'ok' });
    const t0 = Date.now();
    await expect(client().chat([{ role: 'user', content: 'hi' }])).resolves.toBe('ok');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(980);
  });

  test('a slow response times out and is retried', async () => {
    server.enqueue(CHAT_PATH, { kind: 'delay', ms: 1000, then: { kind: 'chat', content: 'late' } }, { kind: 'chat', content: 'on time' });
    const t0 = Date.now();
    await expect(client({ timeoutMs: 100 }).chat([{ role: 'user', content: 'hi' }])).resolves.toBe('on time');
    expect(Date.now() - t0).toBeLessThan(900);
    expect(server.count()).toBe(2);
  });

  test('malformed JSON and a wrong-shaped body are retried', async () => {
    server.enqueue(CHAT_PATH, { kind: 'malformed' }, { kind: 'malformed', body: '{"no_choices": true}' }, { kind: 'chat', content: 'fine' });
    await expect(client().chat([{ role: 'user', content: 'hi' }])).resolves.toBe('fine');
    expect(server.count()).toBe(3);
  });

  test('a persistent 503 ends in one PersonaError naming URL, status and attempts', async () => {
    server.setFallback(CHAT_PATH, () => ({ kind: 'status', status: 503 }));
    const err = await client({ maxRetries: 2 }).chat([{ role: 'user', content: 'hi' }]).catch((e) => e);
    expect(err).toBeInstanceOf(PersonaError);
    expect(err.message).toContain(`${server.url}/v1/chat/completions`);
    expect(err.message).toContain('after 3 attempts');
    expect(err.message).toContain('HTTP 503');
    expect(server.count()).toBe(3);
  });

  test('400 is not retried', async () => {
    server.setFallback(CHAT_PATH, () => ({ kind: 'status', status: 400, body: '{"error":{"message":"bad model"}}' }));
    const err = await client().chat([{ role: 'user', content: 'hi' }]).catch((e) => e);
    expect(err).toBeInstanceOf(PersonaError);
    expect(err.message).toMatch(/HTTP 400.*bad model/);
    expect(server.count()).toBe(1);
  });

  test('an unreachable server fails with a clear error after the retries', async () => {
    const dead = await LlmTestServer.start();
    const url = dead.url;
    await dead.close();
    const c = new OpenAIClient({ model: 'm', baseURL: `${url}/v1`, ...fast, maxRetries: 2 });
    const err = await c.chat([{ role: 'user', content: 'hi' }]).catch((e) => e);
    expect(err).toBeInstanceOf(PersonaError);
    expect(err.message).toContain(`${url}/v1/chat/completions`);
    expect(err.message).toMatch(/after 3 attempts.*network error/);
  });

  test('the concurrency limit caps requests in flight', async () => {
    server.setFallback(CHAT_PATH, () => ({ kind: 'delay', ms: 60, then: { kind: 'chat', content: 'x' } }));
    const c = client({ concurrency: 2 });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 6 }, () => c.chat([{ role: 'user', content: 'hi' }])));
    expect(server.maxConcurrent).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(170);
  });

  test('postJson passes the parsed body through parse()', async () => {
    server.enqueue(CHAT_PATH, { kind: 'chat', content: 'abc' });
    const n = await postJson(`${server.url}${CHAT_PATH}`, { model: 'm' }, { ...fast, parse: (j: any) => j.choices.length as number });
    expect(n).toBe(1);
  });
});

describe('backoff helpers', () => {
  test('backoff grows exponentially, is jittered within [d/2, d] and capped', () => {
    for (let r = 0; r < 6; r++) {
      const d = Math.min(1000, 10 * 2 ** r);
      for (let i = 0; i < 20; i++) {
        const v = backoffDelay(r, 10, 1000);
        expect(v).toBeGreaterThanOrEqual(d / 2);
        expect(v).toBeLessThanOrEqual(d);
      }
    }
    expect(backoffDelay(0, 10, 1000, 5000)).toBe(5000);
    expect(backoffDelay(0, 10, 1000, 5000, 2000)).toBe(2000);
  });

  test('Retry-After as seconds, HTTP date, retry-after-ms; garbage ignored', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': '3' }))).toBe(3000);
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250', 'retry-after': '3' }))).toBe(250);
    const d = parseRetryAfter(new Headers({ 'retry-after': new Date(Date.now() + 10_000).toUTCString() }))!;
    expect(d).toBeGreaterThan(8000);
    expect(d).toBeLessThanOrEqual(10_000);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(parseRetryAfter(new Headers())).toBeUndefined();
  });

  test('Semaphore never exceeds its limit and runs everything', async () => {
    const sem = new Semaphore(3);
    let active = 0;
    let peak = 0;
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        sem.run(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, 5 + (i % 3)));
          active--;
          done.push(i);
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(sem.inFlight).toBe(0);
    expect(() => new Semaphore(0)).toThrow(PersonaError);
  });
});
