import { auroc, bootstrapCI, mean, pearson, randomDirectionNull, spearman, stderr, l2norm } from '../../lib/persona/stats';
import { PersonaError } from '../../lib/errors';

describe('correlations (hand-computed)', () => {
  test('pearson', () => {
    // dx = [-2,-1,0,1,2], dy = [-2,0,1,0,1]: sum dx*dy = 6, sum dx^2 = 10, sum dy^2 = 6 -> 6/sqrt(60)
    expect(pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])).toBeCloseTo(6 / Math.sqrt(60), 12);
    expect(pearson([1, 2, 3], [-2, -4, -6])).toBeCloseTo(-1, 12);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN(); // constant side: undefined
  });

  test('spearman uses mid-ranks for ties', () => {
    // ranks x = [1, 2.5, 2.5, 4], y = [1,2,3,4]: cov sum 4.5, var sums 4.5 and 5 -> 4.5/sqrt(22.5)
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(4.5 / Math.sqrt(22.5), 12);
    // monotone but nonlinear: rank correlation is exactly 1 where pearson is not
    const x = [1, 2, 3, 4, 5];
    const y = x.map((v) => Math.exp(v));
    expect(spearman(x, y)).toBeCloseTo(1, 12);
    expect(pearson(x, y)).toBeLessThan(0.95);
  });

  test('bad input', () => {
    expect(() => pearson([1, 2, 3], [1, 2])).toThrow(/x has 3 values but y has 2/);
    expect(() => spearman([1, NaN], [1, 2])).toThrow(PersonaError);
    expect(() => pearson([1], [1])).toThrow(/at least 2/);
  });
});

describe('auroc', () => {
  test('pairwise counting with ties', () => {
    // pos 0.9 and 0.8 beat all 3 negatives (6); 0.4 beats 0.3, ties 0.4 (1.5) -> 7.5/9
    expect(auroc([0.9, 0.8, 0.4], [0.5, 0.3, 0.4])).toBeCloseTo(7.5 / 9, 12);
    expect(auroc([3, 4], [1, 2])).toBe(1);
    expect(auroc([1, 2], [3, 4])).toBe(0);
    expect(auroc([1, 1], [1, 1, 1])).toBe(0.5);
  });
  test('agrees with brute-force pair counting on random data', () => {
    let s = 1;
    const r = () => ((s = (s * 16807) % 2147483647) % 100) / 10; // many ties on a 0.1 grid
    const pos = Array.from({ length: 40 }, r);
    const neg = Array.from({ length: 30 }, r);
    let wins = 0;
    for (const p of pos) for (const q of neg) wins += p > q ? 1 : p === q ? 0.5 : 0;
    expect(auroc(pos, neg)).toBeCloseTo(wins / (pos.length * neg.length), 12);
  });
  test('empty side is an error', () => {
    expect(() => auroc([], [1])).toThrow(/positive scores needs at least 1/);
  });
});

describe('mean and stderr', () => {
  test('hand-computed', () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9]; // mean 5, sum of squares 32, sample var 32/7
    expect(mean(xs)).toBe(5);
    expect(stderr(xs)).toBeCloseTo(Math.sqrt(32 / 7 / 8), 12);
    expect(stderr([3])).toBeNaN();
    expect(() => mean([])).toThrow(PersonaError);
  });
});

describe('bootstrapCI', () => {
  const xs = Array.from({ length: 200 }, (_, i) => Math.sin(i * 1.7) * 3 + (i % 7));
  const meanOf = (idx: number[]) => idx.reduce((a, i) => a + xs[i], 0) / idx.length;

  test('deterministic for a seed, different for another, contains the point estimate', () => {
    const a = bootstrapCI(meanOf, xs.length, { seed: 's1' });
    const b = bootstrapCI(meanOf, xs.length, { seed: 's1' });
    const c = bootstrapCI(meanOf, xs.length, { seed: 's2' });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    const point = mean(xs);
    expect(a.lo).toBeLessThan(point);
    expect(a.hi).toBeGreaterThan(point);
    // For a mean, the 95% percentile interval is close to +-1.96 standard errors.
    const width = a.hi - a.lo;
    expect(width / (2 * 1.96 * stderr(xs))).toBeGreaterThan(0.8);
    expect(width / (2 * 1.96 * stderr(xs))).toBeLessThan(1.2);
  });

  test('a wider level gives a wider interval', () => {
    const n90 = bootstrapCI(meanOf, xs.length, { seed: 'x', level: 0.9 });
    const n99 = bootstrapCI(meanOf, xs.length, { seed: 'x', level: 0.99 });
    expect(n99.hi - n99.lo).toBeGreaterThan(n90.hi - n90.lo);
  });

  test('resamples are indices in range, n per resample, reps times', () => {
    let calls = 0;
    bootstrapCI((idx) => {
      calls++;
      expect(idx).toHaveLength(7);
      expect(idx.every((i) => Number.isInteger(i) && i >= 0 && i < 7)).toBe(true);
      return idx[0];
    }, 7, { seed: 'q', reps: 50 });
    expect(calls).toBe(50);
  });

  test('mostly undefined statistic and bad options are errors', () => {
    expect(() => bootstrapCI(() => NaN, 10, { seed: 'a', reps: 20 })).toThrow(/undefined on 20 of 20/);
    expect(() => bootstrapCI(meanOf, 0, { seed: 'a' })).toThrow(PersonaError);
    expect(() => bootstrapCI(meanOf, 10, { seed: 'a', level: 1 })).toThrow(/level/);
  });
});

describe('randomDirectionNull', () => {
  const hidden = 400;
  const like = Float32Array.from({ length: hidden }, (_, i) => Math.cos(i) * 2);
  const cos = (d: Float32Array) => {
    let dot = 0;
    for (let i = 0; i < hidden; i++) dot += d[i] * like[i];
    return dot / (l2norm(d) * l2norm(like));
  };

  test('directions are norm-matched, seeded and distinct', () => {
    const seen: Float32Array[] = [];
    const r = randomDirectionNull((d) => { seen.push(d); return cos(d); }, like, { count: 25, seed: 'n' });
    expect(r.values).toHaveLength(25);
    for (const d of seen) expect(l2norm(d)).toBeCloseTo(l2norm(like), 3);
    expect(seen[0]).not.toEqual(seen[1]);
    const again = randomDirectionNull(cos, like, { count: 25, seed: 'n' });
    expect(again.values).toEqual(r.values);
    expect(randomDirectionNull(cos, like, { count: 25, seed: 'm' }).values).not.toEqual(r.values);
  });

  test('summary: mean |cos| of random directions in d dims is about sqrt(2/(pi d))', () => {
    const r = randomDirectionNull(cos, like, { count: 200, seed: 'big' });
    const expected = Math.sqrt(2 / (Math.PI * hidden));
    expect(r.meanAbs).toBeGreaterThan(expected * 0.8);
    expect(r.meanAbs).toBeLessThan(expected * 1.2);
    const abs = r.values.map(Math.abs);
    expect(r.meanAbs).toBeCloseTo(abs.reduce((a, b) => a + b, 0) / abs.length, 12);
    expect(r.p975).toBeGreaterThan(r.meanAbs);
    expect(abs.filter((v) => v > r.p975).length).toBeLessThanOrEqual(5); // 2.5% of 200
  });

  test('too few draws or a zero reference is an error', () => {
    expect(() => randomDirectionNull(cos, like, { count: 5, seed: 'a' })).toThrow(/>= 20/);
    expect(() => randomDirectionNull(cos, new Float32Array(4), { count: 20, seed: 'a' })).toThrow(/norm 0/);
  });
});
