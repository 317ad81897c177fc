/**
 * `persona playground build` refusing what the page could not run (before writing anything), and the page bundles
 * cached under dist/playground/: rebuilt only when a source they were built from changes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSite, pageAssetsDir } from '../../lib/playground';
import { PersonaVector } from '../../lib/persona/vector';
import { runCli } from '../support/cli';

const ORGANISM = path.join(__dirname, '..', '..', 'models', 'organism');
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-playground-site-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function vectorFile(name: string, rows: number, hidden: number, meta: Record<string, unknown> = {}): string {
  const file = path.join(tmp, `${name}.safetensors`);
  new PersonaVector(new Float32Array(rows * hidden).fill(0.5), rows, hidden, { layerConvention: 'hf_hidden_states', trait: 'evil', ...meta }).save(file);
  return file;
}

test('refuses vectors the model cannot use, naming the file; writes nothing', async () => {
  const out = path.join(tmp, 'site-bad');
  await expect(buildSite({ modelDir: ORGANISM, vectors: [vectorFile('wide', 7, 64)], outDir: out })).rejects.toThrow(/wide\.safetensors: vector has hidden size 64, the model .* has 128/);
  await expect(buildSite({ modelDir: ORGANISM, vectors: [vectorFile('deep', 9, 128)], outDir: out })).rejects.toThrow(/deep\.safetensors: vector has 9 rows .* has 6 layers \(7 rows\)/);
  const a = vectorFile('a', 7, 128, { name: 'evil' });
  const b = vectorFile('b', 7, 128, { name: 'evil' });
  await expect(buildSite({ modelDir: ORGANISM, vectors: [a, b], outDir: out })).rejects.toThrow(/two vectors are named 'evil'/);
  await expect(buildSite({ modelDir: ORGANISM, vectors: [], outDir: out })).rejects.toThrow(/at least one persona vector/);
  expect(fs.existsSync(out)).toBe(false);
});

test('the CLI names a bad neutral-prompts file', async () => {
  const f = path.join(tmp, 'neutral.txt');
  fs.writeFileSync(f, 'only one\n');
  const r = await runCli(['playground', 'build', '--model', ORGANISM, '--vectors', vectorFile('ok', 7, 128), '--out', path.join(tmp, 's'), '--neutral-prompts', f], null);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`${f}: needs at least two prompts (one per line), found 1`);
});

test('the served page is bundled once and again only when a source changed', async () => {
  const dir = await pageAssetsDir('served');
  for (const f of ['index.html', 'playground.js', 'playground.css']) expect(fs.statSync(path.join(dir, f)).size).toBeGreaterThan(0);
  const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
  expect(html).toContain('<script src="playground.js"></script>');
  const js = path.join(dir, 'playground.js');
  const before = fs.statSync(js).mtimeMs;
  expect(await pageAssetsDir('served')).toBe(dir);
  expect(fs.statSync(js).mtimeMs).toBe(before);
  // A source recorded with another size than it has now: rebuilt.
  const stampFile = path.join(dir, 'build.json');
  const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
  const some = Object.keys(stamp.inputs).find((f) => f.endsWith(path.join('playground', 'session.ts')))!;
  expect(some).toBeDefined();
  stamp.inputs[some][0] += 1;
  fs.writeFileSync(stampFile, JSON.stringify(stamp));
  await new Promise((r) => setTimeout(r, 20));
  await pageAssetsDir('served');
  expect(fs.statSync(js).mtimeMs).toBeGreaterThan(before);
  expect(JSON.parse(fs.readFileSync(stampFile, 'utf8')).inputs[some][0]).toBe(fs.statSync(some).size);
});
