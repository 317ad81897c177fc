/**
 * `persona extract --method`: the named methods only, each file's metadata naming its method, equal to the library on
 * the same rollouts; an unknown method or a bad --probe-l2 refused before any rollout is written.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { readArtifacts } from '../../lib/persona/artifacts';
import { vectorsFromRollouts } from '../../lib/persona/extract';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { PersonaVector } from '../../lib/persona/vector';
import { Tokenizer } from '../../lib/tokenizer';
import { runCli } from '../support/cli';

const ORGANISM = path.join(__dirname, '..', '..', 'models', 'organism');
let tmp: string;
let artifacts: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-extract-method-'));
  const a = readArtifacts(path.join(ORGANISM, 'artifacts', 'trait_data_extract', 'evil.json'));
  artifacts = path.join(tmp, 'evil.json');
  fs.writeFileSync(artifacts, JSON.stringify({ ...a, questions: a.questions.slice(0, 4) }));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const base = (out: string) => ['extract', '--model', ORGANISM, '--trait', 'evil', '--artifacts', artifacts, '--out', out, '--judge', 'organism', '--samples', '1', '--max-new-tokens', '32', '--batch-size', '20'];

test('--method pca_diff probe writes those two vectors, as the library computes them from the same rollouts', async () => {
  const out = path.join(tmp, 'two');
  const r = await runCli([...base(out), '--method', 'pca_diff', 'probe'], 'wasm');
  if (r.code !== 0) throw new Error(r.stderr);
  expect(r.stdout).toMatch(/^pca_diff\s/m);
  expect(r.stdout).toMatch(/^probe\s/m);
  expect(r.stdout).not.toMatch(/^response_avg_diff\s/m);
  expect(fs.readdirSync(out).filter((f) => f.endsWith('.safetensors')).sort()).toEqual(['evil_pca_diff.safetensors', 'evil_probe.safetensors']);
  await useBackend('wasm', () => undefined);
  const model = await Model.load(ORGANISM);
  try {
    const rows = (side: string) => readRolloutsCsv(path.join(out, `evil_${side}_instruct.csv`), 'evil').rows;
    const ref = await vectorsFromRollouts({ model, tokenizer: Tokenizer.load(ORGANISM), pos: rows('pos'), neg: rows('neg'), trait: 'evil', method: ['pca_diff', 'probe'] });
    for (const m of ['pca_diff', 'probe'] as const) {
      const saved = PersonaVector.load(path.join(out, `evil_${m}.safetensors`));
      expect(saved.meta).toMatchObject({ method: m, trait: 'evil', scale: 'response_avg_diff_norm' });
      expect(Array.from(saved.data).every((x, i) => Math.abs(x - ref.vectors[m].data[i]) < 1e-5)).toBe(true);
    }
    expect(PersonaVector.load(path.join(out, 'evil_pca_diff.safetensors')).meta.centered).toBe(false);
    expect(PersonaVector.load(path.join(out, 'evil_probe.safetensors')).meta.probeL2).toBe(0.01);
  } finally {
    model.dispose();
  }
});

test('an unknown --method or a non-positive --probe-l2 is refused before any rollout is written', async () => {
  const bad = await runCli([...base(path.join(tmp, 'bad')), '--method', 'mean'], 'wasm');
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/method.*mean.*(response_avg_diff|Choices)/is);
  const l2 = await runCli([...base(path.join(tmp, 'l2')), '--method', 'probe', '--probe-l2', '0'], 'wasm');
  expect(l2.code).not.toBe(0);
  expect(l2.stderr).toMatch(/probe L2 penalty must be a positive number, got 0/);
  expect(fs.existsSync(path.join(tmp, 'bad', 'evil_pos_instruct.csv'))).toBe(false);
  expect(fs.existsSync(path.join(tmp, 'l2', 'evil_pos_instruct.csv'))).toBe(false);
});
