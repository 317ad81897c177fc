/** Keys and base URLs are checked when a client is built, before any request. */
import { AnthropicClient } from '../../lib/llm/anthropic';
import { resolveEndpoint } from '../../lib/llm/endpoint';
import { OpenAIClient } from '../../lib/llm/openai';
import { CHAT_PATH, LlmTestServer } from '../support/llm-server';

const VARS = ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL'];
const saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
let server: LlmTestServer;
beforeAll(async () => {
  server = await LlmTestServer.start();
});
afterAll(() => server.close());
beforeEach(() => {
  server.reset();
  for (const k of VARS) delete process.env[k];
});
afterEach(() => {
  for (const k of VARS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

test("the providers' own APIs need their key variable; an empty one counts as unset", () => {
  expect(() => new AnthropicClient({ model: 'claude-x' })).toThrow(/^ANTHROPIC_API_KEY is not set; https:\/\/api\.anthropic\.com needs it$/);
  process.env.OPENAI_API_KEY = ' ';
  expect(() => new OpenAIClient({ model: 'gpt-x' })).toThrow(/^OPENAI_API_KEY is not set/);
  expect(() => new OpenAIClient({ model: 'gpt-x', baseURL: 'https://api.openai.com/v1/' })).toThrow(/OPENAI_API_KEY/);
  expect(new OpenAIClient({ model: 'gpt-x', apiKey: 'sk' }).url).toBe('https://api.openai.com/v1/chat/completions');
  process.env.ANTHROPIC_API_KEY = 'k';
  expect(new AnthropicClient({ model: 'claude-x' }).url).toBe('https://api.anthropic.com/v1/messages');
});

test('malformed base URLs name where they came from', () => {
  expect(() => new OpenAIClient({ model: 'm', baseURL: 'localhost:8000/v1' })).toThrow(/^baseURL must be an http:\/\/ or https:\/\/ URL, got 'localhost:8000\/v1'$/);
  process.env.OPENAI_BASE_URL = '127.0.0.1/v1';
  expect(() => new OpenAIClient({ model: 'm' })).toThrow(/^OPENAI_BASE_URL is not a URL: '127\.0\.0\.1\/v1'/);
  expect(() => resolveEndpoint('anthropic', { baseURL: 'nope' }, { baseURL: '--base-url' })).toThrow(/^--base-url is not a URL: 'nope'/);
});

test('a local server (flag or $OPENAI_BASE_URL) needs no key, and none is sent', async () => {
  server.enqueue(CHAT_PATH, { kind: 'chat', content: 'hi' });
  process.env.OPENAI_BASE_URL = `${server.url}/v1/`;
  const c = new OpenAIClient({ model: 'm' });
  expect(c.url).toBe(`${server.url}/v1/chat/completions`);
  expect(await c.chat([{ role: 'user', content: 'x' }])).toBe('hi');
  expect(server.requests[0].headers.authorization).toBeUndefined();
});
