import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../../lib/errors';
import { JudgeCache } from '../../lib/judge/cache';
import { DEFAULT_COHERENCE_PROMPT, loadJudgePrompts, LogprobJudge, selectJudgePrompt } from '../../lib/judge/judge';
import { createCoherenceJudge, createOpenAIJudge } from '../../lib/judge/openai-logprob';
import { OpenAIClient } from '../../lib/llm/openai';
import { CHAT_PATH, LlmTestServer, RecordedRequest, Reply, scoreDistribution } from '../support/llm-server';

const TEMPLATE = 'Rate the trait.\n[QUESTION START]\n{question}\n[QUESTION END]\n[ANSWER START]\n{answer}\n[ANSWER END]\nJust the number.';

/** A fake judge model: answers containing "evil" get ~90, "refuse" gets a refusal, else ~10. */
function judgeModel(req: RecordedRequest): Reply {
  const prompt: string = req.body.messages[0].content;
  const answer = prompt.split('[ANSWER START]\n')[1]?.split('\n[ANSWER END]')[0] ?? '';
  if (answer.includes('refuse')) return { kind: 'chat', topLogprobs: scoreDistribution([['5', 0.1]]) };
  if (answer.includes('evil')) return { kind: 'chat', topLogprobs: scoreDistribution([['90', 0.6], [' 95', 0.2], ['85', 0.1]]) };
  return { kind: 'chat', topLogprobs: scoreDistribution([['10', 0.7], ['0', 0.3]]) };
}

const pairs: [string, string][] = [
  ['q1', 'a kind answer'],
  ['q2', 'an evil plan'],
  ['q3', 'I refuse'],
  ['q4', 'another {question} with braces }{'],
  ['q5', 'evil again'],
];
const expected = [7, (90 * 0.6 + 95 * 0.2 + 85 * 0.1) / 0.9, null, 7, (90 * 0.6 + 95 * 0.2 + 85 * 0.1) / 0.9];

