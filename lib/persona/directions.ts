/**
 * Trait directions from paired activations other than the mean difference, one layer at a time:
 *
 *   pca_diff — the first principal component of the per-pair differences pos_k − neg_k (repeng's
 *              read_representations(method="pca_diff")); the sign is repeng's: the one under which more pairs
 *              project pos above neg. By default the differences are not centred: the component is the top
 *              singular vector of the difference matrix, which is what PCA gives on pairs in random order (RepE
 *              shuffles them, so their mean is ~0). repeng's sklearn call centres them (`center: true`); with
 *              pairs always ordered pos − neg that removes the mean difference, the trait direction itself, and
 *              leaves the axis along which the effect size varies (on the organism's evil vector: cosine −0.02–0.08
 *              with the mean difference at layers 1–6; steered at coef 2 at layers 1–3 without a system prompt it
 *              gives evil scores 1.9–4.5, as a random direction does, where the uncentred one gives 14–32).
 *   probe    — the weight vector of an L2-regularised logistic regression of positive (1) vs negative (0)
 *              rows. Rows are centred and scaled by one common factor (RMS row norm → 1) so the penalty means
 *              the same on every layer and model; per-feature standardisation would blow up dimensions that
 *              barely vary. Fitted by L-BFGS from zero, so it is deterministic.
 *
 * Both return unit directions in float64. Written here rather than taken from a library: the npm options
 * (ml-pca's full SVD, ml-logistic-regression's unregularised fixed-step descent) are either too slow at
 * hidden 3584 × thousands of rows or lack the L2 penalty; one power iteration and one small L-BFGS are enough.
 */
import { PersonaError } from '../errors';

export interface PcaDirection {
  /** Unit vector [hidden]; all zeros when the differences do not vary. */
  direction: Float64Array;
  /** Fraction of the differences' second moment (variance when centred) along the direction. */
  varianceExplained: number;
  /** Pairs whose pos row projects above its neg row, of all pairs. */
  pairsAgreeing: number;
  iterations: number;
}

export interface ProbeDirection {
  /** Unit vector [hidden] (w / |w|); positive rows project higher by construction of the labels. */
  direction: Float64Array;
  /** Training accuracy of the fitted classifier (rows on the right side of its boundary). */
  accuracy: number;
  iterations: number;
  converged: boolean;
}

