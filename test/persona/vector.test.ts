import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaVector, VectorMeta, metaFromPaperFileName, project } from '../../lib/persona/vector';
import { writeSafetensors } from '../../lib/io/safetensors';
import { readControlVector } from '../../lib/io/gguf';
import { PersonaError } from '../../lib/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vector-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const meta: VectorMeta = { layerConvention: 'hf_hidden_states', model: 'tiny', trait: 'evil', method: 'response_avg_diff', counts: { kept: 7, total: 10 }, threshold: 50 };
// 3 rows (2 decoder layers), hidden 4
const rows = [
  [0, 0, 0, 0],
  [3, 4, 0, 0],
  [1, -2, 2, 0],
];
const v = new PersonaVector(Float32Array.from(rows.flat()), 3, 4, meta);

function errorOf(fn: () => unknown): Error {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(PersonaError); return e as Error; }
  throw new Error('expected a PersonaError');
}
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('rows, norms, units', () => {
  test('layer is a copy of the hidden_states row', () => {
    expect(Array.from(v.layer(1))).toEqual([3, 4, 0, 0]);
    const row = v.layer(2);
    row[0] = 99;
    expect(v.layer(2)[0]).toBe(1);
    expect(v.numLayers).toBe(2);
  });
  test('norm and unit (hand-computed)', () => {
    expect(v.norm(1)).toBe(5);
    expect(v.norm(2)).toBe(3);
    expect(Array.from(v.unit(1))).toEqual([Math.fround(0.6), Math.fround(0.8), 0, 0]);
    expect(Array.from(v.unit(2))).toEqual([1 / 3, -2 / 3, 2 / 3, 0].map(Math.fround));
    expect(errorOf(() => v.unit(0)).message).toMatch(/layer 0 .* all zeros/);
  });
  test('layer out of range names the range', () => {
    expect(errorOf(() => v.layer(3)).message).toMatch(/layer 3 is out of range for vector 'evil @ tiny': layers 0\.\.2/);
    expect(errorOf(() => v.norm(-1)).message).toMatch(/layers 0\.\.2/);
  });
});

describe('arithmetic', () => {
  const w = new PersonaVector(Float32Array.from([1, 1, 1, 1, 0, 0, 0, 1, 2, 2, 2, 2]), 3, 4, { layerConvention: 'hf_hidden_states', model: 'tiny', trait: 'kind' });
  test('add, sub, scale, neg', () => {
    expect(Array.from(v.add(w).data)).toEqual([1, 1, 1, 1, 3, 4, 0, 1, 3, 0, 4, 2]);
    expect(Array.from(v.sub(w).data)).toEqual([-1, -1, -1, -1, 3, 4, 0, -1, -1, -4, 0, -2]);
    expect(Array.from(v.scale(2).layer(2))).toEqual([2, -4, 4, 0]);
    expect(Array.from(v.neg().layer(1))).toEqual([-3, -4, -0, -0]);
    expect(v.add(w).meta.model).toBe('tiny');
    expect(v.add(w).meta.derived).toBe("'evil @ tiny' + 'kind @ tiny'");
    expect(Array.from(v.data.slice(4, 8))).toEqual([3, 4, 0, 0]); // operands unchanged
  });
  test('shape is checked', () => {
    const other = new PersonaVector(new Float32Array(3 * 8), 3, 8, { layerConvention: 'hf_hidden_states' });
    expect(errorOf(() => v.add(other)).message).toMatch(/add: vector 'evil @ tiny' has shape \[3, 4\], vector \(unnamed\) has \[3, 8\]/);
    expect(() => v.scale(NaN)).toThrow(PersonaError);
  });
});