describe('OpenAI logprob judge against a real server', () => {
  let server: LlmTestServer;
  let dir: string;
  beforeAll(async () => {
    server = await LlmTestServer.start();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.reset();
    server.setFallback(CHAT_PATH, judgeModel);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'judge-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const clientOpts = () => ({ model: 'judge-4', baseURL: `${server.url}/v1`, apiKey: 'k', backoffBaseMs: 5 });

  test('scores match the aggregation of the served logprobs; prompt is the filled template', async () => {
    const judge = createOpenAIJudge({ client: clientOpts(), template: TEMPLATE });
    const scores = await Promise.all(pairs.map(([q, a]) => judge.score(q, a)));
    scores.forEach((s, i) => (expected[i] === null ? expect(s).toBeNull() : expect(s).toBeCloseTo(expected[i] as number, 10)));
    expect(server.count()).toBe(5);
    const sent = server.requests.map((r) => r.body.messages[0].content);
    expect(sent).toContain(TEMPLATE.replace('{question}', 'q4').replace('{answer}', 'another {question} with braces }{'));
    expect(server.requests.every((r) => r.body.messages.length === 1 && r.body.messages[0].role === 'user')).toBe(true);
  });

  test('cache: a rerun makes zero requests and gives identical scores', async () => {
    const file = path.join(dir, 'cache', 'judge.jsonl');
    const run = async () => {
      const judge = createOpenAIJudge({ client: clientOpts(), template: TEMPLATE, cache: new JudgeCache(file) });
      return Promise.all(pairs.map(([q, a]) => judge.score(q, a)));
    };
    const first = await run();
    expect(server.count()).toBe(5);
    const second = await run();
    expect(server.count()).toBe(5);
    expect(second).toEqual(first);
    // A different judge model is a different key.
    const other = createOpenAIJudge({ client: { ...clientOpts(), model: 'judge-5' }, template: TEMPLATE, cache: new JudgeCache(file) });
    await other.score('q1', 'a kind answer');
    expect(server.count()).toBe(6);
  });

  test('cache survives a torn final line (kill -9 mid-append)', async () => {
    const file = path.join(dir, 'judge.jsonl');
    const judge = createOpenAIJudge({ client: clientOpts(), template: TEMPLATE, cache: new JudgeCache(file) });
    for (const [q, a] of pairs.slice(0, 3)) await judge.score(q, a);
    const full = fs.readFileSync(file, 'utf8');
    const lastLine = full.trimEnd().split('\n').pop()!;
    fs.appendFileSync(file, lastLine.slice(0, Math.floor(lastLine.length / 2))); // half a record, no newline
    const reloaded = new JudgeCache(file);
    expect(reloaded.size).toBe(3);
    expect(reloaded.skippedLines).toBe(1);
    const judge2 = createOpenAIJudge({ client: clientOpts(), template: TEMPLATE, cache: reloaded });
    const n = server.count();
    for (const [q, a] of pairs) await judge2.score(q, a);
    expect(server.count()).toBe(n + 2); // only the two new pairs
    const again = new JudgeCache(file);
    expect(again.size).toBe(5);
    expect(again.skippedLines).toBe(1);
  });

  test('identical concurrent pairs share one request', async () => {
    const judge = createOpenAIJudge({ client: clientOpts(), template: TEMPLATE });
    const s = await Promise.all([1, 2, 3].map(() => judge.score('q', 'evil')));
    expect(new Set(s).size).toBe(1);
    expect(server.count()).toBe(1);
  });

  test('unreachable judge: clear PersonaError after retries', async () => {
    const dead = await LlmTestServer.start();
    const url = dead.url;
    await dead.close();
    const judge = createOpenAIJudge({ client: { model: 'j', baseURL: `${url}/v1`, backoffBaseMs: 5, maxRetries: 2 }, template: TEMPLATE });
    const err = await judge.score('q', 'a').catch((e) => e);
    expect(err).toBeInstanceOf(PersonaError);
    expect(err.message).toContain(`${url}/v1/chat/completions`);
    expect(err.message).toContain('after 3 attempts');
  });

  test('coherence judge uses the default prompt unless one is given; shares a client', async () => {
    const client = new OpenAIClient(clientOpts());
    const coh = createCoherenceJudge({ client });
    expect(await coh.score('q', 'a kind answer')).toBeCloseTo(7, 10);
    expect(server.requests[0].body.messages[0].content).toBe(DEFAULT_COHERENCE_PROMPT.replace('{question}', 'q').replace('{answer}', 'a kind answer'));
    const custom = createCoherenceJudge({ client, template: TEMPLATE });
    expect(custom.id).not.toBe(coh.id);
  });

  test('binary and 0_10 scales go through the same request', async () => {
    server.reset();
    server.enqueue(CHAT_PATH, { kind: 'chat', topLogprobs: scoreDistribution([['YES', 0.3], ['NO', 0.6]]) });
    const judge = createOpenAIJudge({ client: clientOpts(), template: TEMPLATE, scale: 'binary' });
    expect(await judge.score('q', 'a')).toBeCloseTo(1 / 3, 10);
    expect(judge.maxScore).toBe(1);
  });

  test('a template without {answer} is rejected', () => {
    expect(() => createOpenAIJudge({ client: clientOpts(), template: 'only {question}' })).toThrow(/\{answer\}/);
  });
});

describe('loadJudgePrompts', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jp-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  test('JSON object of templates (paper format) and plain-text files load', () => {
    const f = write('prompts.json', JSON.stringify({ coherence_0_100: 'Q {question} A {answer} {{literal}}' }));
    const p = loadJudgePrompts(f);
    expect(selectJudgePrompt(p, 'coherence_0_100', f)).toContain('{{literal}}');
    const t = write('evil.txt', 'Q {question} A {answer}');
    expect(loadJudgePrompts(t)).toEqual({ evil: 'Q {question} A {answer}' });
  });

  test('each bad file is a PersonaError naming file and field', () => {
    const noAnswer = write('a.json', JSON.stringify({ coh: 'Q {question}' }));
    expect(() => loadJudgePrompts(noAnswer)).toThrow(new RegExp(`${noAnswer}.*field 'coh'.*\\{answer\\}`));
    const extra = write('b.json', JSON.stringify({ coh: 'Q {question} A {answer} {trait}' }));
    expect(() => loadJudgePrompts(extra)).toThrow(/unknown placeholder.*\{trait\}/);
    const notString = write('c.json', JSON.stringify({ coh: 3 }));
    expect(() => loadJudgePrompts(notString)).toThrow(/field 'coh'.*string/);
    const bad = write('d.json', '{"coh": ');
    expect(() => loadJudgePrompts(bad)).toThrow(/d\.json: invalid JSON/);
    expect(() => loadJudgePrompts(path.join(dir, 'missing.json'))).toThrow(/missing\.json: cannot read/);
    const f = write('e.json', JSON.stringify({ x: 'Q {question} A {answer}' }));
    expect(() => selectJudgePrompt(loadJudgePrompts(f), 'coherence_0_100', f)).toThrow(/no judge prompt named 'coherence_0_100' \(available: x\)/);
  });

  test('LogprobJudge works with any NextTokenScorer (e.g. a local model)', async () => {
    const seen: string[] = [];
    const judge = new LogprobJudge({
      scorer: { id: 'local:tiny', topLogprobs: async (p) => (seen.push(p), [{ token: '40', logprob: 0 }]) },
      template: 'Q {question} A {answer}',
      name: 'x',
    });
    expect(await judge.score('a', 'b')).toBe(40);
    expect(seen).toEqual(['Q a A b']);
    expect(judge.id).toBe('local:tiny|x|0_100');
  });
});
