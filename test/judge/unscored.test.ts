/** A judge that never returns a usable score is an error naming the judge and its reply, not a NaN result. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../cli/main';
import { PersonaError } from '../../lib/errors';
import { requireScores } from '../../lib/judge/judge';
import { createOpenAIJudge } from '../../lib/judge/openai-logprob';
import { readArtifacts } from '../../lib/persona/artifacts';
import { CHAT_PATH, LlmTestServer, Reply, scoreDistribution } from '../support/llm-server';

const TEMPLATE = 'Rate it.\n{question}\n{answer}\nJust the number.';
const ORGANISM = path.join(__dirname, '..', '..', 'models', 'organism');
/** What a judge model that ignores the prompt's format sends: words, no number tokens. */
const WORDS: Reply = { kind: 'chat', topLogprobs: [{ token: 'The', logprob: -0.2 }, { token: 'I', logprob: -1.9 }, { token: 'Sure', logprob: -3 }] };
const SCORED: Reply = { kind: 'chat', topLogprobs: scoreDistribution([['70', 0.9]]) };

let server: LlmTestServer;
let tmp: string;
beforeAll(async () => {
  server = await LlmTestServer.start();
});
afterAll(() => server.close());
beforeEach(() => {
  server.reset();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'unscored-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const client = () => ({ model: 'judge-m', baseURL: `${server.url}/v1`, backoffBaseMs: 5 });
const answers = (n: number) => Array.from({ length: n }, (_, i) => `answer ${i}`);

test('logprobs without number tokens for every answer: one-line error naming the judge and its tokens', async () => {
  server.setFallback(CHAT_PATH, () => WORDS);
  const judge = createOpenAIJudge({ client: client(), template: TEMPLATE, name: 'trait' });
  const settled = await Promise.allSettled(answers(8).map((a) => judge.score('q', a)));
  const errs = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason);
  // Every answer of the batch fails with the same error, so no caller records a null for it.
  expect(errs).toHaveLength(8);
  expect(new Set(errs).size).toBe(1);
  expect(errs[0]).toBeInstanceOf(PersonaError);
  expect(errs[0].message).toContain(judge.id);
  expect(errs[0].message).toMatch(/no usable score for any of its first 8 answers.*"The" \(p=0\.82\).*0_100 scale/);
  expect(errs[0].message.split('\n')).toHaveLength(1);
});

test('refusals after the judge has scored stay nulls, as in the paper; 0 disables the check', async () => {
  server.enqueue(CHAT_PATH, SCORED).setFallback(CHAT_PATH, () => WORDS);
  const judge = createOpenAIJudge({ client: client(), template: TEMPLATE });
  expect(await judge.score('q', 'first')).toBeCloseTo(70, 9);
  const rest = await Promise.all(answers(20).map((a) => judge.score('q', a)));
  expect(rest.every((s) => s === null)).toBe(true);
  const lax = createOpenAIJudge({ client: client(), template: TEMPLATE, failAfterUnscored: 0 });
  expect((await Promise.all(answers(20).map((a) => lax.score('q2', a)))).every((s) => s === null)).toBe(true);
});

test('fewer answers than the limit, or a failed request among them: the nulls come back, nothing hangs', async () => {
  server.setFallback(CHAT_PATH, () => WORDS);
  const judge = createOpenAIJudge({ client: client(), template: TEMPLATE });
  expect(await Promise.all(answers(3).map((a) => judge.score('q', a)))).toEqual([null, null, null]);
  server.reset();
  server.enqueue(CHAT_PATH, WORDS, WORDS, { kind: 'delay', ms: 20, then: { kind: 'status', status: 400 } });
  const other = createOpenAIJudge({ client: client(), template: TEMPLATE });
  const settled = await Promise.allSettled(answers(3).map((a) => other.score('q', a)));
  expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'fulfilled', 'rejected']);
});

test('requireScores: all-null (or NaN) scores are an error naming the judge', () => {
  expect(() => requireScores('judge-x', [null, null, NaN])).toThrow(/judge judge-x gave no usable score for any of 3 answers/);
  expect(() => requireScores('judge-x', [null, 3])).not.toThrow();
  expect(() => requireScores('judge-x', [])).not.toThrow();
});

test('persona eval with a judge that never scores exits 1 with one line instead of printing NaN', async () => {
  server.setFallback(CHAT_PATH, () => WORDS);
  const a = readArtifacts(path.join(ORGANISM, 'artifacts', 'trait_data_eval', 'evil.json'));
  const file = path.join(tmp, 'eval.json');
  fs.writeFileSync(file, JSON.stringify({ ...a, questions: a.questions.slice(0, 1) }));
  const out: string[] = [];
  const err: string[] = [];
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  let code: number;
  try {
    code = await main(['eval', '--model', ORGANISM, '--trait', 'evil', '--artifacts', file, '--out', path.join(tmp, 'out'), '--judge-model', 'judge-m', '--judge-base-url', `${server.url}/v1`, '--samples', '8', '--max-new-tokens', '4', '--backend', 'cpu']);
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
  expect(out.join('')).not.toMatch(/NaN/);
  expect(code).toBe(1);
  const errors = err.join('').split('\n').filter((l) => l.startsWith('persona:'));
  expect(errors).toHaveLength(1);
  // The whole first batch fails together: no row with a missing score is kept for a rerun.
  expect(errors[0]).toMatch(/judging failed after 0 of 8 rows.*judge openai-chat:judge-m:top20\|(trait|coherence)\|0_100 gave no usable score for any of its first 8 answers/);
});