describe('random (norm-matched null)', () => {
  const big = new PersonaVector(Float32Array.from({ length: 4 * 256 }, (_, i) => (i < 256 ? 0 : Math.cos(i) * (1 + (i >> 8)))), 4, 256, meta);
  test('per-layer norm matched, zero rows stay zero, seeded', () => {
    const r = PersonaVector.random(big, 'seed-a');
    for (let L = 0; L < 4; L++) expect(r.norm(L)).toBeCloseTo(big.norm(L), 3);
    expect(r.norm(0)).toBe(0);
    expect(bits(PersonaVector.random(big, 'seed-a').data).equals(bits(r.data))).toBe(true);
    expect(bits(PersonaVector.random(big, 'seed-b').data).equals(bits(r.data))).toBe(false);
    expect(r.meta).toMatchObject({ method: 'random', seed: 'seed-a', model: 'tiny' });
  });
  test('random directions are nearly orthogonal to the original in 256 dims', () => {
    const r = PersonaVector.random(big, 'seed-c');
    for (let L = 1; L < 4; L++) {
      const a = big.unit(L);
      const b = r.unit(L);
      let c = 0;
      for (let i = 0; i < 256; i++) c += a[i] * b[i];
      expect(Math.abs(c)).toBeLessThan(0.3); // |cos| ~ 1/16 for random directions
    }
  });
});

describe('project', () => {
  test('a . v / |v| per row (hand-computed)', () => {
    const acts = Float32Array.from([1, 2, 3, 4, 0, 0, -3, -4]);
    expect(Array.from(project(acts, 4, 2, Float32Array.from([3, 4])))).toEqual([11 / 5, 5, 0, -5].map(Math.fround));
    expect(Array.from(project(acts, 4, 2, Float32Array.from([6, 8])))).toEqual([11 / 5, 5, 0, -5].map(Math.fround)); // scale-free
  });
  test('bad input', () => {
    expect(errorOf(() => project(new Float32Array(6), 3, 2, new Float32Array(3))).message).toMatch(/direction has hidden size 3, activations have 2/);
    expect(errorOf(() => project(new Float32Array(5), 3, 2, new Float32Array(2))).message).toMatch(/5 values, shape \[3, 2\] needs 6/);
    expect(errorOf(() => project(new Float32Array(6), 3, 2, new Float32Array(2))).message).toMatch(/norm 0/);
  });
});

test('checkHidden / checkLayers name both sides', () => {
  expect(errorOf(() => v.checkHidden(8, "model 'Qwen/Qwen2.5-7B'")).message).toBe("vector 'evil @ tiny' has hidden size 4, model 'Qwen/Qwen2.5-7B' has 8");
  expect(() => v.checkHidden(4, 'model')).not.toThrow();
  expect(errorOf(() => v.checkLayers(28, 'model m')).message).toMatch(/has 2 layers \(3 rows\), model m has 28/);
});

test('constructor rejects inconsistent input', () => {
  expect(() => new PersonaVector(new Float32Array(5), 2, 3, meta)).toThrow(/5 values, shape \[2, 3\] needs 6/);
  expect(() => new PersonaVector(Float32Array.from([1, NaN]), 1, 2, meta)).toThrow(/non-finite value NaN at row 0, column 1/);
  expect(() => new PersonaVector(new Float32Array(2), 1, 2, { layerConvention: 'other' } as unknown as VectorMeta)).toThrow(/layerConvention/);
});

