/**
 * Statistics for monitoring and screening: correlations, AUROC, standard errors, percentile bootstrap
 * confidence intervals and random-direction nulls. Sample moments and correlations come from
 * simple-statistics; everything here is seeded (seedrandom) so that a rerun reproduces every number.
 */
import seedrandom from 'seedrandom';
import * as ss from 'simple-statistics';
import { PersonaError } from '../errors';

function checkSample(xs: number[], what: string, min: number): void {
  if (!Array.isArray(xs)) throw new PersonaError(`${what} must be an array of numbers`);
  if (xs.length < min) throw new PersonaError(`${what} needs at least ${min} value(s), got ${xs.length}`);
  for (let i = 0; i < xs.length; i++) {
    if (typeof xs[i] !== 'number' || !Number.isFinite(xs[i])) {
      throw new PersonaError(`${what}[${i}] is ${String(xs[i])}, not a finite number`);
    }
  }
}

function checkPaired(x: number[], y: number[], what: string): void {
  checkSample(x, `${what}: x`, 2);
  checkSample(y, `${what}: y`, 2);
  if (x.length !== y.length) throw new PersonaError(`${what}: x has ${x.length} values but y has ${y.length}`);
}

export function mean(xs: number[]): number {
  checkSample(xs, 'mean', 1);
  return ss.mean(xs);
}

/** Standard error of the mean, sample standard deviation (n-1) / sqrt(n); NaN for a single value. */
export function stderr(xs: number[]): number {
  checkSample(xs, 'stderr', 1);
  if (xs.length < 2) return NaN;
  return ss.sampleStandardDeviation(xs) / Math.sqrt(xs.length);
}

/** Pearson correlation. NaN when either side is constant (undefined, not an input error). */
export function pearson(x: number[], y: number[]): number {
  checkPaired(x, y, 'pearson');
  return ss.sampleCorrelation(x, y);
}

/** Spearman rank correlation: Pearson on mid-ranks (ties get the average rank, as scipy does). */
export function spearman(x: number[], y: number[]): number {
  checkPaired(x, y, 'spearman');
  return ss.sampleRankCorrelation(x, y);
}

/**
 * Area under the ROC curve = P(score of a random positive > score of a random negative) + P(tie)/2,
 * computed from mid-ranks (Mann-Whitney U) in O(n log n).
 */
export function auroc(scoresPos: number[], scoresNeg: number[]): number {
  checkSample(scoresPos, 'auroc: positive scores', 1);
  checkSample(scoresNeg, 'auroc: negative scores', 1);
  // simple-statistics has no ROC/U statistic; this is the textbook rank-sum formula.
  const all = scoresPos.map((v) => ({ v, pos: true })).concat(scoresNeg.map((v) => ({ v, pos: false })));
  all.sort((a, b) => a.v - b.v);
  let rankSumPos = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].v === all[i].v) j++;
    const midRank = (i + j) / 2 + 1; // 1-based
    for (let k = i; k <= j; k++) if (all[k].pos) rankSumPos += midRank;
    i = j + 1;
  }
  const nPos = scoresPos.length;
  const nNeg = scoresNeg.length;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Standard normal draws from a seeded uniform generator (Box-Muller). */
export function gaussianSampler(rng: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = rng(); // log(0) would be -inf
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** A uniformly random direction (isotropic Gaussian, normalised) scaled to `norm`; all zeros if norm is 0. */
export function randomDirection(hidden: number, norm: number, gauss: () => number): Float32Array {
  const out = new Float32Array(hidden);
  if (norm === 0) return out;
  const tmp = new Float64Array(hidden);
  let ss2 = 0;
  for (let i = 0; i < hidden; i++) {
    tmp[i] = gauss();
    ss2 += tmp[i] * tmp[i];
  }
  const scale = norm / Math.sqrt(ss2);
  for (let i = 0; i < hidden; i++) out[i] = tmp[i] * scale;
  return out;
}

export function l2norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/**
 * Percentile bootstrap CI: resample n indices with replacement `reps` times, evaluate `stat` on each
 * resample, and take the (1-level)/2 and (1+level)/2 quantiles. Replicates where the statistic is
 * undefined (NaN, e.g. a correlation on a constant resample) are dropped; if more than half are, the
 * interval is not meaningful and this throws.
 */
export function bootstrapCI(
  stat: (idx: number[]) => number,
  n: number,
  opts: { reps?: number; seed: string; level?: number },
): { lo: number; hi: number } {
  const reps = opts.reps ?? 1000;
  const level = opts.level ?? 0.95;
  if (!Number.isInteger(n) || n < 1) throw new PersonaError(`bootstrapCI: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(reps) || reps < 10) throw new PersonaError(`bootstrapCI: reps must be an integer >= 10, got ${reps}`);
  if (!(level > 0 && level < 1)) throw new PersonaError(`bootstrapCI: level must be in (0, 1), got ${level}`);
  if (typeof opts.seed !== 'string') throw new PersonaError('bootstrapCI: seed (string) is required');
  const rng = seedrandom(opts.seed);
  const values: number[] = [];
  const idx = new Array<number>(n);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rng() * n);
    const v = stat(idx.slice());
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length < reps / 2) {
    throw new PersonaError(`bootstrapCI: the statistic was undefined on ${reps - values.length} of ${reps} resamples`);
  }
  values.sort((a, b) => a - b);
  return { lo: ss.quantileSorted(values, (1 - level) / 2), hi: ss.quantileSorted(values, (1 + level) / 2) };
}

/**
 * Null distribution of a statistic under random directions: `count` isotropic random directions, each
 * with the same norm as `like`, evaluated by `statFor`. Returns the values, the mean |value| and the
 * 97.5th percentile of |value| (simple-statistics' quantile definition), the
 * threshold a real direction's |stat| should exceed.
 */
export function randomDirectionNull(
  statFor: (direction: Float32Array) => number,
  like: Float32Array,
  opts: { count: number; seed: string },
): { values: number[]; meanAbs: number; p975: number } {
  if (!Number.isInteger(opts.count) || opts.count < 20) {
    throw new PersonaError(`randomDirectionNull: count must be an integer >= 20, got ${opts.count}`);
  }
  if (typeof opts.seed !== 'string') throw new PersonaError('randomDirectionNull: seed (string) is required');
  if (!(like instanceof Float32Array) || like.length === 0) throw new PersonaError('randomDirectionNull: like must be a non-empty Float32Array');
  const norm = l2norm(like);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new PersonaError(`randomDirectionNull: reference direction has norm ${norm}`);
  const gauss = gaussianSampler(seedrandom(opts.seed));
  const values: number[] = [];
  for (let i = 0; i < opts.count; i++) {
    const v = statFor(randomDirection(like.length, norm, gauss));
    if (!Number.isFinite(v)) throw new PersonaError(`randomDirectionNull: statistic is ${v} for random direction ${i}`);
    values.push(v);
  }
  const abs = values.map(Math.abs).sort((a, b) => a - b);
  return { values, meanAbs: ss.mean(abs), p975: ss.quantileSorted(abs, 0.975) };
}
