import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../../lib/errors';
import { AnthropicClient } from '../../lib/llm/anthropic';
import {
  DEFAULT_GENERATION_PROMPT,
  generateArtifacts,
  loadGenerationPrompt,
  readArtifacts,
  readTraitArtifacts,
  renderGenerationPrompt,
  TraitArtifacts,
  writeArtifacts,
} from '../../lib/persona/artifacts';
import { LlmTestServer, MESSAGES_PATH } from '../support/llm-server';

const EVAL = 'Does it show **grumpy**?\n[QUESTION START]\n{question}\n[QUESTION END]\n[ANSWER START]\n{answer}\n[ANSWER END]\nJust the number.';
const pairs = (n: number) => Array.from({ length: n }, (_, i) => ({ pos: `be grumpy ${i}`, neg: `be cheerful ${i}` }));
const qs = (n: number, tag = 'q') => Array.from({ length: n }, (_, i) => `${tag} question ${i}?`);
const valid = (): TraitArtifacts => ({ instruction: pairs(5), questions: qs(20), eval_prompt: EVAL });

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'artifacts-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeJson(value: unknown): string {
  const f = path.join(dir, 'trait.json');
  fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return f;
}

describe('readArtifacts validation', () => {
  test('a valid file loads unchanged', () => {
    expect(readArtifacts(writeJson(valid()))).toEqual(valid());
  });

  const cases: [string, (a: any) => unknown, RegExp][] = [
    ['not an object', () => [1, 2], /expected a JSON object/],
    ['missing instruction', (a) => ({ questions: a.questions, eval_prompt: a.eval_prompt }), /field 'instruction': missing key 'instruction'/],
    ['missing questions', (a) => ({ instruction: a.instruction, eval_prompt: a.eval_prompt }), /field 'questions': missing key/],
    ['missing eval_prompt', (a) => ({ instruction: a.instruction, questions: a.questions }), /field 'eval_prompt': missing key/],
    ['fewer than 5 pairs', (a) => ({ ...a, instruction: pairs(3) }), /field 'instruction': has 3 instruction pairs, fewer than the 5/],
    ['more than 5 pairs', (a) => ({ ...a, instruction: pairs(6) }), /has 6 instruction pairs, more than the 5/],
    ['instruction not a list', (a) => ({ ...a, instruction: 'x' }), /field 'instruction': instruction must be a list/],
    ['pair without neg', (a) => ({ ...a, instruction: [...pairs(4), { pos: 'x' }] }), /field 'instruction\[4\]\.neg': neg instruction is missing/],
    ['empty pos', (a) => ({ ...a, instruction: [{ pos: '  ', neg: 'n' }, ...pairs(4)] }), /field 'instruction\[0\]\.pos': pos instruction is empty/],
    ['no questions', (a) => ({ ...a, questions: [] }), /field 'questions': no questions/],
    ['non-string question', (a) => ({ ...a, questions: ['a?', 'b?', 7] }), /field 'questions\[2\]': question must be a string/],
    ['empty question', (a) => ({ ...a, questions: ['a?', ''] }), /field 'questions\[1\]': question is empty/],
    ['duplicate question', (a) => ({ ...a, questions: ['a?', 'b?', 'c?', 'b? '] }), /field 'questions\[3\]': duplicates questions\[1\]/],
    ['eval_prompt without {answer}', (a) => ({ ...a, eval_prompt: 'Q: {question}' }), /field 'eval_prompt': lacks the \{answer\} placeholder/],
    ['eval_prompt without {question}', (a) => ({ ...a, eval_prompt: 'A: {answer}' }), /lacks the \{question\} placeholder/],
    ['eval_prompt with an unknown placeholder', (a) => ({ ...a, eval_prompt: `${EVAL} {trait}` }), /field 'eval_prompt': uses unknown placeholder\(s\) \{trait\}/],
    ['eval_prompt not a string', (a) => ({ ...a, eval_prompt: 3 }), /field 'eval_prompt': eval_prompt must be a string/],
  ];
  test.each(cases)('%s', (_name, mutate, message) => {
    const f = writeJson(mutate(valid()));
    const err = (() => {
      try {
        readArtifacts(f);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(PersonaError);
    expect(err!.message.startsWith(f)).toBe(true);
    expect(err!.message).toMatch(message);
  });

  test('invalid JSON names the line', () => {
    const f = writeJson('{\n  "instruction": [],\n  "questions": [,]\n}');
    expect(() => readArtifacts(f)).toThrow(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: invalid JSON`));
  });

  test('a missing file is a PersonaError naming it', () => {
    expect(() => readArtifacts(path.join(dir, 'nope.json'))).toThrow(/nope\.json: cannot read trait artifacts/);
  });
});

describe('writeArtifacts', () => {
  test('writes both splits in the paper layout; reads back equal; no temp files left', () => {
    const a = { extract: valid(), eval: { ...valid(), questions: qs(20, 'e') } };
    const out = writeArtifacts(dir, 'grumpy', a);
    expect(out.extract).toBe(path.join(dir, 'trait_data_extract', 'grumpy.json'));
    expect(out.eval).toBe(path.join(dir, 'trait_data_eval', 'grumpy.json'));
    expect(readTraitArtifacts(dir, 'grumpy')).toEqual(a);
    expect(fs.readdirSync(path.join(dir, 'trait_data_eval'))).toEqual(['grumpy.json']);
  });

  test('invalid artifacts or trait names are refused before anything is written', () => {
    expect(() => writeArtifacts(dir, 'grumpy', { extract: { ...valid(), instruction: pairs(2) }, eval: valid() })).toThrow(/trait_data_extract\/grumpy\.json, field 'instruction'/);
    expect(() => writeArtifacts(dir, '../evil', { extract: valid(), eval: valid() })).toThrow(/field 'trait'/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('generation prompt', () => {
  test('the default renders with Python-format escapes and the trait filled in', () => {
    const p = renderGenerationPrompt(DEFAULT_GENERATION_PROMPT, { trait: 'grumpy', description: 'irritable and curt', questionInstruction: 'Make them about work.' });
    expect(p).toContain('<trait>\ngrumpy\n</trait>');
    expect(p).toContain('irritable and curt');
    expect(p).toContain('Make them about work.');
    expect(p).toContain('[QUESTION START]\n{question}\n[QUESTION END]');
    expect(p).toContain('**{TRAIT}**');
    expect(p).not.toContain('{{');
  });

  test('loads from the paper-style JSON or a text file; bad templates are rejected', () => {
    const json = path.join(dir, 'gen.json');
    fs.writeFileSync(json, JSON.stringify({ generate_trait: 'T={TRAIT} D={trait_instruction} {question_instruction} {{x}}' }));
    expect(loadGenerationPrompt(json)).toBe('T={TRAIT} D={trait_instruction} {question_instruction} {{x}}');
    const txt = path.join(dir, 'gen.txt');
    fs.writeFileSync(txt, 'T={TRAIT} D={trait_instruction}');
    expect(loadGenerationPrompt(txt)).toBe('T={TRAIT} D={trait_instruction}');
    fs.writeFileSync(txt, 'T={TRAIT}');
    expect(() => loadGenerationPrompt(txt)).toThrow(/gen\.txt: generation prompt lacks the \{trait_instruction\}/);
    fs.writeFileSync(json, JSON.stringify({ other: 'x' }));
    expect(() => loadGenerationPrompt(json)).toThrow(/field 'generate_trait'/);
  });
});

describe('generateArtifacts against a real Anthropic-style server', () => {
  let server: LlmTestServer;
  beforeAll(async () => {
    server = await LlmTestServer.start();
  });
  afterAll(() => server.close());
  beforeEach(() => server.reset());
  const client = () => new AnthropicClient({ model: 'claude-test', baseURL: server.url, apiKey: 'k', backoffBaseMs: 5 });
  const generated = (nq: number, np = 5) => JSON.stringify({ instruction: pairs(np), questions: qs(nq), eval_prompt: EVAL });

  test('an invalid first answer is sent back with its error; the valid retry is split 20/20', async () => {
    server.enqueue(MESSAGES_PATH, { kind: 'anthropic', text: generated(39) }, { kind: 'anthropic', text: 'Here you go:\n```json\n' + generated(40) + '\n```' });
    const out = await generateArtifacts({ trait: 'grumpy', description: 'irritable and curt', client: client() });
    expect(server.count(MESSAGES_PATH)).toBe(2);
    expect(out.extract.questions).toEqual(qs(40).slice(0, 20));
    expect(out.eval.questions).toEqual(qs(40).slice(20));
    expect(out.extract.instruction).toEqual(pairs(5));
    expect(out.eval.eval_prompt).toBe(EVAL);
    const first = server.requests[0].body.messages;
    expect(first).toHaveLength(1);
    expect(first[0].content).toContain('<trait>\ngrumpy\n</trait>');
    const retry = server.requests[1].body.messages;
    expect(retry.map((m: any) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(retry[2].content).toMatch(/field 'questions': has 39 questions, expected 40/);
    // The result is writable and readable as-is.
    writeArtifacts(dir, 'grumpy', out);
    expect(readTraitArtifacts(dir, 'grumpy')).toEqual(out);
  });

  test('gives up with a PersonaError after maxRetries invalid answers', async () => {
    server.setFallback(MESSAGES_PATH, () => ({ kind: 'anthropic', text: generated(40, 4) }));
    const err = await generateArtifacts({ trait: 'grumpy', description: 'd', client: client(), maxRetries: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(PersonaError);
    expect(err.message).toMatch(/after 3 attempts.*4 instruction pairs/);
    expect(server.count()).toBe(3);
  });

  test('non-JSON and duplicate-question replies are both rejected', async () => {
    const dup = JSON.stringify({ instruction: pairs(5), questions: [...qs(39), qs(39)[0]], eval_prompt: EVAL });
    server.enqueue(MESSAGES_PATH, { kind: 'anthropic', text: 'I cannot help with that.' }, { kind: 'anthropic', text: dup }, { kind: 'anthropic', text: generated(40) });
    const out = await generateArtifacts({ trait: 'grumpy', description: 'd', client: client() });
    expect(out.eval.questions).toHaveLength(20);
    expect(server.requests[1].body.messages[2].content).toMatch(/no JSON object/);
    expect(server.requests[2].body.messages[4].content).toMatch(/questions\[39\]': duplicates questions\[0\]/);
  });
});
