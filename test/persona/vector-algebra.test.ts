/** Vector algebra across files (compare, combine, orthogonalize) and the GGUF export's row report. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { PersonaVector, VectorMeta, combineVectors, compareVectors, orthogonalize } from '../../lib/persona/vector';
import { describeRowExport, readControlVector } from '../../lib/io/gguf';
import { PersonaError } from '../../lib/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vector-algebra-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const M: VectorMeta = { layerConvention: 'hf_hidden_states', model: 'tiny' };
const vec = (rows: number[][], meta: VectorMeta = M, source?: string) => {
  const v = new PersonaVector(Float32Array.from(rows.flat()), rows.length, rows[0].length, { ...meta });
  if (source) v.source = source;
  return v;
};
function errorOf(fn: () => unknown): Error {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(PersonaError); return e as Error; }
  throw new Error('expected a PersonaError');
}
const dotRow = (v: PersonaVector, w: PersonaVector, L: number) => v.layer(L).reduce((s, x, i) => s + x * w.layer(L)[i], 0);

// 4 rows (3 layers), hidden 3: cosines 0, 1, 0, null (zero row) by hand
const a = vec([[1, 0, 0], [3, 4, 0], [1, 1, 0], [0, 0, 0]], M, 'a.safetensors');
const b = vec([[0, 1, 0], [6, 8, 0], [1, -1, 0], [0, 2, 0]], M, 'b.safetensors');

describe('compare', () => {
  test('[N+1, hidden]: per-layer cosine and norms, hand-computed', () => {
    const r = compareVectors(a, b);
    expect(r.map((x) => x.layer)).toEqual([0, 1, 2, 3]);
    expect(r.map((x) => x.cosine)).toEqual([0, 1, 0, null]);
    expect(r.map((x) => x.normA)).toEqual([1, 5, Math.SQRT2, 0]);
    expect(r.map((x) => x.normB)).toEqual([1, 10, Math.SQRT2, 2]);
    const c = compareVectors(a, a.neg());
    expect(c[1].cosine).toBe(-1);
  });
  test('single-layer vectors: cos([1,2,2],[2,1,-2]) = 0, cos([1,0],[1,1]) = 1/√2', () => {
    const s1 = vec([[1, 2, 2]], { ...M, singleLayer: 3 });
    const s2 = vec([[2, 1, -2]], { ...M, singleLayer: 3 });
    expect(compareVectors(s1, s2)).toEqual([{ layer: 3, cosine: 0, normA: 3, normB: 3 }]);
    const bare = compareVectors(vec([[1, 0]]), vec([[1, 1]]));
    expect(bare[0].layer).toBeUndefined();
    expect(bare[0].cosine).toBeCloseTo(Math.SQRT1_2, 12);
    // a bare direction takes the other's known layer
    expect(compareVectors(vec([[1, 2, 2]]), s2)[0].layer).toBe(3);
  });
  test('mismatched hidden size, layer count or layer: one line naming both files and shapes', () => {
    const wide = vec([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], M, 'wide.safetensors');
    const e1 = errorOf(() => compareVectors(a, wide)).message;
    expect(e1).toBe('compare: a.safetensors [4, 3] and wide.safetensors [4, 4] differ in hidden size (3 vs 4)');
    const short = vec([[1, 0, 0], [0, 1, 0]], M, 'short.safetensors');
    expect(errorOf(() => compareVectors(a, short)).message).toBe('compare: a.safetensors [4, 3] and short.safetensors [2, 3] differ in layer count (4 vs 2 rows)');
    const one = vec([[1, 0, 0]], { ...M, singleLayer: 2 }, 'one.safetensors');
    expect(errorOf(() => compareVectors(a, one)).message).toMatch(/^compare: a\.safetensors \[4, 3\] and one\.safetensors \[3\] \(layer 2\) differ in layer count/);
    const other = vec([[1, 0, 0]], { ...M, singleLayer: 5 }, 'five.safetensors');
    expect(errorOf(() => compareVectors(one, other)).message).toMatch(/one\.safetensors \[3\] \(layer 2\) and five\.safetensors \[3\] \(layer 5\) are different layers/);
    expect(e1).not.toContain('\n');
  });
});

describe('combine', () => {
  test('weighted sum: 2a − 0.5b, with metadata naming sources, weights and operation', () => {
    const r = combineVectors([{ vector: a, weight: 2 }, { vector: b, weight: -0.5 }]);
    expect(Array.from(r.data)).toEqual([2, -0.5, 0, 3, 4, 0, 1.5, 2.5, 0, 0, -1, 0]);
    expect(r.meta).toEqual({ layerConvention: 'hf_hidden_states', model: 'tiny', operation: 'weighted_sum', sources: ['a.safetensors', 'b.safetensors'], weights: [2, -0.5] });
    expect(Array.from(a.layer(1))).toEqual([3, 4, 0]); // operands unchanged
    const mixed = combineVectors([{ vector: a, weight: 1 }, { vector: vec([[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], { layerConvention: 'hf_hidden_states', model: 'other' }), weight: 1 }]);
    expect(mixed.meta.model).toBeUndefined();
  });
  test('orthogonalize: a − (a·ĉ)ĉ per layer, hand-computed; zero rows of c leave a alone', () => {
    const c = vec([[1, 0, 0], [0, 0, 2], [1, 1, 1], [0, 0, 0]], M, 'c.safetensors');
    const r = orthogonalize(a, c);
    expect(Array.from(r.layer(0))).toEqual([0, 0, 0]);
    expect(Array.from(r.layer(1))).toEqual([3, 4, 0]); // already ⟂ c: unchanged
    expect(Array.from(r.layer(2))).toEqual([1 / 3, 1 / 3, -2 / 3].map(Math.fround));
    expect(Array.from(r.layer(3))).toEqual([0, 0, 0]);
    expect(r.meta).toMatchObject({ operation: 'weighted_sum_orthogonalized', sources: ['a.safetensors'], weights: [1], orthogonalizedAgainst: 'c.safetensors' });
  });
  test('random [7, 64]: the result is ⟂ c per layer to 1e-6 and its component ⟂ c equals the sum\'s', () => {
    const rng = seedrandom('algebra');
    const rnd = () => vec(Array.from({ length: 7 }, () => Array.from({ length: 64 }, () => rng() * 2 - 1)));
    const [x, y, c] = [rnd(), rnd(), rnd()];
    const sum = combineVectors([{ vector: x, weight: 0.7 }, { vector: y, weight: 1.3 }]);
    const r = combineVectors([{ vector: x, weight: 0.7 }, { vector: y, weight: 1.3 }], { orthogonalizeAgainst: c });
    for (let L = 0; L < 7; L++) {
      expect(Math.abs(dotRow(r, c, L)) / (r.norm(L) * c.norm(L))).toBeLessThan(1e-6);
      // sum − r is parallel to c (what was removed), and r is the rest of the sum
      const removed = sum.sub(r);
      expect(Math.abs(Math.abs(dotRow(removed, c, L)) / (removed.norm(L) * c.norm(L)) - 1)).toBeLessThan(1e-5);
      const k = dotRow(sum, c, L) / dotRow(c, c, L);
      const expected = sum.layer(L).map((s, i) => s - k * c.layer(L)[i]);
      r.layer(L).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    }
  });
  test('single-layer vectors combine to a single-layer vector', () => {
    const s1 = vec([[1, 2, 2]], { ...M, singleLayer: 3 });
    const r = combineVectors([{ vector: s1, weight: 1 }, { vector: vec([[1, 0, 0]]), weight: 2 }]);
    expect(r.meta.singleLayer).toBe(3);
    expect(Array.from(r.layer(3))).toEqual([3, 2, 2]);
  });
  test('errors: empty, non-finite weight, shape mismatch (also against the orthogonalizer)', () => {
    expect(errorOf(() => combineVectors([])).message).toMatch(/no vectors/);
    expect(errorOf(() => combineVectors([{ vector: a, weight: NaN }])).message).toMatch(/weight NaN for a\.safetensors is not finite/);
    const wide = vec([[1, 0, 0, 0]], M, 'w.safetensors');
    expect(errorOf(() => combineVectors([{ vector: a, weight: 1 }], { orthogonalizeAgainst: wide })).message).toMatch(/^combine: a\.safetensors \[4, 3\] and w\.safetensors \[4\] differ in hidden size/);
  });
  test('a combined vector saves and loads with its metadata', () => {
    const f = path.join(tmp, 'sum.safetensors');
    combineVectors([{ vector: a, weight: 1 }, { vector: b, weight: 1 }]).save(f);
    const back = PersonaVector.load(f);
    expect(back.meta).toMatchObject({ operation: 'weighted_sum', weights: [1, 1] });
    expect(Array.from(back.layer(1))).toEqual([9, 12, 0]);
  });
});

describe('GGUF export says which rows it wrote', () => {
  test('describeRowExport: full vector, single layer, a chosen subset', () => {
    expect(describeRowExport([2, 3, 4, 5], 6)).toBe("wrote rows 2..5 (hidden_states index) as llama.cpp control-vector direction.1..direction.4; skipped row 0 (embedding output) and row 1 (block 0 output): llama.cpp steers only the outputs of decoder blocks 1.. (its loader rejects direction.0); row 5 (HF's last hidden state, after the final norm) is added before the final norm in llama.cpp");
    expect(describeRowExport([3])).toBe('wrote row 3 (hidden_states index) as llama.cpp control-vector direction.2');
    expect(describeRowExport([2, 4], 6)).toMatch(/rows 2, 4 .* direction\.1, direction\.3; skipped row 0 .* and row 1 .*; skipped rows 3, 5: not requested$/);
  });
  test('saveGguf returns that line; a [hidden] vector without a layer asks for one', () => {
    const five = vec(Array.from({ length: 6 }, (_, r) => [r, 1, 2]));
    const f = path.join(tmp, 'cv.gguf');
    expect(five.saveGguf(f, { modelHint: 'llama' })).toMatch(/^wrote rows 2\.\.5 .* direction\.1\.\.direction\.4; skipped row 0/);
    expect([...readControlVector(f).directions.keys()]).toEqual([1, 2, 3, 4]);
    const bare = vec([[1, 2, 3]], M, 'bare.safetensors');
    const g = path.join(tmp, 'bare.gguf');
    const e = errorOf(() => bare.saveGguf(g, { modelHint: 'llama' })).message;
    expect(e).toMatch(/bare\.gguf: vector bare\.safetensors is a single \[3\] direction of unknown layer; give .*--layer L/);
    expect(fs.existsSync(g)).toBe(false);
    expect(vec([[1, 2, 3]], { ...M, singleLayer: 4 }).saveGguf(g, { modelHint: 'llama' })).toBe('wrote row 4 (hidden_states index) as llama.cpp control-vector direction.3');
  });
});
