/** `persona vector compare | combine` and the GGUF export's row report, run in-process on small files. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaVector } from '../../lib/persona/vector';
import { writeSafetensors } from '../../lib/io/safetensors';
import { readControlVector } from '../../lib/io/gguf';
import { runCli } from '../support/cli';

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vector-cli-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (args: string[]) => runCli(args, 'cpu');
function ok(r: { code: number; stderr: string }): void {
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${r.stderr}`);
}
const file = (name: string, rows: number[][]) => {
  const f = path.join(tmp, name);
  writeSafetensors(f, { persona_vector: { shape: [rows.length, rows[0].length], data: Float32Array.from(rows.flat()) } });
  return f;
};

let A: string;
let B: string;
let C: string;
beforeAll(() => {
  A = file('a.safetensors', [[1, 0, 0], [3, 4, 0], [1, 1, 0]]);
  B = file('b.safetensors', [[0, 1, 0], [6, 8, 0], [1, -1, 0]]);
  C = file('c.safetensors', [[1, 0, 0], [0, 0, 2], [1, 1, 1]]);
});

test('compare prints layer, cosine, norm A, norm B and writes --json', async () => {
  const json = path.join(tmp, 'cmp.json');
  const r = await run(['vector', 'compare', A, B, '--json', json]);
  ok(r);
  const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
  expect(lines).toEqual([['layer', 'cosine', 'norm', 'A', 'norm', 'B'], ['0', '0', '1', '1'], ['1', '1', '5', '10'], ['2', '0', '1.414', '1.414']]);
  const j = JSON.parse(fs.readFileSync(json, 'utf8'));
  expect(j.layers[1]).toEqual({ layer: 1, cosine: 1, normA: 5, normB: 10 });
  expect(j).toMatchObject({ a: A, b: B });
});

test('combine A:2 B:-0.5 --orthogonalize-against C round-trips through the written file', async () => {
  const out = path.join(tmp, 'mix.safetensors');
  ok(await run(['vector', 'combine', '--out', out, `${A}:2`, `${B}:-0.5`, '--orthogonalize-against', C]));
  const v = PersonaVector.load(out);
  expect(fs.existsSync(`${out}.json`)).toBe(true);
  expect(v.meta).toMatchObject({ operation: 'weighted_sum_orthogonalized', sources: [A, B], weights: [2, -0.5], orthogonalizedAgainst: C });
  // sum rows: [2,-0.5,0], [3,4,0], [1.5,2.5,0]; minus their components along C's rows
  expect(Array.from(v.layer(0))).toEqual([0, -0.5, 0]);
  expect(Array.from(v.layer(1))).toEqual([3, 4, 0]);
  expect(Array.from(v.layer(2))).toEqual([1.5 - 4 / 3, 2.5 - 4 / 3, -4 / 3].map(Math.fround));
  // plain sum, bare FILE = weight 1; compare against itself gives cosine 1 everywhere
  const sum = path.join(tmp, 'sum.safetensors');
  ok(await run(['vector', 'combine', '--out', sum, A, `${B}:1`]));
  expect(Array.from(PersonaVector.load(sum).layer(1))).toEqual([9, 12, 0]);
  const self = await run(['vector', 'compare', sum, sum]);
  ok(self);
  for (const l of self.stdout.trim().split('\n').slice(1)) expect(Number(l.trim().split(/\s+/)[1])).toBeCloseTo(1, 6);
});

test('errors are one line naming the file or flag', async () => {
  const wide = file('wide.safetensors', [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]);
  const cases: [string[], RegExp][] = [
    [['vector', 'compare', A, wide], /^persona: compare: .*a\.safetensors \[3, 3\] and .*wide\.safetensors \[3, 4\] differ in hidden size \(3 vs 4\)\n$/],
    [['vector', 'compare', A], /field 'files': vector compare takes two files \(A B\), got 1 file\n$/],
    [['vector', 'combine', `${A}:1`], /field 'out': vector combine needs --out/],
    [['vector', 'combine', '--out', path.join(tmp, 'x.pt'), `${A}:1`], /x\.pt, field 'out': combine writes \.safetensors/],
    [['vector', 'combine', '--out', path.join(tmp, 'x.safetensors'), `${A}:two`], /a\.safetensors: '.*a\.safetensors:two' is not FILE:WEIGHT/],
    [['vector', 'combine', '--out', path.join(tmp, 'x.safetensors'), A, '--orthogonalize-against', wide], /combine: .*a\.safetensors \[3, 3\] and .*wide\.safetensors \[3, 4\]/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(re);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }
  expect(fs.existsSync(path.join(tmp, 'x.safetensors'))).toBe(false);
});

test('export to GGUF reports rows written and skipped; a [hidden] file needs --layer', async () => {
  const five = file('five.safetensors', Array.from({ length: 6 }, (_, r) => [r + 1, 1, 2]));
  const g = path.join(tmp, 'five.gguf');
  const r = await run(['vector', 'export', five, g]);
  ok(r);
  expect(r.stderr).toMatch(/five\.gguf: wrote rows 2\.\.5 \(hidden_states index\) as llama\.cpp control-vector direction\.1\.\.direction\.4; skipped row 0 \(embedding output\) and row 1 \(block 0 output\): llama\.cpp steers only the outputs of decoder blocks 1\.\./);
  expect([...readControlVector(g).directions.keys()]).toEqual([1, 2, 3, 4]);
  const bare = path.join(tmp, 'bare.safetensors');
  writeSafetensors(bare, { v: { shape: [3], data: Float32Array.from([1, 2, 3]) } });
  const bg = path.join(tmp, 'bare.gguf');
  const e = await run(['vector', 'export', bare, bg]);
  expect(e.code).toBe(1);
  expect(e.stderr).toMatch(/^persona: .*bare\.safetensors, field 'layer': a \[3\] vector has no layer index; give --layer L/);
  expect(fs.existsSync(bg)).toBe(false);
  const withLayer = await run(['vector', 'export', bare, bg, '--layer', '3']);
  ok(withLayer);
  expect(withLayer.stderr).toMatch(/wrote row 3 \(hidden_states index\) as llama\.cpp control-vector direction\.2\n$/);
  expect(Array.from(readControlVector(bg).directions.get(2)!)).toEqual([1, 2, 3]);
});
