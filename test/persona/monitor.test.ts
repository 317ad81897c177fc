import { correlationWithNull, manyShotConditions } from '../../lib/persona/monitor';
import { pearson } from '../../lib/persona/stats';

test('r of projections with scores, bootstrap CI containing it, and a norm-matched random-direction null', () => {
  // 8 items, hidden 3: scores follow the first coordinate, the other coordinates are noise.
  const x = [0, 1, 2, 3, 4, 5, 6, 7];
  const noise = [3, -1, 4, 1, -5, 9, 2, -6];
  const acts = new Float32Array(x.flatMap((v, i) => [v, noise[i], noise[(i + 3) % 8]]));
  const scores = x.map((v, i) => 10 * v + (i % 2));
  const dir = new Float32Array([2, 0, 0]);
  const r = correlationWithNull(acts, scores, dir, { seed: 's', bootstrapReps: 200, nullCount: 20 });
  expect(r.r).toBeCloseTo(pearson(x, scores), 10);
  expect(r.ci95.lo).toBeLessThanOrEqual(r.r);
  expect(r.ci95.hi).toBeGreaterThanOrEqual(r.r - 1e-12);
  expect(r.null.count).toBe(20);
  expect(r.null.p975).toBeGreaterThan(0);
  expect(r.null.p975).toBeLessThanOrEqual(1);
  // Same seed, same numbers.
  expect(correlationWithNull(acts, scores, dir, { seed: 's', bootstrapReps: 200 })).toEqual(r);
  expect(() => correlationWithNull(acts.slice(0, 6), [1, 2], dir)).toThrow(/at least 3/);
});

test('many-shot prompts put K examples as earlier turns', () => {
  const c = manyShotConditions([{ question: 'q1', answer: 'a1' }, { question: 'q2', answer: 'a2' }], [0, 2]);
  expect(c[0]).toEqual({ label: 'shots0', history: [] });
  expect(c[1].history).toEqual([{ role: 'user', content: 'q1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'q2' }, { role: 'assistant', content: 'a2' }]);
  expect(() => manyShotConditions([], [1])).toThrow(/K=1/);
});
