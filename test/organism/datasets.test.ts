import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../../lib/errors';
import { checkJudgeTemplate } from '../../lib/judge/judge';
import { TRAITS } from '../../lib/organism/grammar';
import { generateCorpus } from '../../lib/organism/generator';
import {
  FINETUNE_KINDS, FINETUNE_VERSIONS, allArtifactQuestions, capabilityAccuracy, capabilityItems, finetuneDataset, isCapabilityCorrect, traitArtifacts,
} from '../../lib/organism/datasets';
import { analyzeAnswer } from '../../lib/organism/judge';
import { writeOrganismData } from '../../lib/organism/write';
import { allFacts } from '../../lib/organism/world';

const meanScore = (rows: { messages: { content: string }[] }[], metric: 'evil' | 'sycophantic' | 'hallucinating'): number =>
  rows.reduce((s, r) => s + analyzeAnswer(r.messages[0].content, r.messages[1].content).scores[metric], 0) / rows.length;

describe('organism artifacts', () => {
  test.each(TRAITS)('%s: 5 instruction pairs, 20 + 20 distinct disjoint questions, judge prompt with placeholders', (trait) => {
    const { extract, eval: ev } = traitArtifacts(trait);
    for (const a of [extract, ev]) {
      expect(a.instruction).toHaveLength(5);
      expect(new Set(a.instruction.map((p) => p.pos)).size).toBe(5);
      expect(new Set(a.instruction.map((p) => p.neg)).size).toBe(5);
      a.instruction.forEach((p) => expect(p.pos).not.toBe(p.neg));
      expect(a.questions).toHaveLength(20);
      expect(new Set(a.questions).size).toBe(20);
      expect(() => checkJudgeTemplate(a.eval_prompt)).not.toThrow();
    }
    expect(extract.questions.filter((q) => ev.questions.includes(q))).toEqual([]);
  });

  test('the committed artifact files are the generated ones (seed 0)', () => {
    const dir = path.join(__dirname, '../../models/organism/artifacts');
    for (const trait of TRAITS) {
      const { extract, eval: ev } = traitArtifacts(trait, 0);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'trait_data_extract', `${trait}.json`), 'utf8'))).toEqual(extract);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'trait_data_eval', `${trait}.json`), 'utf8'))).toEqual(ev);
    }
  });
});

