/**
 * Extraction methods on synthetic activations with a planted direction: every method recovers the direction of the
 * reduction it reads, points from negative to positive, gives the same bits twice, and pca_diff / probe rows carry the
 * response-average mean difference's norm.
 */
import seedrandom from 'seedrandom';
import { Captured, Reduction } from '../../lib/model/capture';
import { pcaDiffDirection, probeDirection } from '../../lib/persona/directions';
import { DEFAULT_METHODS, meanDifference, methodVector, resolveMethods } from '../../lib/persona/extract';
import { gaussianSampler, randomDirection } from '../../lib/persona/stats';
import { EXTRACTION_METHODS } from '../../lib/persona/vector';

const H = 24;
const LAYERS = [0, 1];
const PAIRS = 80;
const REDS: Reduction[] = ['response_mean', 'prompt_mean', 'prompt_last'];

function cos(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}

/**
 * Sequences 2k (pos) and 2k+1 (neg) share a base (the question's content, large along one nuisance axis that both
 * rows carry, so it cancels in the pair difference); pos adds a_k·u, neg subtracts b_k·u, a_k and b_k drawn from
 * [0.5, 3] so that the differences vary along u (pca_diff centres them); isotropic noise 0.2.
 */
function synthetic(seed: string): { cap: Captured; planted: Record<Reduction, Float32Array[]> } {
  const rng = seedrandom(seed);
  const g = gaussianSampler(rng);
  const planted = {} as Record<Reduction, Float32Array[]>;
  const values: Partial<Record<Reduction, Float32Array>> = {};
  for (const r of REDS) {
    planted[r] = LAYERS.map(() => randomDirection(H, 1, g));
    const nuisance = LAYERS.map(() => randomDirection(H, 1, g));
    const v = new Float32Array(2 * PAIRS * LAYERS.length * H);
    for (let k = 0; k < PAIRS; k++)
      LAYERS.forEach((_, j) => {
        const big = 5 * g();
        const base = Array.from({ length: H }, (_, i) => g() + big * nuisance[j][i]);
        const a = 0.5 + 2.5 * rng();
        const b = 0.5 + 2.5 * rng();
        for (let i = 0; i < H; i++) {
          v[((2 * k) * LAYERS.length + j) * H + i] = base[i] + a * planted[r][j][i] + 0.2 * g();
          v[((2 * k + 1) * LAYERS.length + j) * H + i] = base[i] - b * planted[r][j][i] + 0.2 * g();
        }
      });
    values[r] = v;
  }
  return { cap: { layers: LAYERS, hidden: H, count: 2 * PAIRS, values }, planted };
}

const POS = Array.from({ length: PAIRS }, (_, k) => 2 * k);
const NEG = POS.map((i) => i + 1);
const row = (data: Float32Array, j: number) => data.subarray(j * H, (j + 1) * H);
const rowsOf = (c: Captured, r: Reduction, which: number[], j: number) => which.map((i) => c.values[r]!.subarray((i * LAYERS.length + j) * H, (i * LAYERS.length + j + 1) * H));

