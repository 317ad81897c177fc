import { AnthropicClient } from '../../lib/llm/anthropic';
import { OpenAIClient } from '../../lib/llm/openai';
import { formatTemplate, templatePlaceholders } from '../../lib/llm/template';
import { PersonaError } from '../../lib/errors';
import { CHAT_PATH, LlmTestServer, MESSAGES_PATH } from '../support/llm-server';

describe('API clients against a real server', () => {
  let server: LlmTestServer;
  beforeAll(async () => {
    server = await LlmTestServer.start();
  });
  afterAll(() => server.close());
  beforeEach(() => server.reset());

  test('OpenAI: key from OPENAI_API_KEY, logprob request has the paper\'s parameters', async () => {
    const saved = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = 'sk-from-env';
    try {
      const c = new OpenAIClient({ model: 'judge-model', baseURL: `${server.url}/v1/` });
      server.enqueue(CHAT_PATH, { kind: 'chat', topLogprobs: [{ token: '42', logprob: -0.1 }, { token: '43', logprob: -2.4 }] });
      const top = await c.firstTokenTopLogprobs([{ role: 'user', content: 'rate this' }]);
      expect(top).toEqual([{ token: '42', logprob: -0.1 }, { token: '43', logprob: -2.4 }]);
      const req = server.requests[0];
      expect(req.headers.authorization).toBe('Bearer sk-from-env');
      expect(req.body).toEqual({ model: 'judge-model', messages: [{ role: 'user', content: 'rate this' }], max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: 20, seed: 0 });
    } finally {
      if (saved === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = saved;
    }
  });

  test('OpenAI: no logprobs content gives an empty list; no key sends no Authorization', async () => {
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      const c = new OpenAIClient({ model: 'm', baseURL: `${server.url}/v1` });
      server.enqueue(CHAT_PATH, { kind: 'chat', content: 'x', topLogprobs: [] });
      expect(await c.firstTokenTopLogprobs([{ role: 'user', content: 'q' }])).toEqual([]);
      expect(server.requests[0].headers.authorization).toBeUndefined();
    } finally {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
    }
  });

  test('Anthropic: x-api-key and anthropic-version headers, system prompt lifted, text joined', async () => {
    const c = new AnthropicClient({ model: 'claude-test', baseURL: server.url, apiKey: 'ant-key', defaultMaxTokens: 123 });
    server.enqueue(MESSAGES_PATH, { kind: 'anthropic', text: '{"ok": true}' });
    const text = await c.chat([
      { role: 'system', content: 'be terse' },
      { role: 'user', content: 'hello' },
    ], { temperature: 0.5 });
    expect(text).toBe('{"ok": true}');
    const req = server.requests[0];
    expect(req.path).toBe('/v1/messages');
    expect(req.headers['x-api-key']).toBe('ant-key');
    expect(req.headers['anthropic-version']).toBe('2023-06-01');
    expect(req.body).toEqual({ model: 'claude-test', max_tokens: 123, system: 'be terse', temperature: 0.5, messages: [{ role: 'user', content: 'hello' }] });
  });

  test('Anthropic: 529 overloaded is retried', async () => {
    const c = new AnthropicClient({ model: 'claude-test', baseURL: server.url, apiKey: 'k', backoffBaseMs: 5 });
    server.enqueue(MESSAGES_PATH, { kind: 'status', status: 529 }, { kind: 'anthropic', text: 'done' });
    expect(await c.chat([{ role: 'user', content: 'hi' }])).toBe('done');
    expect(server.count(MESSAGES_PATH)).toBe(2);
  });
});

describe('formatTemplate (Python str.format semantics)', () => {
  test('fills names, unescapes doubled braces, does not rescan values', () => {
    expect(formatTemplate('Q: {question} {{json}} A: {answer}', { question: 'why {answer}?', answer: '}{' })).toBe('Q: why {answer}? {json} A: }{');
  });
  test('unknown placeholder and stray braces are PersonaErrors naming the field', () => {
    expect(() => formatTemplate('{nope}', { question: '' }, { field: 'eval_prompt' })).toThrow(/field 'eval_prompt'.*\{nope\}/);
    expect(() => formatTemplate('a { b', {})).toThrow(PersonaError);
    expect(() => formatTemplate('a } b', {})).toThrow(/unmatched '\}'/);
  });
  test('templatePlaceholders ignores escaped braces', () => {
    expect([...templatePlaceholders('{{x}} {TRAIT} {trait_instruction} {{y}}')].sort()).toEqual(['TRAIT', 'trait_instruction']);
  });
});
