/**
 * Studies shift, mitigation, screening and paper on a tiny untrained organism (same tokenizer and template
 * as the real one, 2 layers, hidden 16): the paper config runs the three studies in order through the
 * framework and merges one report; numbers are checked against direct computations (shift projection from
 * the cached adapter, AUROC by counting pairs, dataset mean of per-sample differences), the finetune cache
 * is shared across studies, training interventions change the adapters, tensors are not leaked, a rerun
 * computes nothing, and bad configs fail naming the file and key.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { PersonaError } from '../../lib/errors';
import { loadExperiment, runExperiment } from '../../lib/experiment/runner';
import { matchAlongCurve, resolveSteerLayer } from '../../lib/experiment/studies/mitigation';
import { acceptanceFindings, evaluateFindings, getKey, paperReport } from '../../lib/experiment/studies/paper';
import { Model } from '../../lib/model/checkpoint';
import { captureActivations } from '../../lib/model/capture';
import { renderedTexts, writeInitialCheckpoint } from '../../lib/organism/checkpoint';
import { traitArtifacts } from '../../lib/organism/datasets';
import { finetuneCounter, loadFinetune } from '../../lib/organism/finetune';
import { generateCorpus } from '../../lib/organism/generator';
import { readTraitArtifacts, writeArtifacts } from '../../lib/persona/artifacts';
import { renderItemPrompt } from '../../lib/persona/rollouts';
import { Tokenizer } from '../../lib/tokenizer';
import { tmpDir, writeFiles } from './helpers';

const TRAITS = ['evil', 'sycophantic'] as const;
let root = '';
let runs = '';
let cache = '';

/** Settings every tiny config shares (tiny answers, a filter every pair passes on an untrained model). */
const COMMON = `  model: organism
  max_new_tokens: 6
  batch_size: 16
  extract_threshold: 0
  extract_coherence_min: 0
  samples: 1
  finetune: {samples: 16, per_device_train_batch_size: 8}
`;

beforeAll(async () => {
  await useBackend('wasm', () => undefined); // ~4× faster than cpu on these tiny models
  root = tmpDir('studies-b');
  runs = path.join(root, 'runs');
  cache = path.join(runs, 'cache');
  const model = path.join(root, 'organism');
  writeInitialCheckpoint(model, renderedTexts(generateCorpus('studies-b', 1500)), { seed: 'studies-b', size: { hidden: 16, layers: 2, heads: 2, kvHeads: 1, intermediate: 32, maxPositions: 256 }, minCount: 1 });
  for (const t of TRAITS) {
    const a = traitArtifacts(t);
    writeArtifacts(path.join(model, 'artifacts'), t, { extract: { ...a.extract, questions: a.extract.questions.slice(0, 3) }, eval: { ...a.eval, questions: a.eval.questions.slice(0, 4) } });
  }
  writeFiles(root, {
    'shift.yaml': `experiment: t-shift\nstudy: shift\noutput_dir: ${runs}\ncache_dir: ${cache}\nparams:\n${COMMON}  traits: [evil, sycophantic]\n  layer_samples: 1\nsweep:\n  kind: [evil, flaw_agree]\n  version: [normal, I, II]\n`,
    'screening.yaml': `experiment: t-screening\nstudy: screening\noutput_dir: ${runs}\ncache_dir: ${cache}\nparams:\n${COMMON}  traits: [evil, sycophantic]\n  layer_samples: 1\n  screen_samples: 8\nsweep:\n  kind: [evil, flaw_agree]\n  version: [normal, I, II]\n`,
    'mitigation.yaml': `experiment: t-mitigation\nstudy: mitigation\noutput_dir: ${runs}\ncache_dir: ${cache}\nparams:\n${COMMON}  steer_layer: auto\n  steering_summary: ${path.join(root, 'steering-summary.json')}\n  inference_coefs: [4]\n  preventative_coefs: [4]\n  preventative_all_coefs: [2]\n  projection_weights: [1]\n  capability_items: 6\n`,
    'paper.yaml': `experiment: t-paper\nstudy: paper\noutput_dir: ${runs}\ncache_dir: ${cache}\nparams:\n  configs: [shift.yaml, mitigation.yaml, screening.yaml]\n`,
    // What a steering run's summary holds (the mitigation study reads the chosen evil layer from it).
    'steering-summary.json': JSON.stringify({ steering: { evil: { layer: 2 } } }),
  });
});

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const cellsOf = (exp: string) => fs.readdirSync(path.join(runs, exp, 'cells')).map((id) => ({ id, ...readJson(path.join(runs, exp, 'cells', id, 'result.json')) }));

