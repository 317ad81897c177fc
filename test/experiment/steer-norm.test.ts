/**
 * The example study on the tiny test checkpoint, through the CLI (`persona run`, `plan`, `collect`) and
 * directly: results against an independent forward pass, tensor hygiene, the shared logits cache; and
 * configs/README.md in sync with the schemas.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { main } from '../../cli/main';
import { generatedSection, renderConfigDocs } from '../../lib/experiment/docs';
import { loadExperiment, runExperiment } from '../../lib/experiment/runner';
import seedrandom from 'seedrandom';
import { Model } from '../../lib/model/checkpoint';
import { WEIGHT_NAMES } from '../../lib/model/transformer';
import { gaussianSampler, randomDirection } from '../../lib/persona/stats';
import { REPO, TINY, tmpDir, writeFiles } from './helpers';

const SMALL = path.join(REPO, 'configs/examples/steer-norm-small.yaml');

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

test('persona run / plan --slurm / collect on the example config', async () => {
  const out = path.join(tmpDir('cli'), 'runs');
  const common = ['--output-dir', out, '--cache-dir', path.join(out, 'cache')];
  const r = await cli(['run', SMALL, ...common, '--backend', 'cpu', '--no-progress']);
  expect(r.err).not.toMatch(/error/i);
  expect(r.code).toBe(0);
  const summaryFile = r.out.trim().split('\n').pop()!;
  expect(summaryFile).toBe(path.join(out, 'steer-norm-small', 'summary.json'));
  const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
  expect(summary.run).toMatchObject({ experiment: 'steer-norm-small', cells: 4, collected: 4 });
  expect(summary.monotonic_in_abs_coef).toEqual({ 1: true, 4: true });
  for (const f of ['results.csv', 'figures/kl_by_layer.svg', 'figures/kl_by_layer.png', 'figures/kl_by_layer.csv']) expect(fs.existsSync(path.join(out, 'steer-norm-small', f))).toBe(true);
  const again = await cli(['run', SMALL, ...common, '--backend', 'cpu']);
  expect(again.err).toMatch(/0 computed, 4 already done/);

  const plan = await cli(['plan', SMALL, ...common, '--slurm', '--shards', '2']);
  expect(plan.code).toBe(0);
  const script = fs.readFileSync(plan.out.trim(), 'utf8');
  expect(script).toContain('#SBATCH --array=0-1');
  expect(script).toContain('--shard "${SLURM_ARRAY_TASK_ID}/2"');
  expect(fs.existsSync(path.join(out, 'steer-norm-small', 'slurm'))).toBe(true);
  const list = await cli(['plan', SMALL, ...common, '--json']);
  expect(JSON.parse(list.out).cells.map((c: { done: boolean }) => c.done)).toEqual([true, true, true, true]);
  const col = await cli(['collect', SMALL, ...common]);
  expect(col.code).toBe(0);
  expect(col.out.trim()).toBe(summaryFile);
});

test('bad input through the CLI: one clear line naming file, line and key; exit 1', async () => {
  const d = writeFiles(tmpDir('clibad'), { 'bad.yaml': `extends: ${SMALL}\nexperiment: bad\nsweep:\n  layer: [1, 9]\n` });
  const r = await cli(['run', path.join(d, 'bad.yaml'), '--output-dir', path.join(d, 'runs')]);
  expect(r.code).toBe(1);
  expect(r.err.trim()).toMatch(/^persona: .*bad\.yaml:4, field 'sweep\.layer\[1\]': layer 9 is beyond the model/);
  expect(fs.existsSync(path.join(d, 'runs'))).toBe(false); // validation happens before anything is written
  const s = await cli(['run', SMALL, '--shard', '2/2']);
  expect(s.code).toBe(1);
  expect(s.err).toMatch(/0 ≤ i < n/);
});

test('cell results match an independent computation; no tensors leak; base logits are cached once', async () => {
  const d = tmpDir('direct');
  const tokens = [1, 5, 9, 5];
  const cfg = path.join(writeFiles(d, { 'c.yaml': `experiment: direct\nstudy: logit-lens/steer-norm\nparams:\n  model: ${TINY}\n  tokens: [${tokens}]\nsweep:\n  layer: [0]\n  coef: [0, 3]\n` }), 'c.yaml');
  const exp = loadExperiment(cfg, { outputDir: path.join(d, 'runs'), cacheDir: path.join(d, 'cache') });
  const before = tf.memory().numTensors;
  await runExperiment(exp, { progress: false });
  expect(tf.memory().numTensors).toBe(before); // the shared model is disposed at the end of the run
  const results = exp.cells.map((c) => JSON.parse(fs.readFileSync(path.join(exp.config.runDir, 'cells', c.id, 'result.json'), 'utf8')).result);
  expect(results[0]).toEqual({ kl: 0, logit_change: 0, top1_agreement: 1 });

  // Independent of the hook mechanism: steering at layer 0 (the embedding output, every position) equals
  // adding 3·v to the embedding rows of the tokens; run that edited model with no hooks.
  const model = await Model.load(TINY);
  const v = randomDirection(model.config.hiddenSize, 1, gaussianSampler(seedrandom('steer-norm:0')));
  const embed = model.params.get(WEIGHT_NAMES.embed)!;
  const edited = tf.tidy(() => {
    const rows = new Float32Array(embed.shape[0] * embed.shape[1]);
    for (const t of new Set(tokens)) rows.set(v.map((x) => 3 * x), t * embed.shape[1]);
    return tf.add(embed, tf.tensor(rows, embed.shape));
  });
  const steeredModel = new Model(model.config, new Map(model.params).set(WEIGHT_NAMES.embed, edited));
  const logits = (m: Model) => {
    const o = m.forward({ ids: [tokens] });
    const a = Array.from(o.logits!.dataSync());
    o.logits!.dispose();
    return a;
  };
  const base = logits(model);
  const steered = logits(steeredModel);
  edited.dispose();
  model.dispose();
  const V = model.config.vocabSize;
  let kl = 0;
  for (let t = 0; t < tokens.length; t++) {
    const lsm = (x: number[]) => {
      const row = x.slice(t * V, (t + 1) * V);
      const lse = Math.log(row.reduce((s, y) => s + Math.exp(y), 0));
      return row.map((y) => y - lse);
    };
    const p = lsm(base);
    const q = lsm(steered);
    kl += p.reduce((s, lp, i) => s + Math.exp(lp) * (lp - q[i]), 0);
  }
  expect(results[1].kl).toBeGreaterThan(0.01);
  expect(results[1].kl).toBeCloseTo(kl / tokens.length, 4);
  expect(tf.memory().numTensors).toBe(before);
  const cacheEntries = fs.readdirSync(path.join(d, 'cache', 'logits')).flatMap((p) => fs.readdirSync(path.join(d, 'cache', 'logits', p)));
  expect(cacheEntries).toHaveLength(1); // both cells share one unsteered forward pass
});

test('configs/README.md key tables are generated from the schemas and up to date', () => {
  const section = generatedSection(path.join(REPO, 'configs/README.md'));
  expect(section).not.toBeNull();
  expect(section).toBe(renderConfigDocs());
  expect(section).toContain('| `cache_dir` | string | `"runs/cache"` |');
  expect(section).toContain('### Study `logit-lens/steer-norm`');
});
