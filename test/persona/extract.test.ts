/** Extraction formulas on hand-made values: a/an system prompt, the paper's paired filter, mean differences. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Captured } from '../../lib/model/capture';
import { readArtifacts } from '../../lib/persona/artifacts';
import { extractionItems, keptPairs, meanDifference } from '../../lib/persona/extract';
import { assistantSystemPrompt, openResumableCsv } from '../../lib/persona/rollouts';
import { RolloutRow } from '../../lib/persona/rollouts-csv';

const row = (score: number | null, coherence: number | null): RolloutRow => ({ question: 'q', prompt: 'p', answer: 'a', question_id: 'id', score, coherence });

test('system prompt uses a/an by the first letter, as the paper', () => {
  expect(assistantSystemPrompt('evil', 'Be bad.')).toBe('You are an evil assistant. Be bad.');
  expect(assistantSystemPrompt('helpful', 'Be good.')).toBe('You are a helpful assistant. Be good.');
  expect(assistantSystemPrompt('Optimistic', 'x')).toBe('You are an Optimistic assistant. x');
});

test('paired filter: pos ≥ t, neg < 100 − t, both coherence ≥ 50; null keeps nothing', () => {
  const pos = [row(80, 90), row(50, 50), row(49, 90), row(90, 90), row(90, 49), row(null, 90)];
  const neg = [row(10, 90), row(49, 50), row(10, 90), row(50, 90), row(10, 90), row(10, 90)];
  expect(keptPairs(pos, neg, 50)).toEqual([0, 1]);
  expect(keptPairs(pos, neg, 0, 0)).toEqual([0, 1, 2, 3, 4]);
  expect(() => keptPairs(pos, neg.slice(1))).toThrow(/differ in length/);
});

test('mean difference per layer from captured reductions', () => {
  // 4 sequences, 2 layers, hidden 2.
  const v = new Float32Array([1, 2, 3, 4, /**/ 3, 4, 5, 6, /**/ 0, 0, 1, 1, /**/ 2, 2, 1, 3]);
  const c: Captured = { layers: [0, 1], hidden: 2, count: 4, values: { response_mean: v } };
  expect(Array.from(meanDifference(c, 'response_mean', [0, 1], [2, 3]))).toEqual([1, 2, 3, 3]);
  expect(() => meanDifference(c, 'prompt_last', [0], [1])).toThrow(/not captured/);
});

test('items: question-major, aligned pos/neg ids, n samples', () => {
  const a = { instruction: Array.from({ length: 5 }, (_, i) => ({ pos: `p${i}`, neg: `n${i}` })), questions: ['q0', 'q1'], eval_prompt: '{question}{answer}' };
  const pos = extractionItems(a, 'evil', 'pos', 2);
  const neg = extractionItems(a, 'evil', 'neg', 2, 'kind');
  expect(pos).toHaveLength(20);
  expect(pos[2]).toEqual({ question: 'q0', questionId: 'evil_0_pos_1', system: 'You are an evil assistant. p1' });
  expect(neg[2]).toEqual({ question: 'q0', questionId: 'evil_0_neg_1', system: 'You are a kind assistant. n1' });
});

describe('bad input', () => {
  let tmp: string;
  beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-extract-'))));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const good = { instruction: Array.from({ length: 5 }, () => ({ pos: 'a', neg: 'b' })), questions: ['q'], eval_prompt: '{question} {answer}' };
  const write = (name: string, v: unknown) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, JSON.stringify(v));
    return f;
  };
  test('artifact missing a key / fewer than 5 pairs / eval prompt without {answer}', () => {
    expect(() => readArtifacts(write('a.json', { instruction: good.instruction, questions: good.questions }))).toThrow(/a\.json.*field 'eval_prompt'.*missing key/);
    expect(() => readArtifacts(write('b.json', { ...good, instruction: good.instruction.slice(0, 4) }))).toThrow(/b\.json.*4 instruction pairs, fewer than the 5/);
    expect(() => readArtifacts(write('c.json', { ...good, eval_prompt: 'Rate {question}' }))).toThrow(/c\.json.*eval_prompt.*\{answer\}/);
  });
  test('a resumable CSV without the expected columns names the column', () => {
    const f = path.join(tmp, 'bad.csv');
    fs.writeFileSync(f, 'question,prompt,answer,evil,coherence\nq,p,a,1,2\n');
    expect(() => openResumableCsv(f, 'evil')).toThrow(/bad\.csv:1.*missing column 'question_id'/);
  });
  test('a torn last row (crash mid-write) is dropped on resume', () => {
    const f = path.join(tmp, 'torn.csv');
    fs.writeFileSync(f, 'question,prompt,answer,question_id,evil,coherence\nq,p,"two\nlines",id,1,2\nq,p,"cut\nin the');
    expect(openResumableCsv(f, 'evil')).toEqual([{ question: 'q', prompt: 'p', answer: 'two\nlines', question_id: 'id', score: 1, coherence: 2 }]);
    expect(fs.readFileSync(f, 'utf8').endsWith('1,2\n')).toBe(true);
  });
});