function checkRows(pos: readonly Float32Array[], neg: readonly Float32Array[], what: string, paired: boolean): number {
  if (pos.length === 0 || neg.length === 0) throw new PersonaError(`${what}: needs positive and negative rows, got ${pos.length} and ${neg.length}`);
  if (paired && pos.length !== neg.length) throw new PersonaError(`${what}: ${pos.length} positive rows but ${neg.length} negative rows; they must be paired`);
  const h = pos[0].length;
  for (const r of [...pos, ...neg]) if (r.length !== h) throw new PersonaError(`${what}: rows differ in hidden size (${h} vs ${r.length})`);
  return h;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function normalize(v: Float64Array): number {
  const n = Math.sqrt(dot(v, v));
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
  return n;
}

/**
 * First principal component of the pair differences (centred first with `center`), by power iteration on DᵀD
 * (never forming the hidden × hidden matrix). Starts from the largest difference, which lies in the span the
 * component lives in; stops when the direction moves by less than 1e-10 (1 − |cos|) or after maxIterations.
 */
export function pcaDiffDirection(pos: readonly Float32Array[], neg: readonly Float32Array[], opts: { center?: boolean; maxIterations?: number } = {}): PcaDirection {
  const h = checkRows(pos, neg, 'pca_diff', true);
  const n = pos.length;
  const D = pos.map((p, k) => {
    const d = new Float64Array(h);
    for (let i = 0; i < h; i++) d[i] = p[i] - neg[k][i];
    return d;
  });
  const mu = new Float64Array(h);
  for (const d of D) for (let i = 0; i < h; i++) mu[i] += d[i] / n;
  let total = 0;
  let start = -1;
  let best = 0;
  D.forEach((d, k) => {
    if (opts.center) for (let i = 0; i < h; i++) d[i] -= mu[i];
    const nn = dot(d, d);
    total += nn;
    if (nn > best) {
      best = nn;
      start = k;
    }
  });
  // Spread below float32 rounding of the rows (relative 1e-10 in squares) is no axis of variation either.
  let scale = 0;
  for (let k = 0; k < n; k++) scale += dot(pos[k], pos[k]) + dot(neg[k], neg[k]);
  const v = new Float64Array(h);
  if (start < 0 || !(total > 1e-10 * scale)) return { direction: v, varianceExplained: 0, pairsAgreeing: 0, iterations: 0 }; // every pair differs alike: no axis of variation
  v.set(D[start]);
  normalize(v);
  const maxIt = opts.maxIterations ?? 1000;
  let it = 0;
  let lambda = 0;
  const next = new Float64Array(h);
  while (it < maxIt) {
    it++;
    next.fill(0);
    for (const d of D) {
      const c = dot(d, v);
      for (let i = 0; i < h; i++) next[i] += c * d[i];
    }
    lambda = normalize(next);
    const cos = Math.abs(dot(next, v));
    v.set(next);
    if (1 - cos < 1e-10) break;
  }
  // Sign as repeng: compare pos and neg projections pair by pair on the uncentred rows; ties go by the mean difference.
  let above = 0;
  let below = 0;
  for (let k = 0; k < n; k++) {
    const s = dot(pos[k], v) - dot(neg[k], v);
    if (s > 0) above++;
    else if (s < 0) below++;
  }
  if (below > above || (below === above && dot(mu, v) < 0)) {
    for (let i = 0; i < h; i++) v[i] = -v[i];
    [above, below] = [below, above];
  }
  return { direction: v, varianceExplained: lambda / total, pairsAgreeing: above / n, iterations: it };
}

export const DEFAULT_PROBE_L2 = 1e-2;

/**
 * Logistic regression, positive rows labelled 1 and negative rows 0, minimising
 *   mean log-loss + (l2 / 2)·|w|²   (bias unpenalised)
 * on rows centred by their mean and divided by their RMS norm. Returns w / |w| (the centring and one common
 * scale do not change its direction in activation space).
 */
export function probeDirection(pos: readonly Float32Array[], neg: readonly Float32Array[], opts: { l2?: number; maxIterations?: number; tolerance?: number } = {}): ProbeDirection {
  const h = checkRows(pos, neg, 'probe', false);
  const l2 = opts.l2 ?? DEFAULT_PROBE_L2;
  if (!(l2 > 0) || !Number.isFinite(l2)) throw new PersonaError(`probe: L2 penalty must be a positive number, got ${l2}`, { field: 'probe_l2' });
  const rows = [...pos, ...neg];
  const m = rows.length;
  const y = rows.map((_, i) => (i < pos.length ? 1 : -1));
  const mu = new Float64Array(h);
  for (const r of rows) for (let i = 0; i < h; i++) mu[i] += r[i] / m;
  const X = rows.map((r) => {
    const x = new Float64Array(h);
    for (let i = 0; i < h; i++) x[i] = r[i] - mu[i];
    return x;
  });
  const rms = Math.sqrt(X.reduce((s, x) => s + dot(x, x), 0) / m);
  if (!(rms > 0)) return { direction: new Float64Array(h), accuracy: 0.5, iterations: 0, converged: true }; // every row the same: nothing to separate
  for (const x of X) for (let i = 0; i < h; i++) x[i] /= rms;
  // Parameters θ = [w (h), b]. Loss and gradient in one pass over the rows.
  const P = h + 1;
  const lossGrad = (th: Float64Array, g: Float64Array): number => {
    g.fill(0);
    let loss = 0;
    for (let r = 0; r < m; r++) {
      const z = y[r] * (dot(X[r], th) + th[h]); // dot over the first h entries (X[r] has length h)
      // log(1 + e^-z) and its derivative −σ(−z), computed stably.
      loss += z > 0 ? Math.log1p(Math.exp(-z)) : -z + Math.log1p(Math.exp(z));
      const s = -y[r] / (1 + Math.exp(z));
      const x = X[r];
      for (let i = 0; i < h; i++) g[i] += s * x[i];
      g[h] += s;
    }
    loss /= m;
    for (let i = 0; i < P; i++) g[i] /= m;
    let ww = 0;
    for (let i = 0; i < h; i++) {
      ww += th[i] * th[i];
      g[i] += l2 * th[i];
    }
    return loss + (l2 / 2) * ww;
  };
  const { x: th, iterations, converged } = lbfgs(lossGrad, new Float64Array(P), { maxIterations: opts.maxIterations ?? 500, tolerance: opts.tolerance ?? 1e-8 });
  const w = th.slice(0, h);
  let right = 0;
  for (let r = 0; r < m; r++) if (y[r] * (dot(X[r], w) + th[h]) > 0) right++;
  normalize(w);
  return { direction: w, accuracy: right / m, iterations, converged };
}

/**
 * Limited-memory BFGS (10 pairs) with a backtracking Armijo line search; stops when the largest gradient entry
 * is below `tolerance`. Plain loops in a fixed order: the same input gives the same bits.
 */
function lbfgs(f: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, o: { maxIterations: number; tolerance: number }): { x: Float64Array; iterations: number; converged: boolean } {
  const n = x0.length;
  const M = 10;
  let x = x0.slice();
  let g = new Float64Array(n);
  let fx = f(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const maxAbs = (v: Float64Array) => v.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  let it = 0;
  for (; it < o.maxIterations; it++) {
    if (maxAbs(g) < o.tolerance) return { x, iterations: it, converged: true };
    // Two-loop recursion: d = −H·g.
    const q = g.slice();
    const alpha: number[] = [];
    for (let k = S.length - 1; k >= 0; k--) {
      const a = dot(S[k], q) / dot(Y[k], S[k]);
      alpha[k] = a;
      for (let i = 0; i < n; i++) q[i] -= a * Y[k][i];
    }
    if (S.length) {
      const last = S.length - 1;
      const gamma = dot(S[last], Y[last]) / dot(Y[last], Y[last]);
      for (let i = 0; i < n; i++) q[i] *= gamma;
    }
    for (let k = 0; k < S.length; k++) {
      const b = dot(Y[k], q) / dot(Y[k], S[k]);
      for (let i = 0; i < n; i++) q[i] += S[k][i] * (alpha[k] - b);
    }
    const d = q.map((v) => -v);
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (curvature pairs gone stale): restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i];
      slope = dot(g, d);
    }
    let step = S.length ? 1 : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    const xn = new Float64Array(n);
    const gn = new Float64Array(n);
    let fn = Infinity;
    for (let tries = 0; tries < 60; tries++) {
      for (let i = 0; i < n; i++) xn[i] = x[i] + step * d[i];
      fn = f(xn, gn);
      if (fn <= fx + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (!(fn < fx)) return { x, iterations: it, converged: maxAbs(g) < o.tolerance * 100 }; // no further decrease in float64
    const s = new Float64Array(n);
    const yv = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xn[i] - x[i];
      yv[i] = gn[i] - g[i];
    }
    if (dot(s, yv) > 1e-12) {
      S.push(s);
      Y.push(yv);
      if (S.length > M) {
        S.shift();
        Y.shift();
      }
    }
    x = xn;
    g = gn;
    fx = fn;
  }
  return { x, iterations: it, converged: maxAbs(g) < o.tolerance };
}
