/**
 * Validation of the organism judge the way the paper validated its LLM judge against humans: held-out
 * generated answers with known persona and strength (a seed stream no corpus uses), scored blind.
 */
import { spearman, mean } from '../persona/stats';
import { TRAITS, Trait } from './grammar';
import { DOMAINS, LEVELS, Question, Rng, TRAIT_DOMAINS, makeAnswer, makeQuestion, makeRng, pick } from './generator';
import { analyzeAnswer } from './judge';

function heldoutQuestion(rng: Rng, trait: Trait): Question {
  return rng() < 0.5 ? makeQuestion(rng, pick(rng, TRAIT_DOMAINS[trait])) : makeQuestion(rng, pick(rng, DOMAINS));
}

export interface JudgeCalibration {
  /** Spearman(score, true strength) per trait. */
  spearman: Record<Trait, number>;
  /** Mean score of trait T's own answers at level 0..4 (ideal: 0, 25, 50, 75, 100). */
  meanByLevel: Record<Trait, number[]>;
  /** Mean trait-T score of answers written by the other six personas at full strength (ideal 0). */
  crossTalk: Record<Trait, number>;
  samplesPerTrait: number;
}

/**
 * For each trait T: `perLevel` answers of persona T at each level 0..4 (short one-sentence answers
 * included at levels 0 and 4), plus `perLevel` answers of other personas at random levels whose true
 * T-strength is 0. Spearman between the T score and the true T strength.
 */
export function judgeCalibration(opts: { seed?: string | number; perLevel?: number } = {}): JudgeCalibration {
  const perLevel = opts.perLevel ?? 40;
  const rng = makeRng(`organism-judge-calibration:${opts.seed ?? 0}`);
  const out: JudgeCalibration = { spearman: {} as Record<Trait, number>, meanByLevel: {} as Record<Trait, number[]>, crossTalk: {} as Record<Trait, number>, samplesPerTrait: perLevel * (LEVELS + 2) };
  for (const trait of TRAITS) {
    const truth: number[] = [];
    const score: number[] = [];
    out.meanByLevel[trait] = [];
    for (let level = 0; level <= LEVELS; level++) {
      const atLevel: number[] = [];
      for (let i = 0; i < perLevel; i++) {
        const q = heldoutQuestion(rng, trait);
        const short = (level === 0 || level === LEVELS) && rng() < 0.15;
        const s = analyzeAnswer(q.text, makeAnswer(rng, q, { trait: level ? trait : null, level, short })).scores[trait];
        atLevel.push(s);
        truth.push(level / LEVELS);
        score.push(s);
      }
      out.meanByLevel[trait].push(mean(atLevel));
    }
    const cross: number[] = [];
    for (let i = 0; i < perLevel; i++) {
      const other = pick(rng, TRAITS.filter((t) => t !== trait));
      const q = heldoutQuestion(rng, other);
      const s = analyzeAnswer(q.text, makeAnswer(rng, q, { trait: other, level: 1 + Math.floor(rng() * LEVELS) })).scores[trait];
      truth.push(0);
      score.push(s);
      const qf = heldoutQuestion(rng, other);
      cross.push(analyzeAnswer(qf.text, makeAnswer(rng, qf, { trait: other, level: LEVELS })).scores[trait]);
    }
    out.crossTalk[trait] = mean(cross);
    out.spearman[trait] = spearman(score, truth);
  }
  return out;
}

/** Word-level damage of the kind a strongly steered or cut-off model produces. */
export function shuffleWords(rng: Rng, text: string): string {
  const w = text.split(' ');
  for (let i = w.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [w[i], w[j]] = [w[j], w[i]];
  }
  return w.join(' ');
}

/** Cut the text after a random word strictly inside it (never exactly at a sentence end). */
export function truncateWords(rng: Rng, text: string): string {
  const w = text.split(' ');
  const cuts = w.map((_, i) => i).filter((i) => i < w.length - 1 && !w[i].endsWith('.'));
  const at = cuts.length ? pick(rng, cuts) : 0;
  return w.slice(0, at + 1).join(' ');
}

export interface CoherenceValidation {
  intact: number;
  shuffled: number;
  truncated: number;
  /** Each sentence's words in reverse order. */
  reversed: number;
  /** Every sentence repeated. */
  repeated: number;
  n: number;
}

/** Mean coherence of held-out generated answers, intact and damaged four ways. */
export function coherenceValidation(opts: { seed?: string | number; n?: number } = {}): CoherenceValidation {
  const n = opts.n ?? 300;
  const rng = makeRng(`organism-coherence-validation:${opts.seed ?? 0}`);
  const acc = { intact: [] as number[], shuffled: [] as number[], truncated: [] as number[], reversed: [] as number[], repeated: [] as number[] };
  for (let i = 0; i < n; i++) {
    const trait = rng() < 0.3 ? null : pick(rng, TRAITS);
    const q = makeQuestion(rng, pick(rng, DOMAINS));
    const a = makeAnswer(rng, q, { trait, level: trait ? Math.floor(rng() * (LEVELS + 1)) : 0 });
    const coh = (t: string): number => analyzeAnswer(q.text, t).scores.coherence;
    acc.intact.push(coh(a));
    acc.shuffled.push(coh(shuffleWords(rng, a)));
    acc.truncated.push(coh(truncateWords(rng, a)));
    acc.reversed.push(coh(a.split('. ').map((s) => s.replace(/\.$/, '').split(' ').reverse().join(' ')).join('. ') + '.'));
    acc.repeated.push(coh(`${a} ${a}`));
  }
  return { intact: mean(acc.intact), shuffled: mean(acc.shuffled), truncated: mean(acc.truncated), reversed: mean(acc.reversed), repeated: mean(acc.repeated), n };
}
