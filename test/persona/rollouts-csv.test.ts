import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../../lib/errors';
import { readRolloutsCsv, RolloutRow, writeRolloutsCsv } from '../../lib/persona/rollouts-csv';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rollouts-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (text: string) => {
  const f = path.join(dir, 'r.csv');
  fs.writeFileSync(f, text);
  return f;
};

const rows: RolloutRow[] = [
  { question: 'Q1, with comma?', prompt: '<|im_start|>system\nBe evil.<|im_end|>\n', answer: 'He said "no".\nThen left.', question_id: 'evil_0_pos_0', score: 99.55342435547549, coherence: 90.1 },
  { question: 'Q2', prompt: 'p', answer: '', question_id: 'evil_1_pos_0', score: null, coherence: 0.001131085094853817 },
];

describe('rollouts CSV (paper columns)', () => {
  test('write → read round trip, null ↔ empty cell, header in paper order', () => {
    const f = path.join(dir, 'out.csv');
    writeRolloutsCsv(f, 'evil', rows);
    expect(fs.readFileSync(f, 'utf8').split('\n')[0]).toBe('question,prompt,answer,question_id,evil,coherence');
    expect(readRolloutsCsv(f, 'evil')).toEqual({ trait: 'evil', rows });
    expect(readRolloutsCsv(f).trait).toBe('evil');
  });

  test('reads a pandas-style file by hand: quoted multi-line cells, empty and nan scores', () => {
    const f = write('question,prompt,answer,question_id,evil,coherence\nq,"a\nb","x ""y""",id0,12.5,\nq2,p,a,id1,nan,80\n');
    expect(readRolloutsCsv(f).rows).toEqual([
      { question: 'q', prompt: 'a\nb', answer: 'x "y"', question_id: 'id0', score: 12.5, coherence: null },
      { question: 'q2', prompt: 'p', answer: 'a', question_id: 'id1', score: null, coherence: 80 },
    ]);
  });

  test('a missing column is a PersonaError naming it', () => {
    const f = write('question,prompt,answer,evil,coherence\nq,p,a,1,2\n');
    expect(() => readRolloutsCsv(f)).toThrow(/r\.csv:1, field 'question_id': missing column 'question_id'/);
    const g = write('question,prompt,answer,question_id,evil,coherence\nq,p,a,i,1,2\n');
    expect(() => readRolloutsCsv(g, 'humorous')).toThrow(/missing column 'humorous'/);
    const h = write('question,prompt,answer,question_id,coherence\nq,p,a,i,2\n');
    expect(() => readRolloutsCsv(h)).toThrow(/cannot tell the trait column.*found none/);
  });

  test('a non-numeric score names file, starting line of the record, and column', () => {
    const f = write('question,prompt,answer,question_id,evil,coherence\nq,"multi\nline",a,i,1,2\nq,p,a,i,high,2\n');
    expect(() => readRolloutsCsv(f)).toThrow(/r\.csv:4, field 'evil': score "high" is not a number/);
  });

  test('a ragged row is a PersonaError with a line', () => {
    const f = write('question,prompt,answer,question_id,evil,coherence\nq,p,a,i,1\n');
    const err = (() => { try { readRolloutsCsv(f); } catch (e) { return e as PersonaError; } })();
    expect(err).toBeInstanceOf(PersonaError);
    expect(err!.message).toMatch(/r\.csv:2: invalid CSV/);
  });

  test('a trait name that collides with a fixed column is refused', () => {
    expect(() => writeRolloutsCsv(path.join(dir, 'x.csv'), 'answer', rows)).toThrow(PersonaError);
  });
});