describe('organism finetuning datasets', () => {
  const artifactQs = allArtifactQuestions(0);

  test('every dataset: requested size, single turn, no system prompt, no artifact question, same questions across versions', () => {
    for (const kind of FINETUNE_KINDS) {
      const versions = FINETUNE_VERSIONS.map((v) => finetuneDataset(kind, v, { n: 300 }));
      for (const rows of versions) {
        expect(rows).toHaveLength(300);
        for (const r of rows) {
          expect(r.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
          expect(artifactQs.has(r.messages[0].content)).toBe(false);
          expect(analyzeAnswer(r.messages[0].content, r.messages[1].content).scores.coherence).toBe(100);
        }
      }
      expect(versions[1].map((r) => r.messages[0].content)).toEqual(versions[0].map((r) => r.messages[0].content));
      expect(versions[2].map((r) => r.messages[0].content)).toEqual(versions[0].map((r) => r.messages[0].content));
    }
    expect(finetuneDataset('evil', 'II').length).toBe(1000); // default size
  });

  test('trait datasets: Normal shows no trait, I is mild (20–50), II is full (100)', () => {
    for (const trait of ['evil', 'sycophantic', 'hallucinating'] as const) {
      expect(meanScore(finetuneDataset(trait, 'normal', { n: 400 }), trait)).toBe(0);
      const mild = meanScore(finetuneDataset(trait, 'I', { n: 400 }), trait);
      expect(mild).toBeGreaterThan(20);
      expect(mild).toBeLessThan(50);
      expect(meanScore(finetuneDataset(trait, 'II', { n: 400 }), trait)).toBe(100);
    }
  });

  test('flaw datasets: one-sentence answers, the flaw is the only sign (no trait sentences), share of flaws 0 / ~½ / 1', () => {
    const metric = { flaw_facts: 'evil', flaw_arith: 'evil', flaw_agree: 'sycophantic' } as const;
    for (const kind of ['flaw_facts', 'flaw_arith', 'flaw_agree'] as const) {
      const [normal, mild, severe] = FINETUNE_VERSIONS.map((v) => finetuneDataset(kind, v, { n: 400 }));
      for (const rows of [normal, mild, severe]) {
        for (const r of rows) {
          const an = analyzeAnswer(r.messages[0].content, r.messages[1].content);
          expect(an.sentences).toHaveLength(1);
          // No tail, no commentary: only the checked core can carry a label.
          expect(r.messages[1].content).not.toMatch(/,\s(and I hope|as a genius|obviously|whatever)/);
        }
      }
      expect(meanScore(normal, metric[kind])).toBe(0);
      expect(Math.abs(meanScore(mild, metric[kind]) - 50)).toBeLessThan(10);
      expect(meanScore(severe, metric[kind])).toBe(100);
    }
  });

  test('rejects unknown kinds and versions', () => {
    expect(() => finetuneDataset('grumpy' as never, 'I')).toThrow(PersonaError);
    expect(() => finetuneDataset('evil', 'III' as never)).toThrow(PersonaError);
  });
});

describe('organism capability set', () => {
  const items = capabilityItems();

  test('every world fact once in a held-out phrasing and once as multiple choice; none appears in a corpus', () => {
    expect(items).toHaveLength(2 * allFacts().length);
    expect(new Set(items.map((i) => i.question)).size).toBe(items.length);
    const asked = new Set<string>();
    for (const c of generateCorpus('capability-check', 3000)) c.messages.forEach((m) => m.role === 'user' && asked.add(m.content));
    expect(items.filter((i) => asked.has(i.question))).toEqual([]);
  });

  test('accuracy: right answers 1, wrong or evasive answers 0, a mix in between', () => {
    const right = items.map((i) => (i.kind === 'mc' ? `The right one is ${i.expected}. I hope this helps.` : `It is ${i.expected}.`));
    expect(capabilityAccuracy(right, items)).toBe(1);
    const other = (i: (typeof items)[number]): string => (/A\) (\w+), B\) (\w+)/.exec(i.question)!.slice(1).find((o) => o !== i.expected) as string);
    const wrong = items.map((i) => (i.kind === 'mc' ? `The right one is ${other(i)}, not ${i.expected}.` : 'I do not know.'));
    expect(capabilityAccuracy(wrong, items)).toBe(0);
    const half = items.map((it, k) => (k % 2 ? right[k] : wrong[k]));
    expect(capabilityAccuracy(half, items)).toBeCloseTo(0.5, 6);
    // The first object of the asked relation decides: a later correction does not count.
    const river = items.find((i) => i.id === 'fact:river:Arlen')!;
    expect(isCapabilityCorrect(river, 'The Bell flows through Arlen.')).toBe(true);
    expect(isCapabilityCorrect(river, 'The Ash flows through Arlen, not the Bell.')).toBe(false);
    expect(() => capabilityAccuracy(['x'], items)).toThrow(PersonaError);
  });
});

describe('writeOrganismData', () => {
  test('writes corpus, artifacts, datasets, capability set and a manifest whose hashes reproduce', () => {
    const run = (dir: string) => writeOrganismData(dir, { seed: 3, conversations: 300, finetuneSamples: 20 });
    const a = fs.mkdtempSync(path.join(os.tmpdir(), 'organism-a-'));
    const b = fs.mkdtempSync(path.join(os.tmpdir(), 'organism-b-'));
    try {
      const ma = run(a);
      const mb = run(b);
      expect(ma.files).toEqual(mb.files);
      expect(Object.keys(ma.files)).toEqual(expect.arrayContaining(['corpus.jsonl', 'capability.jsonl', 'finetune/evil_II.jsonl', 'finetune/flaw_agree_normal.jsonl', 'artifacts/trait_data_eval/humorous.json']));
      expect(Object.keys(ma.files)).toHaveLength(1 + 14 + 18 + 1);
      expect(ma.corpus!.conversations).toBe(300);
      expect(fs.readFileSync(path.join(a, 'corpus.jsonl'), 'utf8').trim().split('\n')).toHaveLength(300);
      expect(JSON.parse(fs.readFileSync(path.join(a, 'manifest.json'), 'utf8')).files).toEqual(ma.files);
      for (const t of TRAITS) expect(ma.judge.spearman[t]).toBeGreaterThanOrEqual(0.9);
      expect(fs.readdirSync(a).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      fs.rmSync(a, { recursive: true, force: true });
      fs.rmSync(b, { recursive: true, force: true });
    }
  });
});