test('paper config: shift, mitigation and screening on a tiny organism, one report, checked against direct computations', async () => {
  const before = tf.memory().numTensors;
  const trainedBefore = finetuneCounter.trained;
  const exp = loadExperiment(path.join(root, 'paper.yaml'));
  expect(exp.cells.map((c) => c.settings.config)).toEqual(['shift.yaml', 'mitigation.yaml', 'screening.yaml']);
  const r = await runExperiment(exp, { progress: false });
  expect(r.computed).toBe(3);
  expect(tf.memory().numTensors).toBe(before); // models, adapters and activations all disposed
  // 6 plain finetunes, trained once: mitigation's plain cell and every screening cell reuse them.
  expect(finetuneCounter.trained - trainedBefore).toBe(6);

  const report = readJson(r.collected!.summaryFile);
  // Every acceptance key is a finding; steering and monitoring were not run, so they are "not measured".
  expect(report.findings.map((f: { key: string }) => f.key)).toEqual(acceptanceFindings().map((f) => f.key));
  expect(report.findings.find((f: { key: string }) => f.key === 'steering.evil.max_score')).toMatchObject({ value: null, pass: null });
  expect(report.not_measured.some((l: string) => l.startsWith('monitoring.evil.r:'))).toBe(true);
  for (const f of report.findings) if (f.pass === false) expect(report.not_reproduced.some((l: string) => l.startsWith(`${f.key} = `))).toBe(true);
  expect(report.sub_runs.map((s: { study: string }) => s.study)).toEqual(['shift', 'mitigation', 'screening']);

  // --- shift: one cell per dataset; the projection equals a direct computation from the cached adapter.
  const shift = report.shift;
  expect(shift.evil.n).toBe(6);
  expect(Object.keys(shift.evil.by_dataset).sort()).toEqual(['evil_I', 'evil_II', 'evil_normal', 'flaw_agree_I', 'flaw_agree_II', 'flaw_agree_normal']);
  expect(shift.evil.null_directions).toBe(20);
  const cell = cellsOf('t-shift').find((c) => c.result.dataset === 'evil_II')!;
  const diffs = readJson(path.join(runs, 't-shift', 'cells', cell.id, 'shift_diffs.json'));
  const L = cell.result.traits.evil.layer;
  expect(L).toBeGreaterThanOrEqual(1);
  const modelDir = path.join(root, 'organism');
  const model = await Model.load(modelDir);
  const tok = Tokenizer.load(modelDir);
  try {
    const qs = readTraitArtifacts(path.join(modelDir, 'artifacts'), 'evil').eval.questions;
    const seqs = qs.map((q) => tok.encode(renderItemPrompt(tok, { question: q, questionId: '' }))).map((ids) => ({ ids, promptLength: ids.length }));
    const lora = loadFinetune({ dir: path.join(cache, 'organism-finetunes', `evil_II_${cell.result.finetune_key}`) }, model);
    const H = model.config.hiddenSize;
    const meanAt = async (adapters?: ReturnType<typeof lora.adapters>) => {
      const a = (await captureActivations(model, seqs, { layers: [L], reductions: ['prompt_last'], adapters })).values.prompt_last!;
      return Array.from({ length: H }, (_, h) => qs.reduce((s, _q, i) => s + a[i * H + h], 0) / qs.length);
    };
    const ft = await meanAt(lora.adapters());
    lora.dispose();
    const base = await meanAt();
    const diff = ft.map((x, h) => x - base[h]);
    diff.forEach((d, h) => expect(diffs.evil.diff[h]).toBeCloseTo(d, 5));
    const dir: number[] = diffs.evil.direction;
    const norm = Math.hypot(...dir);
    expect(cell.result.traits.evil.projection).toBeCloseTo(diff.reduce((s, d, h) => s + (d * dir[h]) / norm, 0), 5);
  } finally {
    model.dispose();
  }

  // --- screening: AUROC by counting pairs; the dataset value is the mean of its per-sample differences.
  const scr = cellsOf('t-screening');
  const fileOf = (ds: string) => readJson(path.join(runs, 't-screening', 'cells', scr.find((c) => c.result.dataset === ds)!.id, 'screening.json'));
  const pos: number[] = fileOf('evil_II').evil.per_sample;
  const neg: number[] = fileOf('evil_normal').evil.per_sample;
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  expect(report.screening.auroc.evil_II).toBeCloseTo(wins / (pos.length * neg.length), 10);
  expect(pos).toHaveLength(8);
  const c2 = scr.find((c) => c.result.dataset === 'evil_II')!;
  expect(c2.result.traits.evil.projection_diff).toBeCloseTo(pos.reduce((a, b) => a + b, 0) / pos.length, 6);
  // The trait score after finetuning is the shift study's (same cached finetune and rollouts).
  expect(c2.result.traits.evil.trait_after).toBe(shift.evil.by_dataset.evil_II.trait_score);
  expect(Object.keys(report.screening.dataset_r_by_trait)).toEqual(['evil', 'sycophantic']);

  // --- mitigation: the grid, the layer read from the steering summary, and interventions that change training.
  const mit = cellsOf('t-mitigation');
  expect(mit.map((c) => `${c.result.arm}:${c.result.coef}`).sort()).toEqual(['caft:0', 'inference:4', 'plain:0', 'preventative_all:2', 'preventative_random:4', 'preventative_single:4', 'projection_reg:1']);
  expect(mit.every((c) => c.result.steer_layer === 2)).toBe(true);
  expect(report.mitigation.plain.trait_score).toBe(shift.evil.by_dataset.evil_II.trait_score);
  expect(typeof report.preventative.evil_drop).toBe('number');
  expect(report.preventative.evil_drop).toBeCloseTo(report.mitigation.plain.trait_score - report.preventative.trait_score, 10);
  // Training interventions act on the training forward pass: the first step's loss differs from plain finetuning's
  // (steering, ablation), or the step logs the projection penalty (regularization).
  const stepOne = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'train_log.jsonl'), 'utf8').split('\n')[0]);
  const plainStep = stepOne(path.join(cache, 'organism-finetunes', `evil_II_${cell.result.finetune_key}`));
  const ivDir = path.join(cache, 'organism-finetune-iv');
  const ivRuns = fs.readdirSync(ivDir).flatMap((a) => fs.readdirSync(path.join(ivDir, a)).map((b) => path.join(ivDir, a, b)));
  expect(ivRuns).toHaveLength(5);
  for (const d of ivRuns) {
    const iv = readJson(path.join(d, 'key.json')).key.intervention;
    const step = stepOne(path.join(d, 'train'));
    if (iv.projection) expect(step.projection_penalty).toBeGreaterThanOrEqual(0);
    else expect(Math.abs(step.loss - plainStep.loss)).toBeGreaterThan(1e-6);
    expect(step.loss_tokens).toBe(plainStep.loss_tokens); // same data
  }

  for (const fig of ['t-shift/figures/shift_vs_trait_evil', 't-shift/figures/trait_after_finetuning_evil', 't-mitigation/figures/mitigation_trait_score', 't-mitigation/figures/mitigation_capability', 't-screening/figures/screening_dataset_evil', 't-screening/figures/screening_samples_evil'])
    for (const ext of ['csv', 'svg', 'png']) expect(fs.statSync(path.join(runs, `${fig}.${ext}`)).size).toBeGreaterThan(100);

  // A rerun finds every cell done and writes the same report.
  const text = fs.readFileSync(r.collected!.summaryFile, 'utf8');
  const again = await runExperiment(loadExperiment(path.join(root, 'paper.yaml')), { progress: false });
  expect(again.computed).toBe(0);
  expect(fs.readFileSync(again.collected!.summaryFile, 'utf8')).toBe(text);
});

