/**
 * Every extraction method on the organism: one extraction (the quickstart's settings) gives five evil vectors, and
 * steering with each at layer 2 moves the organism judge's evil score the right way — up from the unsteered model
 * without a system prompt, down from the model under the positive (evil) prompt — by more than a norm-matched random
 * direction does (a random push at this size also disturbs answers, so it is the control, not zero).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { OrganismJudge } from '../../lib/organism/judge';
import { steer } from '../../lib/model/interventions';
import { readTraitArtifacts } from '../../lib/persona/artifacts';
import { SteeringSetting, evaluateSteering } from '../../lib/persona/evaluate';
import { extractPersonaVector } from '../../lib/persona/extract';
import { assistantSystemPrompt } from '../../lib/persona/rollouts';
import { gaussianSampler, randomDirection } from '../../lib/persona/stats';
import { EXTRACTION_METHODS, PersonaVector } from '../../lib/persona/vector';
import { Tokenizer } from '../../lib/tokenizer';

const ORGANISM = path.resolve(__dirname, '../../models/organism');
const L = 2;
const COEF = 2;

test('each extraction method steers the organism: up without a prompt, down under the evil prompt, beyond a random direction', async () => {
  await useBackend('wasm', () => undefined);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-methods-'));
  const model = await Model.load(ORGANISM);
  try {
    const tokenizer = Tokenizer.load(ORGANISM);
    const arts = readTraitArtifacts(path.join(ORGANISM, 'artifacts'), 'evil');
    const judges = { trait: new OrganismJudge('evil'), coherence: new OrganismJudge('coherence') };
    const ex = await extractPersonaVector({ model, tokenizer, artifacts: arts.extract, trait: 'evil', judges, outDir: tmp, samples: 1, maxNewTokens: 48, temperature: 1, seed: '0', batchSize: 32, method: EXTRACTION_METHODS });
    expect(ex.kept).toBeGreaterThan(80);
    // Saved with the method in the metadata, [N+1, hidden] as every vector.
    for (const m of EXTRACTION_METHODS) {
      const v = PersonaVector.load(ex.files.vectors[m]);
      expect(v.meta.method).toBe(m);
      expect([v.numRows, v.hidden]).toEqual([model.config.numLayers + 1, model.config.hiddenSize]);
    }
    const N = model.config.numLayers;
    const dirs: [string, Float32Array][] = EXTRACTION_METHODS.map((m) => [m, ex.vectors[m].layer(L)]);
    dirs.push(['random', randomDirection(model.config.hiddenSize, ex.vectors.response_avg_diff.norm(L), gaussianSampler(seedrandom('null')))]);
    const evaluate = async (settings: SteeringSetting[], system?: string) =>
      Object.fromEntries((await evaluateSteering({ model, tokenizer, artifacts: arts.eval, trait: 'evil', judges, settings, system, outDir: tmp, samples: 3, maxNewTokens: 48, seed: '0', batchSize: 60 })).map((r) => [r.label, r.traitMean]));
    const up = await evaluate([{ label: 'none_unsteered', interventions: [] }, ...dirs.map(([name, v]) => ({ label: `none_${name}`, interventions: [steer(v, L, COEF, 'response', N)] }))]);
    const down = await evaluate([{ label: 'pos_unsteered', interventions: [] }, ...dirs.map(([name, v]) => ({ label: `pos_${name}`, interventions: [steer(v, L, -COEF, 'response', N)] }))], assistantSystemPrompt('evil', arts.extract.instruction[0].pos));
    // Measured on wasm (layer 2, coef 2, 60 answers each), up / down: unsteered 4.2 / 93.3, random 4.2 / 64.0,
    // response_avg_diff 35.3 / 34.4, probe 29.6 / 32.3, pca_diff 26.6 / 39.9, prompt_avg_diff 20.1 / 28.6, prompt_last_diff
    // 11.0 / 8.8.
    for (const m of EXTRACTION_METHODS) {
      expect(up[`none_${m}`]).toBeGreaterThan(up.none_unsteered + 5);
      expect(up[`none_${m}`]).toBeGreaterThan(up.none_random + 5);
      expect(down[`pos_${m}`]).toBeLessThan(down.pos_unsteered - 40);
      expect(down[`pos_${m}`]).toBeLessThan(down.pos_random - 20);
    }
  } finally {
    model.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 300_000);
