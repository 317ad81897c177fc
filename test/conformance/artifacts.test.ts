import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fillJudgePrompt } from '../../lib/judge/judge';
import { INSTRUCTION_PAIRS, readArtifacts, readTraitArtifacts, writeArtifacts } from '../../lib/persona/artifacts';

const PAPER = path.resolve(__dirname, '../../../shared/paper-data');
const traits = fs.readdirSync(path.join(PAPER, 'trait_data_extract')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();

describe('the paper\'s trait_data_* files validate', () => {
  test('all seven traits are present in both splits', () => {
    expect(traits).toEqual(['apathetic', 'evil', 'hallucinating', 'humorous', 'impolite', 'optimistic', 'sycophantic']);
    expect(fs.readdirSync(path.join(PAPER, 'trait_data_eval')).sort()).toEqual(traits.map((t) => `${t}.json`));
  });

  test.each(traits)('%s: 5 pairs, 20+20 disjoint questions, shared eval prompt usable by the judge', (trait) => {
    const { extract, eval: ev } = readTraitArtifacts(PAPER, trait);
    for (const a of [extract, ev]) {
      expect(a.instruction).toHaveLength(INSTRUCTION_PAIRS);
      expect(a.questions).toHaveLength(20);
    }
    const overlap = extract.questions.filter((q) => ev.questions.includes(q));
    expect(overlap).toEqual([]);
    expect(ev.eval_prompt).toBe(extract.eval_prompt);
    const filled = fillJudgePrompt(ev.eval_prompt, 'QQQ', 'AAA');
    expect(filled).toContain('QQQ');
    expect(filled).toContain('AAA');
    expect(filled).toMatch(/displays the trait: \*\*\w+\*\*/);
  });

  test('write → read round trip of a paper trait is lossless', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paper-art-'));
    try {
      const a = readTraitArtifacts(PAPER, 'evil');
      writeArtifacts(dir, 'evil', a);
      expect(readArtifacts(path.join(dir, 'trait_data_eval', 'evil.json'))).toEqual(a.eval);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'trait_data_extract', 'evil.json'), 'utf8'))).toEqual(
        JSON.parse(fs.readFileSync(path.join(PAPER, 'trait_data_extract', 'evil.json'), 'utf8')),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