describe('extraction methods on a planted direction', () => {
  const { cap, planted } = synthetic('planted');
  const readsFrom = { response_avg_diff: 'response_mean', prompt_avg_diff: 'prompt_mean', prompt_last_diff: 'prompt_last', pca_diff: 'response_mean', probe: 'response_mean' } as const;

  test.each([...EXTRACTION_METHODS])('%s recovers the direction of the activations it reads, pointing to the positive side', (method) => {
    const { data } = methodVector(cap, method, POS, NEG);
    for (let j = 0; j < LAYERS.length; j++) {
      const c = cos(row(data, j), planted[readsFrom[method]][j]);
      expect(c).toBeGreaterThan(0.97);
      // Nothing of the other reductions' directions (random in 24 dimensions: |cos| well under 0.97).
      for (const other of REDS) if (other !== readsFrom[method]) expect(Math.abs(cos(row(data, j), planted[other][j]))).toBeLessThan(0.9);
    }
  });

  test('swapping positive and negative flips pca_diff and probe (sign convention: positive projects higher)', () => {
    for (const method of ['pca_diff', 'probe'] as const) {
      const a = methodVector(cap, method, POS, NEG).data;
      const b = methodVector(cap, method, NEG, POS).data;
      for (let j = 0; j < LAYERS.length; j++) {
        expect(cos(row(a, j), row(b, j))).toBeLessThan(-0.999);
        // Positive rows project above their paired negative row for most pairs.
        const P = rowsOf(cap, 'response_mean', POS, j);
        const N = rowsOf(cap, 'response_mean', NEG, j);
        const higher = P.filter((p, k) => cos(p, row(a, j)) * Math.hypot(...p) > cos(N[k], row(a, j)) * Math.hypot(...N[k])).length;
        expect(higher / PAIRS).toBeGreaterThan(0.9);
      }
    }
  });

  test('pca_diff and probe rows have the norm of the response-average mean difference at that layer', () => {
    const mean = meanDifference(cap, 'response_mean', POS, NEG);
    for (const method of ['pca_diff', 'probe'] as const) {
      const { data, meta } = methodVector(cap, method, POS, NEG);
      for (let j = 0; j < LAYERS.length; j++) expect(Math.hypot(...row(data, j))).toBeCloseTo(Math.hypot(...row(mean, j)), 3);
      expect(meta.scale).toBe('response_avg_diff_norm');
    }
    const pca = methodVector(cap, 'pca_diff', POS, NEG).meta;
    // Well above the 1/24 of an arbitrary axis: the planted spread is about a third of the differences' variance.
    expect((pca.varianceExplained as number[]).every((v) => v > 0.25 && v <= 1)).toBe(true);
    const probe = methodVector(cap, 'probe', POS, NEG).meta;
    expect(probe.converged).toBe(true);
    // Classes overlap along u by the base's spread (pairs, not classes, are separated): about Φ(1.75) ≈ 0.96 right.
    expect((probe.trainAccuracy as number[]).every((a) => a > 0.9 && a <= 1)).toBe(true);
  });

  test('deterministic: the same activations give the same bits; another draw of the same process the same direction', () => {
    for (const method of EXTRACTION_METHODS) {
      const a = methodVector(cap, method, POS, NEG).data;
      const b = methodVector(synthetic('planted').cap, method, POS, NEG).data;
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
  });
});

describe('pca_diff and probe edge cases', () => {
  const g = gaussianSampler(seedrandom('edge'));
  const u = randomDirection(8, 1, g);

  test('pca_diff: uncentred, pairs that all differ alike give that difference; centred (repeng exactly) they give no axis', () => {
    const base = Array.from({ length: 10 }, () => randomDirection(8, 3, g));
    const pos = base.map((b) => b.map((x, i) => x + u[i]));
    const plain = pcaDiffDirection(pos, base);
    expect(cos(plain.direction, u)).toBeGreaterThan(0.999999);
    expect(plain.varianceExplained).toBeCloseTo(1, 6);
    const centred = pcaDiffDirection(pos, base, { center: true });
    expect(Array.from(centred.direction).every((x) => x === 0)).toBe(true);
    expect(centred.varianceExplained).toBe(0);
    // Centred, a spread of the differences along u is found, with the sign repeng picks (majority of pairs).
    const pos2 = base.map((b, k) => b.map((x, i) => x + (1 + k / 10) * u[i]));
    const r2 = pcaDiffDirection(pos2, base, { center: true });
    expect(cos(r2.direction, u)).toBeGreaterThan(0.999999);
    expect(r2.pairsAgreeing).toBe(1);
  });

  test('pca_diff centred drops the mean difference: the axis of varying effect size wins over a constant shift', () => {
    // Every pair differs by 3u (constant) plus a spread along v: uncentred finds u (the bigger second moment), centred v.
    const v = randomDirection(8, 1, g);
    const base = Array.from({ length: 20 }, () => randomDirection(8, 3, g));
    const pos = base.map((b, k) => b.map((x, i) => x + 3 * u[i] + ((k % 5) - 2) * v[i]));
    expect(cos(pcaDiffDirection(pos, base).direction, u)).toBeGreaterThan(0.95);
    expect(Math.abs(cos(pcaDiffDirection(pos, base, { center: true }).direction, v))).toBeGreaterThan(0.999);
  });

  test('probe: a stronger penalty pulls the weights towards the class-mean difference', () => {
    // Two classes separated along u, with a correlated nuisance that makes the max-margin direction differ from the means'.
    const v = randomDirection(8, 1, g);
    const mk = (s: number) => Array.from({ length: 40 }, () => {
      const t = g();
      return randomDirection(8, 0.3, g).map((x, i) => x + s * u[i] + 2 * t * v[i] + 0.5 * s * t * u[i]);
    });
    const P = mk(1);
    const N = mk(-1);
    const meanDiff = new Float64Array(8);
    for (let i = 0; i < 8; i++) meanDiff[i] = P.reduce((s, p) => s + p[i], 0) / 40 - N.reduce((s, n) => s + n[i], 0) / 40;
    const weak = probeDirection(P, N, { l2: 1e-4 });
    const strong = probeDirection(P, N, { l2: 10 });
    expect(cos(strong.direction, meanDiff)).toBeGreaterThan(cos(weak.direction, meanDiff));
    expect(cos(strong.direction, meanDiff)).toBeGreaterThan(0.99);
    expect(() => probeDirection(P, N, { l2: 0 })).toThrow(/L2 penalty must be a positive number/);
  });

  test('unpaired or mis-sized rows are refused', () => {
    expect(() => pcaDiffDirection([u], [])).toThrow(/needs positive and negative rows/);
    expect(() => pcaDiffDirection([u, u], [u])).toThrow(/must be paired/);
    expect(() => probeDirection([u], [new Float32Array(3)])).toThrow(/differ in hidden size/);
  });
});

test('method option: one name or several, defaults to the three mean differences, unknown names refused', () => {
  expect(resolveMethods(undefined)).toEqual([...DEFAULT_METHODS]);
  expect(resolveMethods('probe')).toEqual(['probe']);
  expect(resolveMethods(['pca_diff', 'probe', 'pca_diff'])).toEqual(['pca_diff', 'probe']);
  expect(() => resolveMethods(['mean' as never])).toThrow(/unknown extraction method 'mean' \(response_avg_diff, prompt_avg_diff, prompt_last_diff, pca_diff, probe\)/);
  expect(() => resolveMethods([])).toThrow(/no extraction method/);
});
