/**
 * The API judge's endpoint as the CLI and the experiment studies set it up: one concurrency limit for the
 * trait and coherence judges together, and missing keys / bad URLs refused before any work.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { judgesFrom } from '../../cli/commands/extract';
import { cellJudges } from '../../lib/experiment/studies/shared/cell';
import { CHAT_PATH, LlmTestServer, scoreDistribution } from '../support/llm-server';
import { runCli } from '../support/cli';

const TEMPLATE = 'Rate it.\n{question}\n{answer}\nJust the number.';
const ORGANISM = path.join(__dirname, '..', '..', 'models', 'organism');

let server: LlmTestServer;
let tmp: string;
const savedEnv = { ...process.env };
beforeAll(async () => {
  server = await LlmTestServer.start();
});
afterAll(() => server.close());
beforeEach(() => {
  server.reset();
  // Each reply takes a while, so every request the client allows is open at once.
  server.setFallback(CHAT_PATH, () => ({ kind: 'delay', ms: 30, then: { kind: 'chat', topLogprobs: scoreDistribution([['50', 0.9]]) } }));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'judge-endpoint-'));
  for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL']) delete process.env[k];
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL']) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

/** Judges 12 distinct answers with both judges at once, as runRollouts does. */
async function judgeMany(judges: { trait: { score(q: string, a: string): Promise<number | null> }; coherence: { score(q: string, a: string): Promise<number | null> } }[]): Promise<void> {
  const jobs = judges.flatMap((j) => Array.from({ length: 12 }, (_, i) => [j.trait.score('q', `answer ${i}`), j.coherence.score('q', `answer ${i}`)]).flat());
  const scores = await Promise.all(jobs);
  expect(scores.every((s) => s !== null && Math.abs(s - 50) < 1e-9)).toBe(true);
}

describe('--judge-concurrency limits trait and coherence judges together', () => {
  test('CLI judges: at most 2 requests in flight with --judge-concurrency 2', async () => {
    const { judges } = await judgesFrom({ 'judge-model': 'judge-m', 'judge-base-url': `${server.url}/v1`, 'judge-concurrency': 2 }, 'evil', TEMPLATE, tmp);
    await judgeMany([judges]);
    expect(server.count(CHAT_PATH)).toBe(24);
    expect(server.maxConcurrent).toBe(2);
  });

  test('experiment studies: two cells on one endpoint share one limit of 2', async () => {
    const shared = new Map<string, unknown>();
    const env = { cache: { root: tmp }, shared: <T>(k: string, create: () => T): T => (shared.has(k) ? shared.get(k) : (shared.set(k, create()), shared.get(k))) as T };
    const judge = { type: 'openai' as const, model: 'judge-m', base_url: `${server.url}/v1`, concurrency: 2 };
    const art = { instruction: [], questions: [], eval_prompt: TEMPLATE };
    // The same endpoint spelled with and without a trailing slash is still one endpoint.
    const a = cellJudges(env as never, { trait: 'evil', judge } as never, art as never, (p) => p);
    const b = cellJudges(env as never, { trait: 'sycophantic', judge: { ...judge, base_url: `${server.url}/v1/` } } as never, art as never, (p) => p);
    await judgeMany([a, b]);
    expect(server.maxConcurrent).toBe(2);
  });
});

const run = (args: string[]) => runCli(args, null);

function expectOneLineError(r: { code: number; stderr: string; ms: number }, pattern: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.ms).toBeLessThan(1000);
}

describe('missing credentials and bad URLs fail at once, naming the variable or flag', () => {
  test('trait new with an Anthropic model and no ANTHROPIC_API_KEY', async () => {
    const out = path.join(tmp, 'traits');
    const r = await run(['trait', 'new', 'grumpy', '--description', 'easily annoyed', '--llm-model', 'claude-test', '--out', out]);
    expectOneLineError(r, /ANTHROPIC_API_KEY is not set/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('trait new --provider openai without OPENAI_API_KEY; a local --base-url needs no key', async () => {
    expectOneLineError(await run(['trait', 'new', 'grumpy', '--description', 'd', '--provider', 'openai', '--llm-model', 'gpt-test', '--out', tmp]), /OPENAI_API_KEY is not set/);
    expectOneLineError(await run(['trait', 'new', 'grumpy', '--description', 'd', '--llm-model', 'claude-test', '--base-url', 'localhost:8080', '--out', tmp]), /--base-url must be an http:\/\/ or https:\/\/ URL/);
    process.env.ANTHROPIC_BASE_URL = 'not a url';
    expectOneLineError(await run(['trait', 'new', 'grumpy', '--description', 'd', '--llm-model', 'claude-test', '--out', tmp]), /ANTHROPIC_BASE_URL is not a URL: 'not a url'/);
    expect(server.count()).toBe(0);
  });

  test('eval --judge-model without OPENAI_API_KEY fails before the model loads; bad --judge-base-url too', async () => {
    const out = path.join(tmp, 'eval');
    const args = ['eval', '--model', ORGANISM, '--trait', 'evil', '--artifacts', path.join(ORGANISM, 'artifacts'), '--out', out, '--judge-model', 'gpt-test', '--backend', 'cpu'];
    expectOneLineError(await run(args), /OPENAI_API_KEY is not set.*--judge-base-url/);
    expectOneLineError(await run([...args, '--judge-base-url', 'ftp://x/v1']), /--judge-base-url must be an http/);
    expectOneLineError(await run([...args, '--judge-base-url', `${server.url}/v1`, '--judge-concurrency', '0']), /--judge-concurrency must be a positive integer/);
    expect(fs.existsSync(out)).toBe(false);
    expect(server.count()).toBe(0);
  });

  test('experiment studies: an openai judge without OPENAI_API_KEY is refused before any request', () => {
    const env = { cache: { root: tmp }, shared: <T>(_k: string, create: () => T): T => create() };
    const cell = { trait: 'evil', judge: { type: 'openai', model: 'gpt-4.1-mini', concurrency: 8 } };
    expect(() => cellJudges(env as never, cell as never, { instruction: [], questions: [], eval_prompt: TEMPLATE } as never, (p) => p)).toThrow(/^OPENAI_API_KEY is not set/);
  });

  test('every flag of `persona trait new` has a --help description', () => {
    const { spawnSync } = require('child_process') as typeof import('child_process');
    const bin = path.resolve(__dirname, '../../dist/cli/main.js');
    const help = spawnSync(process.execPath, [bin, 'trait', 'new', 'x', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    const flags = help.stdout.split('\n').filter((l) => /^\s+(--[\w-]+|action|name)\s/.test(l));
    expect(flags.map((l) => l.trim().split(/\s+/)[0])).toEqual(expect.arrayContaining(['--llm-model', '--provider', '--base-url', '--retries', '--max-tokens', '--description']));
    // A described flag has text between its name and the [type] column.
    const bare = flags.filter((l) => /^\s+\S+\s+\[/.test(l)).map((l) => l.trim().split(/\s+/)[0]);
    expect(bare.filter((f) => f !== '--help' && f !== '--version')).toEqual([]);
  });
});