test('bad configs fail naming the file and key', () => {
  const bad = (name: string, text: string) => {
    writeFiles(root, { [name]: text });
    return () => loadExperiment(path.join(root, name));
  };
  expect(bad('b1.yaml', `experiment: b1\nstudy: shift\nparams:\n${COMMON}  sampels: 3\n`)).toThrow(/b1\.yaml:\d+, field 'params\.sampels': unknown key 'sampels'/);
  expect(bad('b2.yaml', `experiment: b2\nstudy: screening\nparams:\n${COMMON}  layer: 3\n`)).toThrow(/b2\.yaml:\d+, field 'params\.layer': layer 3 is outside the model/);
  expect(bad('b3.yaml', `experiment: b3\nstudy: mitigation\nparams:\n${COMMON}  steer_layer: auto\n`)).toThrow(/field 'params\.steer_layer': steer_layer 'auto' needs steering_summary/);
  expect(bad('b4.yaml', `experiment: b4\nstudy: shift\nparams:\n${COMMON}sweep:\n  kind: [evil, poison]\n`)).toThrow(/b4\.yaml:\d+, field 'sweep\.kind\[1\]'/);
  expect(bad('b5.yaml', `experiment: b5\nstudy: paper\nparams:\n  configs: [shift.yaml, nope.yaml]\n`)).toThrow(/field 'params\.configs\[1\]': config not found: nope\.yaml/);
  expect(bad('b6.yaml', `experiment: b6\nstudy: mitigation\nparams:\n${COMMON.replace(/ {2}finetune.*\n/, '')}  finetune: {samples: 0}\n`)).toThrow(/b6\.yaml:\d+, field 'params\.finetune\.samples'/);
  // The steering summary is read when the study runs (a paper run writes it first): missing file, missing layer.
  expect(() => resolveSteerLayer({ steer_layer: 'auto', steering_summary: path.join(root, 'none.json'), trait: 'evil' }, 2)).toThrow(/none\.json.*steering summary not found/);
  expect(() => resolveSteerLayer({ steer_layer: 'auto', steering_summary: path.join(root, 'steering-summary.json'), trait: 'humorous' }, 2)).toThrow(/field 'steering\.humorous\.layer'/);
  expect(() => resolveSteerLayer({ steer_layer: 'auto', steering_summary: path.join(root, 'steering-summary.json'), trait: 'evil' }, 1)).toThrow(PersonaError);
});

