/**
 * The quickstart's evil vector on webgpu against wasm's. The extraction (200 rollouts, judged, filtered, three methods)
 * runs on wasm with the quickstart's settings; on webgpu the activation pass over the same kept pairs must give the
 * same vectors (cosine ≥ 0.9999 at every layer, for every method). Generation on webgpu is checked against Hugging Face
 * in parity.test.ts; a whole quickstart run on lavapipe gave rollouts byte-identical to wasm's and cosine 1.0000000 at
 * every layer (README, GPU section), but regenerating 200 rollouts on a software GPU is too slow for CI.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { Tokenizer } from '../../lib/tokenizer';
import { readTraitArtifacts } from '../../lib/persona/artifacts';
import { extractPersonaVector, vectorsFromRollouts } from '../../lib/persona/extract';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { organismJudges } from '../../lib/organism/presets';
import { PersonaVector } from '../../lib/persona/vector';

const ORGANISM = path.resolve(__dirname, '../../models/organism');
// configs/organism/steering.yaml as the quickstart runs it: 1 sample per (question, instruction), 48 tokens, T = 1,
// seed 0, batches of 32 (the study's default), the paper's filter.
const SETTINGS = { samples: 1, maxNewTokens: 48, temperature: 1, seed: '0', batchSize: 32, threshold: 50, coherenceMin: 50 };

function cosine(a: Float32Array, b: Float32Array): number {
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

test('evil vector from the same rollouts: cosine ≥ 0.9999 per layer and method on webgpu vs wasm', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-webgpu-extract-'));
  const artifacts = readTraitArtifacts(path.join(ORGANISM, 'artifacts'), 'evil').extract;
  const tokenizer = Tokenizer.load(ORGANISM);
  const judges = organismJudges('evil');

  await useBackend('wasm', () => undefined);
  let model = await Model.load(ORGANISM);
  const ref = await extractPersonaVector({ model, tokenizer, artifacts, trait: 'evil', judges, outDir: path.join(tmp, 'wasm'), ...SETTINGS });
  model.dispose();
  expect(ref.kept).toBeGreaterThan(50);
  const refRows = { pos: readRolloutsCsv(ref.files.pos, 'evil').rows, neg: readRolloutsCsv(ref.files.neg, 'evil').rows };

  await useBackend('webgpu', () => undefined);
  model = await Model.load(ORGANISM);
  try {
    const ex = await vectorsFromRollouts({ model, tokenizer, pos: refRows.pos, neg: refRows.neg, trait: 'evil', threshold: SETTINGS.threshold, coherenceMin: SETTINGS.coherenceMin, batchSize: SETTINGS.batchSize });
    for (const method of Object.keys(ref.vectors) as (keyof typeof ref.vectors)[]) {
      const a = ex.vectors[method];
      const b = PersonaVector.load(ref.files.vectors[method]);
      for (let L = 0; L <= model.config.numLayers; L++) {
        const x = a.layer(L);
        const y = b.layer(L);
        // prompt_last at layer 0 is the embedding of the same last prompt token on both sides: a zero vector.
        if (y.every((v) => v === 0)) expect(Math.max(...x.map(Math.abs))).toBeLessThan(1e-6);
        else expect(cosine(x, y)).toBeGreaterThanOrEqual(0.9999);
      }
    }
    expect(ex.kept).toBe(ref.kept);
  } finally {
    model.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 300_000);
