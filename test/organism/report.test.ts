/**
 * The organism acceptance report end to end on a tiny untrained checkpoint: every key present and in range,
 * the headline numbers agree with the rollout CSVs they come from, the finetune cache is reused on a rerun
 * (no retraining), tensors are not leaked, and the CLI writes the same JSON.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { PersonaError } from '../../lib/errors';
import { renderedTexts, writeInitialCheckpoint } from '../../lib/organism/checkpoint';
import { capabilityAccuracy, capabilityItems } from '../../lib/organism/datasets';
import { DEFAULT_FINETUNE, finetuneConfigFrom, finetuneCounter } from '../../lib/organism/finetune';
import { generateCorpus } from '../../lib/organism/generator';
import { TRAITS } from '../../lib/organism/grammar';
import { OrganismReport, OrganismReportOptions, organismReport, withinQuestionR } from '../../lib/organism/report';
import { writeArtifacts } from '../../lib/organism/write';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { main } from '../../cli/main';

let root: string;
let modelDir: string;
const N_LAYERS = 2;

beforeAll(async () => {
  await useBackend('wasm', () => undefined);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'organism-report-'));
  modelDir = path.join(root, 'model');
  writeInitialCheckpoint(modelDir, renderedTexts(generateCorpus(0, 1500)), { seed: 'report-test', size: { hidden: 16, layers: N_LAYERS, heads: 2, kvHeads: 1, intermediate: 32, maxPositions: 256 } });
  writeArtifacts(path.join(modelDir, 'artifacts'), 0);
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function options(outDir: string): OrganismReportOptions {
  return {
    modelDir, outDir, samples: 1, seed: '7', temperature: 1, maxNewTokens: 6, batchSize: 64, questions: 2,
    // An untrained model expresses no trait, so the paper's filter would keep no pair: keep every pair.
    extractThreshold: 0, extractCoherenceMin: 0,
    finetune: { ...DEFAULT_FINETUNE, samples: 16, per_device_train_batch_size: 8 },
    calibrationPerLevel: 6, probeDecoding: true,
  };
}

const inRange = (x: unknown, lo: number, hi: number) => typeof x === 'number' && Number.isFinite(x) && x >= lo && x <= hi;

function expectComplete(r: OrganismReport): void {
  for (const t of TRAITS) {
    for (const k of ['pos', 'neg', 'none', 'coherence_pos', 'coherence_neg'] as const) expect([t, k, inRange(r.traits[t][k], 0, 100)]).toEqual([t, k, true]);
    expect(inRange(r.judge.spearman[t], -1, 1)).toBe(true);
  }
  expect(inRange(r.capability_accuracy, 0, 1)).toBe(true);
  for (const k of ['evil_II_delta', 'evil_I_delta', 'evil_normal_delta'] as const) expect(inRange(r.finetune[k], -100, 100)).toBe(true);
  expect(Number.isFinite(r.finetune.flaw_II_shift_ratio)).toBe(true);
  expect(r.settings).toMatchObject({ samples: 1, seed: '7', decoding: { mode: 'sample', temperature: 1 }, max_new_tokens: 6 });
  expect(r.settings.finetune).toMatchObject({ r: 16, lora_alpha: 32, use_rslora: true, samples: 16, flaw_kind: 'flaw_facts' });
  const layer = r.settings.layer as { chosen: number; monitor_by_layer: unknown[] };
  expect(layer.chosen).toBeGreaterThanOrEqual(1);
  expect(layer.chosen).toBeLessThanOrEqual(N_LAYERS);
  expect(layer.monitor_by_layer).toHaveLength(N_LAYERS);
  expect(r.timings.total).toBeGreaterThan(0);
}

test('report end to end: every key in range, numbers match the CSVs, finetunes cached on rerun, no leaked tensors', async () => {
  const out = path.join(root, 'out');
  const before = tf.memory().numTensors;
  const trainedBefore = finetuneCounter.trained;
  const first = await organismReport(options(out));
  expect(tf.memory().numTensors).toBe(before);
  expect(finetuneCounter.trained - trainedBefore).toBe(7); // evil × 3, flaw_facts × 2, flaw_arith × 2
  expectComplete(first);

  // Headline numbers are the means of the rollouts written under --out.
  const dir = first.settings.rollouts_dir as string;
  const evilPos = readRolloutsCsv(path.join(dir, 'traits', 'evil_pos.csv'), 'evil').rows;
  expect(evilPos).toHaveLength(2 * 5); // 2 questions × 5 positive prompts × 1 sample
  expect(evilPos[0].prompt).toContain('You are an evil assistant.');
  expect(first.traits.evil.pos).toBeCloseTo(evilPos.reduce((s, r) => s + r.score!, 0) / evilPos.length, 10);
  const neg = readRolloutsCsv(path.join(dir, 'traits', 'humorous_neg.csv'), 'humorous').rows;
  expect(neg[0].prompt).toContain('You are a helpful assistant.');
  const none = readRolloutsCsv(path.join(dir, 'traits', 'evil_none.csv'), 'evil').rows;
  expect(none.every((r) => !r.prompt.includes('system'))).toBe(true);
  const cap = readRolloutsCsv(path.join(dir, 'capability_greedy.csv'), 'evil').rows;
  const capSampled = readRolloutsCsv(path.join(dir, 'capability.csv'), 'evil').rows;
  expect(first.details.capability_sampled).toBe(capabilityAccuracy(capSampled.map((r) => r.answer), capabilityItems(0)));
  expect(first.capability_accuracy).toBe(capabilityAccuracy(cap.map((r) => r.answer), capabilityItems(0)));
  const ft = first.details.finetunes as Record<string, { evil: number; evil_delta: number; trained_now: boolean; shift: { projection: number } }>;
  expect(first.finetune.evil_II_delta).toBeCloseTo(ft.evil_II.evil - first.traits.evil.none, 10);
  expect(first.finetune.flaw_II_shift_ratio).toBeCloseTo(ft.flaw_facts_II.shift.projection / ft.flaw_facts_normal.shift.projection, 10);
  expect(Object.values(ft).every((f) => f.trained_now)).toBe(true);

  // Rerun: nothing is retrained and the rollouts are resumed, so every number is the same.
  const second = await organismReport(options(out));
  expect(finetuneCounter.trained - trainedBefore).toBe(7); // evil × 3, flaw_facts × 2, flaw_arith × 2
  expect(Object.values(second.details.finetunes as typeof ft).every((f) => !f.trained_now)).toBe(true);
  for (const k of Object.keys(second.timings).filter((k) => k.startsWith('finetune_') && k !== 'finetune_eval')) expect(second.timings[k]).toBe(0);
  expect(second.traits).toEqual(first.traits);
  expect(second.finetune).toEqual(first.finetune);
  expect(tf.memory().numTensors).toBe(before);

  // The CLI writes the same report (caches hit again).
  const json = path.join(root, 'report.json');
  const code = await main(['organism', 'report', '--model', modelDir, '--json', json, '--out', out, '--samples', '1', '--seed', '7', '--temperature', '1', '--max-new-tokens', '6',
    '--questions', '2', '--threshold', '0', '--coherence-min', '0', '--finetune-samples', '16', '--finetune-config', writeYaml('per_device_train_batch_size: 8\n'), '--backend', 'wasm']);
  expect(code).toBe(0);
  const cli = JSON.parse(fs.readFileSync(json, 'utf8')) as OrganismReport;
  expect(finetuneCounter.trained - trainedBefore).toBe(7); // evil × 3, flaw_facts × 2, flaw_arith × 2
  expect(cli.traits).toEqual(first.traits);
  expect(cli.finetune).toEqual(first.finetune);
  expect(cli.judge.spearman.evil).toBeCloseTo(1, 1); // default calibration size (40 per level)
});

function writeYaml(text: string): string {
  const f = path.join(root, `ft-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(f, text);
  return f;
}

test('finetune config files: defaults overridden field by field; unknown fields and wrong types are named', () => {
  // The shipped config file states the defaults.
  expect(finetuneConfigFrom(path.join(__dirname, '../../configs/organism/finetune/lora.yaml'))).toEqual(DEFAULT_FINETUNE);
  expect(finetuneConfigFrom(writeYaml('learning_rate: 0.002\nr: 8\n'))).toMatchObject({ learning_rate: 0.002, r: 8, lora_alpha: 32, samples: 1000 });
  const bad = writeYaml('learning_rat: 0.002\n');
  expect(() => finetuneConfigFrom(bad)).toThrow(PersonaError);
  expect(() => finetuneConfigFrom(bad)).toThrow(`${bad}, field 'learning_rat'`);
  expect(() => finetuneConfigFrom({ epochs: 'two' })).toThrow("field 'epochs'");
  expect(() => finetuneConfigFrom({ samples: 0 })).toThrow("field 'samples'");
});

test('within-question monitoring r removes what the question alone decides', () => {
  // Question b scores high whatever its projection; within each question the projection tracks the score.
  const prompts = [
    { question: 'a', projection: 10, traitMean: 0 }, { question: 'a', projection: 11, traitMean: 10 },
    { question: 'b', projection: 0, traitMean: 50 }, { question: 'b', projection: 1, traitMean: 60 },
    { question: 'c', projection: 5, traitMean: null },
  ];
  expect(withinQuestionR(prompts)).toBeCloseTo(1, 12);
  expect(withinQuestionR(prompts.slice(0, 2))).toBeNaN(); // 2 points: undefined
});
