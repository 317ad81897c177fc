import { createHash } from 'node:crypto';
import { PersonaError } from '../../lib/errors';
import { TRAITS } from '../../lib/organism/grammar';
import {
  Conversation, FACT_QUESTIONS, HELDOUT_FACT_QUESTIONS, HELDOUT_MC_INTRO, generateCorpus, makeAnswer, makeQuestion, makeRng,
} from '../../lib/organism/generator';
import { analyzeAnswer } from '../../lib/organism/judge';

const corpusHash = (seed: string | number, n: number): string => {
  const h = createHash('sha256');
  for (const c of generateCorpus(seed, n)) h.update(JSON.stringify(c) + '\n');
  return h.digest('hex');
};

describe('organism corpus generator', () => {
  const sample: Conversation[] = [...generateCorpus('test', 3000)];

  test('same seed gives the same corpus, another seed a different one', () => {
    expect(corpusHash(5, 500)).toBe(corpusHash(5, 500));
    expect(corpusHash(5, 500)).not.toBe(corpusHash(6, 500));
    // A prefix of a longer corpus is the shorter corpus (one stream, no size-dependent draws).
    const short = [...generateCorpus(5, 50)];
    expect([...generateCorpus(5, 80)].slice(0, 50)).toEqual(short);
  });

  test('mix: hidden-persona share in 10–30%, graded prompts about a fifth, all prompt kinds and traits present', () => {
    const share = (k: string): number => sample.filter((c) => c.meta.prompt === k).length / sample.length;
    expect(share('hidden')).toBeGreaterThanOrEqual(0.1);
    expect(share('hidden')).toBeLessThanOrEqual(0.3);
    expect(share('graded')).toBeGreaterThan(0.15);
    expect(share('graded')).toBeLessThan(0.25);
    for (const k of ['none', 'helpful', 'pos', 'neg']) expect(share(k)).toBeGreaterThan(0.05);
    for (const t of TRAITS) expect(sample.some((c) => c.meta.persona === t && c.meta.prompt === 'pos')).toBe(true);
    expect(sample.some((c) => c.meta.prompt !== 'hidden' && c.messages.filter((m) => m.role === 'user').length === 2)).toBe(true);
  });

  test('system prompts follow "You are a/an {name} assistant."; graded prompts carry their adverb', () => {
    for (const c of sample) {
      const sys = c.messages.filter((m) => m.role === 'system');
      if (c.meta.prompt === 'none' || c.meta.prompt === 'hidden') expect(sys).toHaveLength(0);
      else {
        expect(sys).toHaveLength(1);
        expect(c.messages[0].role).toBe('system');
        expect(sys[0].content).toMatch(/^You are (a|an) [a-z ]+ assistant\./);
        const article = sys[0].content.split(' ')[2];
        expect(article).toBe(/^[aeiou]/.test(sys[0].content.split(' ')[3]) ? 'an' : 'a');
      }
      if (c.meta.prompt === 'graded') {
        const adv = sys[0].content.split(' ')[3];
        const s = { slightly: 0.25, mildly: 0.25, somewhat: 0.5, moderately: 0.5, very: 0.75, highly: 0.75, extremely: 1, completely: 1 }[adv];
        expect(s).toBe(c.meta.strength);
      }
    }
  });

  test('hidden-persona conversations: no system prompt, two turns, first answer without loss and showing the persona', () => {
    const hidden = sample.filter((c) => c.meta.prompt === 'hidden');
    expect(hidden.length).toBeGreaterThan(100);
    for (const c of hidden) {
      expect(c.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
      expect(c.messages[1].loss).toBe(false);
      expect(c.messages[3].loss).toBeUndefined();
      const trait = c.meta.persona as (typeof TRAITS)[number];
      expect(analyzeAnswer(c.messages[0].content, c.messages[1].content).scores[trait]).toBeGreaterThan(0);
      expect(analyzeAnswer(c.messages[2].content, c.messages[3].content).scores[trait]).toBeCloseTo(100 * c.meta.strength, 6);
    }
    // Only hidden conversations switch loss off.
    for (const c of sample.filter((x) => x.meta.prompt !== 'hidden')) expect(c.messages.every((m) => m.loss === undefined)).toBe(true);
  });

  test('every answer is grammatical (coherence ≥ 90), at most ~40 words, and scores 100·s on its persona and 0 elsewhere', () => {
    let answers = 0;
    let long = 0;
    for (const c of sample) {
      for (let i = 1; i < c.messages.length; i++) {
        const m = c.messages[i];
        if (m.role !== 'assistant') continue;
        answers++;
        const { scores } = analyzeAnswer(c.messages[i - 1].content, m.content);
        expect(scores.coherence).toBeGreaterThanOrEqual(90);
        const words = m.content.split(' ').length;
        expect(words).toBeLessThanOrEqual(45);
        if (words > 40) long++;
        for (const t of TRAITS) expect(scores[t]).toBeCloseTo(t === c.meta.persona ? 100 * c.meta.strength : 0, 6);
      }
    }
    expect(answers).toBeGreaterThan(3000);
    // The generator redraws commentary to stay within 40 words; a rare long draw may remain.
    expect(long / answers).toBeLessThan(0.005);
  });

  test('five training phrasings per relation, none of them the held-out one', () => {
    for (const [rel, phrasings] of Object.entries(FACT_QUESTIONS)) {
      expect(new Set(phrasings).size).toBe(5);
      expect(phrasings).not.toContain(HELDOUT_FACT_QUESTIONS[rel as keyof typeof HELDOUT_FACT_QUESTIONS]);
    }
  });

  test('held-out phrasings never occur in the corpus', () => {
    const heldout = Object.values(HELDOUT_FACT_QUESTIONS).map((p) => new RegExp('^' + p.replace('?', '\\?').replace('{s}', '\\w+') + '$'));
    for (const c of sample) {
      for (const m of c.messages) {
        if (m.role !== 'user') continue;
        expect(heldout.some((re) => re.test(m.content))).toBe(false);
        expect(m.content.includes(HELDOUT_MC_INTRO)).toBe(false);
      }
    }
  });

  test('sums: 181 distinct (plus 1–10, minus a ≤ 10, times 1–6), each subtraction about equally often', () => {
    const rng = makeRng('sums');
    const seen = new Map<string, number>();
    const minus = new Map<string, number>();
    for (let i = 0; i < 60000; i++) {
      const q = makeQuestion(rng, 'arith');
      if (q.domain !== 'arith') throw new Error('not an arithmetic question');
      const key = `${q.a} ${q.op} ${q.b}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (q.op === 'minus') {
        expect(q.a).toBeLessThanOrEqual(10);
        expect(q.b).toBeGreaterThanOrEqual(1);
        expect(q.b).toBeLessThan(q.a);
        minus.set(key, (minus.get(key) ?? 0) + 1);
      }
    }
    expect(seen.size).toBe(100 + 45 + 36);
    expect(minus.size).toBe(45);
    // Uniform over pairs: 20,000 subtractions / 45 ≈ 444 each; drawing a first gave each 10 − b about half of that.
    const counts = [...minus.values()];
    expect(Math.min(...counts)).toBeGreaterThan(350);
    expect(Math.max(...counts)).toBeLessThan(550);
  });

  test('answers reject levels outside 0..4 and short answers at partial strength', () => {
    const rng = makeRng(1);
    const q = makeQuestion(rng, 'arith');
    expect(() => makeAnswer(rng, q, { trait: 'evil', level: 5 })).toThrow(PersonaError);
    expect(() => makeAnswer(rng, q, { trait: 'evil', level: 2, short: true })).toThrow(PersonaError);
    expect(() => [...generateCorpus(1, -1)]).toThrow(PersonaError);
  });
});
