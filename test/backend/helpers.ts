import seedrandom from 'seedrandom';

/** Seeded standard-normal-ish values (sum of uniforms; exact distribution is irrelevant here). */
export function randomValues(n: number, seed: string): Float32Array {
  const rng = seedrandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng() + rng() + rng() - 1.5;
  return out;
}

/** max |actual - expected| / max |expected| (relative to the reference's scale). */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

export function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Float64 reference for matMul with numpy broadcasting of the batch dims: an independent check on both
 * backends (the cpu backend is itself the thing being compared against).
 */
export function referenceMatMul(
  a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean,
): { values: Float64Array; shape: number[] } {
  const ra = aShape.length;
  const rb = bShape.length;
  const M = tA ? aShape[ra - 1] : aShape[ra - 2];
  const K = tA ? aShape[ra - 2] : aShape[ra - 1];
  const N = tB ? bShape[rb - 2] : bShape[rb - 1];
  const aOuter = aShape.slice(0, -2);
  const bOuter = bShape.slice(0, -2);
  const rank = Math.max(aOuter.length, bOuter.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const pa = pad(aOuter);
  const pb = pad(bOuter);
  const outOuter = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = size(outOuter);
  const out = new Float64Array(batch * M * N);
  for (let o = 0; o < batch; o++) {
    let rest = o;
    let ai = 0;
    let bi = 0;
    let sa = 1;
    let sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % outOuter[d];
      rest = Math.floor(rest / outOuter[d]);
      if (pa[d] !== 1) ai += c * sa;
      if (pb[d] !== 1) bi += c * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[ai * M * K + (tA ? k * M + i : i * K + k)];
          const bv = b[bi * K * N + (tB ? j * K + k : k * N + j)];
          s += av * bv;
        }
        out[o * M * N + i * N + j] = s;
      }
    }
  }
  return { values: out, shape: [...outOuter, M, N] };
}