test('matched-score interpolation along the inference-steering curve', () => {
  const curve = [
    { coef: 0, trait: 80, coherence: 90 },
    { coef: 2, trait: 60, coherence: 70 },
    { coef: 4, trait: 20, coherence: 30 },
  ];
  expect(matchAlongCurve(curve, 40)).toEqual({ coef: 3, coherence: 50, reached: true }); // halfway between coef 2 and 4
  expect(matchAlongCurve(curve, 90)).toEqual({ coef: 0, coherence: 90, reached: true });
  expect(matchAlongCurve(curve, 10)).toEqual({ coef: 4, coherence: 30, reached: false });
});

test('findings: thresholds, derived differences, missing keys, not-reproduced lines with numbers', () => {
  const values = {
    shift: { evil: { r: 0.8, null_p975: 0.3 }, sycophantic: { r: 0.5 } },
    monitoring: { evil: { r: 0.9, random_mean_abs_r: 0.8, prompt_mean_r: 0.95, null_p975: 0.2 } },
    preventative: { evil_drop: 31, capability_change: -6, coherence: 90 },
    inference_steering: { coherence_at_matched: 78 },
    'screening.auroc.evil_II': 0.97,
  };
  const byKey = Object.fromEntries(evaluateFindings(values).map((f) => [f.key, f]));
  expect(byKey['shift.evil.r']).toMatchObject({ value: 0.8, pass: true, threshold: '>= 0.75' });
  expect(byKey['shift.sycophantic.r'].pass).toBe(false);
  expect(byKey['shift.hallucinating.r']).toMatchObject({ value: null, pass: null });
  expect(byKey['shift.evil.null_p975']).toMatchObject({ value: 0.3, pass: null, threshold: 'reported' });
  expect(byKey['monitoring.evil.r_minus_random'].value).toBeCloseTo(0.1, 10);
  expect(byKey['monitoring.evil.r_minus_random'].pass).toBe(false);
  expect(byKey['preventative.capability_change'].pass).toBe(false);
  expect(byKey['inference_steering.coherence_gap']).toMatchObject({ value: 12, pass: true });
  expect(byKey['screening.auroc.evil_II']).toMatchObject({ value: 0.97, pass: true }); // a literal dotted key also counts
  expect(getKey({ a: { 'b.c': 1 } }, 'a.b.c')).toBe(1);
  const rep = paperReport([{ experiment: 'x', study: 'shift', file: 'x/summary.json', summary: { ...values, run: { experiment: 'x' } } }]);
  expect(rep.run).toBeUndefined();
  expect(rep.not_reproduced).toEqual(expect.arrayContaining([expect.stringMatching(/^shift\.sycophantic\.r = 0\.5 \(needs >= 0\.75\)/), expect.stringMatching(/^preventative\.capability_change = -6 \(needs >= -5\)/)]));
  expect(rep.passed).toBe(evaluateFindings(values).filter((f) => f.pass === true).length);
});