describe('files', () => {
  const special = new PersonaVector(Float32Array.from([-0, 1e-45, 3.4e38, -1.17e-38, 0.1, 0.2, 0.3, 0.4, 5, 6, 7, 8]), 3, 4, meta);

  test('safetensors + readable sidecar round trip, bit-exact', () => {
    const f = path.join(tmp, 'evil.safetensors');
    special.save(f);
    const side = JSON.parse(fs.readFileSync(`${f}.json`, 'utf8'));
    expect(side).toMatchObject({ format: 'persona-vector', tensor: 'persona_vector', shape: [3, 4], meta });
    const back = PersonaVector.load(f);
    expect(back.numRows).toBe(3);
    expect(back.hidden).toBe(4);
    expect(back.meta).toEqual(meta);
    expect(bits(back.data).equals(bits(special.data))).toBe(true);
    expect(back.source).toBe(f);
  });

  test('without the sidecar the metadata embedded in the header is used', () => {
    const f = path.join(tmp, 'alone.safetensors');
    special.save(f);
    fs.unlinkSync(`${f}.json`);
    expect(PersonaVector.load(f).meta).toEqual(meta);
  });

  test('sidecar disagreeing with the tensor is an error naming the sidecar', () => {
    const f = path.join(tmp, 'mismatch.safetensors');
    special.save(f);
    const side = JSON.parse(fs.readFileSync(`${f}.json`, 'utf8'));
    side.shape = [5, 4];
    fs.writeFileSync(`${f}.json`, JSON.stringify(side));
    expect(errorOf(() => PersonaVector.load(f)).message).toMatch(/mismatch\.safetensors\.json, field 'shape': sidecar says shape \[5, 4\], tensor is \[3, 4\]/);
  });

  test('a [hidden] file is a single layer', () => {
    const f = path.join(tmp, 'single.safetensors');
    writeSafetensors(f, { direction: { shape: [4], data: Float32Array.from([1, 2, 2, 0]) } });
    const s = PersonaVector.load(f, { layer: 20 });
    expect(s.numRows).toBe(1);
    expect(s.numLayers).toBeUndefined();
    expect(Array.from(s.layer(20))).toEqual([1, 2, 2, 0]);
    expect(s.norm(20)).toBe(3);
    expect(errorOf(() => s.layer(19)).message).toMatch(/holds only layer 20, not layer 19/);
    expect(errorOf(() => PersonaVector.load(f).layer(20)).message).toMatch(/single \[4\] direction of unknown layer/);
    // saved again, it stays a [hidden] tensor that remembers its layer
    const g = path.join(tmp, 'single2.safetensors');
    s.save(g);
    const again = PersonaVector.load(g);
    expect(again.meta.singleLayer).toBe(20);
    expect(Array.from(again.layer(20))).toEqual([1, 2, 2, 0]);
  });

  test('.pt round trip (paper format), bit-exact', () => {
    const f = path.join(tmp, 'tiny_evil_response_avg_diff.pt');
    special.savePt(f);
    const back = PersonaVector.load(f);
    expect(bits(back.data).equals(bits(special.data))).toBe(true);
    expect(back.meta).toEqual(meta);
    fs.unlinkSync(`${f}.json`);
    // without a sidecar, what the paper's file names say
    expect(PersonaVector.load(f).meta).toEqual({ layerConvention: 'hf_hidden_states', model: 'tiny', trait: 'evil', method: 'response_avg_diff' });
  });

  test('paper file names', () => {
    expect(metaFromPaperFileName('/x/Qwen3-4B_evil_response_avg_diff.pt')).toMatchObject({ model: 'Qwen3-4B', trait: 'evil', method: 'response_avg_diff' });
    expect(metaFromPaperFileName('sycophantic_prompt_last_diff.pt')).toMatchObject({ trait: 'sycophantic', method: 'prompt_last_diff' });
    expect(metaFromPaperFileName('whatever.pt')).toEqual({ layerConvention: 'hf_hidden_states' });
  });

  test('GGUF export: row L becomes direction.<L-1>; import puts it back', () => {
    const f = path.join(tmp, 'cv.gguf');
    const five = new PersonaVector(Float32Array.from({ length: 6 * 4 }, (_, i) => i + 1), 6, 4, meta); // 5 layers
    five.saveGguf(f, { modelHint: 'qwen2' });
    const cv = readControlVector(f);
    expect([...cv.directions.keys()]).toEqual([1, 2, 3, 4]);
    expect(Array.from(cv.directions.get(1)!)).toEqual(Array.from(five.layer(2)));
    expect(Array.from(cv.directions.get(4)!)).toEqual(Array.from(five.layer(5)));
    const back = PersonaVector.load(f);
    expect(back.numRows).toBe(6);
    expect(back.meta).toMatchObject({ modelFamily: 'qwen2', rows: [2, 3, 4, 5] });
    for (let L = 2; L <= 5; L++) expect(back.layer(L)).toEqual(five.layer(L));
    expect(back.norm(0) + back.norm(1)).toBe(0);
    expect(errorOf(() => five.saveGguf(f, { modelHint: 'qwen2', rows: [1] })).message).toMatch(/row 1 cannot be written to GGUF/);
    expect(PersonaVector.load(f, { numLayers: 8 }).numRows).toBe(9);
  });

  test('unknown extension, missing file', () => {
    expect(errorOf(() => PersonaVector.load(path.join(tmp, 'v.npy'))).message).toMatch(/unknown persona vector format '\.npy'/);
    expect(errorOf(() => PersonaVector.load(path.join(tmp, 'missing.safetensors'))).message).toMatch(/missing\.safetensors/);
    expect(errorOf(() => special.save(path.join(tmp, 'v.bin'))).message).toMatch(/writes \.safetensors/);
  });
});
