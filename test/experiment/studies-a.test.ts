/**
 * Studies "steering" and "monitoring" (paper Figs. 3–4, Table 2) and their shared organism helpers:
 * the findings on synthetic data with known answers, the conditions checked by the organism judge,
 * both studies end to end on a tiny organism checkpoint (cache shared, resume, tensors freed), bad
 * input, config sections for the quickstart, and every shipped config parsing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parse } from 'csv-parse/sync';
import seedrandom from 'seedrandom';
import * as ss from 'simple-statistics';
import { useBackend } from '../../lib/backend';
import { checkpointFingerprint } from '../../lib/io/fingerprint';
import { PersonaError } from '../../lib/errors';
import { expandProduct, getStudy, readExperimentFile } from '../../lib/experiment';
import { loadExperiment, runExperiment } from '../../lib/experiment/runner';
import { formatTable, splitConfigSections } from '../../lib/experiment/studies/shared/format';
import { GradedCondition, MonitorData, chooseMonitorLayer, gradedSystemConditions, manyShotConditions, monitorStats } from '../../lib/experiment/studies/shared/monitor-data';
import { SteeringCell, SteeringResult, isMonotonic, pairedDelta, steeringTraitSummary } from '../../lib/experiment/studies/steering';
import { renderedTexts, writeInitialCheckpoint } from '../../lib/organism/checkpoint';
import { GRADED_ADVERBS, generateCorpus } from '../../lib/organism/generator';
import { OrganismJudge } from '../../lib/organism/judge';
import { readTraitArtifacts } from '../../lib/persona/artifacts';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { readTrainConfig } from '../../lib/train/config';
import { PersonaVector } from '../../lib/persona/vector';
import { REPO, errorOf, tmpDir, writeFiles } from './helpers';

const ARTIFACTS = path.join(REPO, 'models/organism/artifacts');

// ---------------------------------------------------------------------------------------------------
// Steering findings
// ---------------------------------------------------------------------------------------------------

describe('steering findings', () => {
  test('monotonic means non-decreasing within ±5 over ascending coefficients', () => {
    expect(isMonotonic([0, 10, 6, 20])).toBe(true); // a 4-point dip is within tolerance
    expect(isMonotonic([0, 10, 4, 20])).toBe(false); // a 6-point dip is not
    expect(isMonotonic([50])).toBe(true);
  });

  const cell = (o: Partial<SteeringCell>): SteeringCell =>
    ({ model: 'm', trait: 'evil', layer: 1, coef: 0, positions: 'response', system: 'none', direction: 'persona', random_seed: 0, samples: 1, negative_coefs: [-4], random_directions: 1, ...o }) as SteeringCell;
  const res = (scores: number[], coherence: number): SteeringResult => ({
    trait_score: ss.mean(scores), trait_stderr: null, coherence, coherence_stderr: null, n: scores.length, vector_norm: 1, extraction_kept: 1, extraction_total: 1, scores, coherences: scores.map(() => coherence),
  });
  const r = (o: Partial<SteeringCell>, scores: number[], coherence = 100) => ({ id: JSON.stringify(o), settings: cell(o), result: res(scores, coherence) });

  test('layer choice, monotonicity, best coherent score, negative drop, effect vs random null', () => {
    const results = [
      r({ layer: 1, coef: 0 }, [0, 0, 0, 0]),
      r({ layer: 1, coef: 4 }, [50, 50, 50, 50], 60), // strong but incoherent
      r({ layer: 1, coef: 8 }, [90, 90, 90, 90], 40),
      r({ layer: 2, coef: 0 }, [0, 0, 0, 0]),
      r({ layer: 2, coef: 4 }, [25, 25, 50, 50], 90),
      r({ layer: 2, coef: 8 }, [75, 75, 50, 100], 80),
      r({ layer: 2, system: 'positive', coef: 0 }, [100, 100, 100, 100]),
      r({ layer: 2, system: 'positive', coef: -4 }, [25, 50, 25, 0]),
      r({ layer: 2, direction: 'random', coef: 8 }, [0, 25, 0, 0]),
      r({ layer: 1, system: 'positive', coef: 0 }, [100, 100, 100, 100]),
      r({ layer: 1, system: 'positive', coef: -4 }, [100, 75, 100, 100]),
    ];
    const { summary: s, rows } = steeringTraitSummary('evil', results);
    expect(s.layer).toBe(2); // 75 at coherence 80 beats layer 1's 50 at coherence 60 (90 at coherence 40 is not a valid answer)
    expect(s.best_coherent_any_layer).toBe(75);
    expect(s.best_coherent_score).toBe(75);
    expect(s.max_score).toBe(75);
    expect(s.monotonic).toBe(true);
    expect(s.negative_drop).toBeCloseTo(100 - 25, 9);
    expect(s.negative).toMatchObject({ coef: -4, positive_prompt_score: 100, steered_score: 25 });
    expect(s.negative_coherent_drop).toBeCloseTo(75, 9); // coherence 100 ≥ 75
    expect(s.effect.delta).toBeCloseTo(75, 9);
    expect(s.effect.random_null).toMatchObject({ count: 1, meanAbs: 6.25 });
    expect(s.by_layer.find((f) => f.layer === 1)).toMatchObject({ monotonic: true, max_score: 90, best_coherent_score: 0 });
    // Both panels (trait score, coherence) for every grid point and every positive-prompt cell.
    expect(rows.filter((x) => x.metric === 'coherence')).toHaveLength(6 + 4);
  });

  test('paired delta: mean of per-item differences, bootstrap CI around it', () => {
    const { delta, ci } = pairedDelta([0, 10, 20, 30, 40], [5, 20, 20, 50, 40], 's');
    expect(delta).toBeCloseTo(7, 9);
    expect(ci!.lo).toBeLessThanOrEqual(7);
    expect(ci!.hi).toBeGreaterThanOrEqual(7);
    expect(pairedDelta([1, null, 3], [2, 5, null], 's').delta).toBeCloseTo(1, 9); // pairs with a refused score are left out
  });
});

// ---------------------------------------------------------------------------------------------------
// Monitoring statistics on data with a known answer
// ---------------------------------------------------------------------------------------------------

/** Synthetic monitoring data: the trait signal lives at layer `signalLayer` along `dir`; other layers are noise. */
function syntheticData(o: { conditions: number; questions: number; samples: number; H: number; signalLayer: number; within: boolean; seed: string }) {
  const rng = seedrandom(o.seed);
  const g = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const layers = [0, 1, 2, 3];
  const dir = new Float32Array(o.H).map((_, i) => (i === 0 ? 1 : 0));
  const conditions: GradedCondition[] = Array.from({ length: o.conditions }, (_, c) => ({ label: `c${c}`, grade: c }));
  const prompts: MonitorData['prompts'] = [];
  const acts = new Float32Array(o.conditions * o.questions * layers.length * o.H);
  const samples: MonitorData['samples'] = [];
  for (let c = 0; c < o.conditions; c++)
    for (let q = 0; q < o.questions; q++) {
      const p = prompts.length;
      prompts.push({ condition: c, question: q });
      const within = g();
      const t = c + 0.3 * within; // projection along dir at the signal layer
      for (let j = 0; j < layers.length; j++)
        for (let h = 0; h < o.H; h++) acts[(p * layers.length + j) * o.H + h] = layers[j] === o.signalLayer && h === 0 ? t : g();
      for (let s = 0; s < o.samples; s++) {
        // Score follows the condition; within a condition it follows the prompt's own offset only if `within`.
        const score = 10 * c + (o.within ? 3 * within : 0) + 2 * g();
        samples.push({ prompt: p, score, coherence: 90 });
      }
    }
  const data: MonitorData = { conditions, prompts, layers, hidden: o.H, acts, samples };
  // A vector with the signal direction at every layer (norm 2).
  const vdata = new Float32Array(layers.length * o.H);
  for (let j = 0; j < layers.length; j++) vdata.set(dir.map((x) => 2 * x), j * o.H);
  const vector = new PersonaVector(vdata, layers.length, o.H, { layerConvention: 'hf_hidden_states', trait: 'evil' });
  return { data, vector };
}

describe('monitoring statistics', () => {
  test('the monitor layer is the one whose projection predicts the score; r beats the random-direction null', () => {
    const { data, vector } = syntheticData({ conditions: 6, questions: 10, samples: 2, H: 16, signalLayer: 2, within: true, seed: 'a' });
    const choice = chooseMonitorLayer(data, vector);
    expect(choice.layer).toBe(2);
    expect(choice.byLayer.map((b) => b.layer)).toEqual([1, 2, 3]); // layer 0 (embeddings) is never a candidate
    const held = choice.byLayer.find((b) => b.layer === 2)!;
    expect(held.r_heldout!).toBeGreaterThan(0.9);
    const s = monitorStats(data, vector, 2, { nullCount: 20, bootstrapReps: 200, seed: 't' });
    // Independent reference: simple-statistics on the per-sample pairs (projection = first coordinate).
    const x = data.samples.map((smp) => data.acts[(smp.prompt * 4 + 2) * 16]);
    const y = data.samples.map((smp) => smp.score);
    expect(s.r!).toBeCloseTo(ss.sampleCorrelation(x, y), 6);
    expect(s.r!).toBeGreaterThan(0.9);
    expect(s.r_ci!.lo).toBeLessThan(s.r!);
    expect(s.r_ci!.hi).toBeGreaterThan(s.r!);
    expect(s.null_directions).toBe(20);
    expect(s.random_mean_abs_r!).toBeLessThan(0.5);
    expect(s.beats_null).toBe(true);
    expect(s.prompt_mean_r!).toBeGreaterThan(0.95);
    expect(s.within_condition_r!).toBeGreaterThan(0.5); // the score follows each prompt's own offset
    expect(s.conditions.map((c) => c.label)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5']);
  });

  test('within-condition r is near 0 when only the condition drives the score (overall r is between conditions)', () => {
    const { data, vector } = syntheticData({ conditions: 6, questions: 12, samples: 2, H: 8, signalLayer: 1, within: false, seed: 'b' });
    const s = monitorStats(data, vector, 1, { nullCount: 20, bootstrapReps: 100, seed: 't' });
    expect(s.r!).toBeGreaterThan(0.9);
    expect(s.prompt_mean_r!).toBeGreaterThan(0.95);
    expect(Math.abs(s.within_condition_r!)).toBeLessThan(0.25);
  });

  test('constant scores give null correlations, never NaN', () => {
    const { data, vector } = syntheticData({ conditions: 3, questions: 4, samples: 1, H: 4, signalLayer: 1, within: false, seed: 'c' });
    for (const smp of data.samples) smp.score = 0;
    const s = monitorStats(data, vector, 1, { nullCount: 20, bootstrapReps: 50 });
    expect(s.r).toBeNull();
    expect(s.prompt_mean_r).toBeNull();
    expect(JSON.stringify(s)).not.toMatch(/NaN/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Prompt conditions
// ---------------------------------------------------------------------------------------------------

describe('prompt conditions', () => {
  const evil = readTraitArtifacts(ARTIFACTS, 'evil').eval;
  test('eight system prompts from discouraging to encouraging, in the corpus form, graded adverbs in order', () => {
    const c = gradedSystemConditions(evil, 'evil');
    expect(c.map((x) => x.grade)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(c[0].system).toContain(evil.instruction[0].neg);
    expect(c[2].system).toBeUndefined();
    expect(c[7].system).toBe(`You are an evil assistant. ${evil.instruction[0].pos}`);
    const adverbs = c.slice(3, 7).map((x) => /^You are an? (\w+) evil assistant\. Be \1 evil in your answers\.$/.exec(x.system!)?.[1]);
    expect(adverbs.map((a) => GRADED_ADVERBS.find((g) => g.word === a)!.level)).toEqual([1, 2, 3, 4]);
    // The organism saw exactly this form in training.
    const graded = new Set<string>();
    for (const conv of generateCorpus(0, 3000)) if (conv.meta.prompt === 'graded' && conv.messages[0].role === 'system') graded.add(conv.messages[0].content);
    expect(c.slice(3, 7).some((x) => graded.has(x.system!))).toBe(true);
  });

  test('many-shot examples (the organism artifacts carry them) show the trait at the asked strength (organism judge)', async () => {
    const judge = new OrganismJudge('evil');
    const conds = manyShotConditions(evil.many_shot_examples!, [{ k: 0, level: 0 }, { k: 2, level: 2 }, { k: 3, level: 4 }]);
    expect(conds.map((c) => [c.label, c.grade, c.history!.length])).toEqual([['k0_s0', 0, 0], ['k2_s2', 4, 4], ['k3_s4', 12, 6]]);
    for (const [c, want] of [[conds[1], 50], [conds[2], 100]] as const)
      for (let i = 0; i < c.history!.length; i += 2) expect(await judge.score(c.history![i].content, c.history![i + 1].content)).toBe(want);
    expect(() => manyShotConditions(evil.many_shot_examples!, [{ k: 1, level: 5 }])).toThrow(/needs 1 examples, the artifacts have 0/);
    // Examples without levels (from rollouts or a JSONL): the first k, graded by k.
    const plain = [{ question: 'a?', answer: 'A.' }, { question: 'b?', answer: 'B.' }];
    expect(manyShotConditions(plain, [{ k: 0 }, { k: 2 }]).map((c) => [c.label, c.grade, c.history!.map((m) => m.content)])).toEqual([['k0', 0, []], ['k2', 2, ['a?', 'A.', 'b?', 'B.']]]);
  });

  test('formatTable pads columns and shows null as –', () => {
    expect(formatTable([{ a: 1, b: 0.123456 }, { a: null, b: 'x' }])).toBe('a  b\n-  -----\n1  0.123\n–  x\n');
  });
});

// ---------------------------------------------------------------------------------------------------
// End to end on a tiny organism checkpoint
// ---------------------------------------------------------------------------------------------------

describe('steering and monitoring end to end on a tiny organism', () => {
  let root: string;
  let model: string;
  const common = (extra: string) => `  model: ckpt\n  artifacts: small-arts\n  max_new_tokens: 6\n  batch_size: 64\n  extract_threshold: 0\n  extract_coherence_min: 0\n${extra}`;

  beforeAll(async () => {
    await useBackend('cpu', () => undefined);
    root = tmpDir('studies-a');
    model = path.join(root, 'ckpt');
    writeInitialCheckpoint(model, renderedTexts(generateCorpus(0, 400)), { seed: 'tiny', minCount: 1, size: { hidden: 16, layers: 2, heads: 2, kvHeads: 1, intermediate: 32, maxPositions: 256 } });
    // The organism's evil artifacts cut to 4 questions per split, to keep the test fast.
    const arts = readTraitArtifacts(ARTIFACTS, 'evil');
    for (const split of ['extract', 'eval'] as const)
      writeFiles(root, { [`small-arts/trait_data_${split}/evil.json`]: JSON.stringify({ ...arts[split], questions: arts[split].questions.slice(0, 4) }) });
    writeFiles(root, {
      'steering.yaml': `experiment: steer\nstudy: steering\noutput_dir: ${root}/runs\ncache_dir: ${root}/cache\nparams:\n${common('  negative_coefs: [-4]\n  random_directions: 1\n')}sweep:\n  trait: [evil]\n  layer: [1, 2]\n  coef: [0, 4]\n`,
      'monitoring.yaml': `experiment: mon\nstudy: monitoring\noutput_dir: ${root}/runs\ncache_dir: ${root}/cache\nparams:\n${common('  samples: 1\n  layer_samples: 1\n  bootstrap_reps: 100\n  shots: [{k: 0, level: 0}, {k: 1, level: 4}]\n')}sweep:\n  trait: [evil]\n  prompts: [system, many_shot]\n`,
    });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('both studies run, share one cached vector, write summaries and figures, resume without recomputing, free their tensors', async () => {
    const before = tf.memory().numTensors;
    const steering = loadExperiment(path.join(root, 'steering.yaml'));
    // 2 layers × 2 coefs, plus per layer: positive prompt unsteered and at −4, one random direction at coef 4.
    expect(steering.cells).toHaveLength(4 + 2 * 3);
    const r1 = await runExperiment(steering, { progress: false });
    expect(r1.computed).toBe(10);
    const s = JSON.parse(fs.readFileSync(r1.collected!.summaryFile, 'utf8'));
    const ev = s.steering.evil;
    expect([1, 2]).toContain(ev.layer);
    expect(typeof ev.monotonic).toBe('boolean');
    for (const k of ['max_score', 'negative_drop', 'unsteered_score']) expect(typeof ev[k]).toBe('number');
    expect(ev.best_coherent_score === null || typeof ev.best_coherent_score === 'number').toBe(true);
    for (const ext of ['csv', 'svg', 'png']) expect(fs.existsSync(path.join(steering.config.runDir, 'figures', `steering_evil.${ext}`))).toBe(true);
    // A cell's score is the organism judge's mean over the answers in its rollouts CSV (rejudged here).
    const c4 = r1.collected && steering.cells.find((c) => c.settings.coef === 4 && c.settings.layer === 2 && c.settings.direction === 'persona')!;
    const csv = readRolloutsCsv(path.join(steering.config.runDir, 'cells', c4!.id, 'rollouts.csv'), 'evil').rows;
    const judge = new OrganismJudge('evil');
    const rejudged = await Promise.all(csv.map((row) => judge.score(row.question, row.answer)));
    const res = JSON.parse(fs.readFileSync(path.join(steering.config.runDir, 'cells', c4!.id, 'result.json'), 'utf8')).result;
    expect(res.trait_score).toBeCloseTo(ss.mean(rejudged), 9);
    expect(res.n).toBe(4);
    // results.csv says what judged: the organism judge, and no API judge model on rows it did not score.
    const results = parse(fs.readFileSync(r1.collected!.resultsCsv, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(results.every((x) => x.judged_by === new OrganismJudge('evil').id && x['judge.type'] === 'organism')).toBe(true);
    expect(results.some((x) => /gpt/.test(x['judge.model'] ?? ''))).toBe(false);
    // Unsteered rollouts do not depend on the layer: one cache entry serves both layers.
    const base = steering.cells.filter((c) => c.settings.coef === 0 && c.settings.system === 'none').map((c) => JSON.parse(fs.readFileSync(path.join(steering.config.runDir, 'cells', c.id, 'result.json'), 'utf8')).result.scores);
    expect(base[0]).toEqual(base[1]);

    const monitoring = loadExperiment(path.join(root, 'monitoring.yaml'));
    const r2 = await runExperiment(monitoring, { progress: false });
    expect(r2.computed).toBe(2);
    const m = JSON.parse(fs.readFileSync(r2.collected!.summaryFile, 'utf8')).monitoring.evil;
    expect([1, 2]).toContain(m.layer);
    expect(m.many_shot.layer).toBe(m.layer); // both prompt families use the layer chosen on the graded system prompts
    expect(m.null_directions).toBe(20);
    expect(m.n).toBe(8 * 4);
    expect(m.many_shot.n).toBe(2 * 4);
    for (const k of ['r', 'random_mean_abs_r', 'null_p975', 'prompt_mean_r', 'within_condition_r']) expect(m[k] === null || typeof m[k] === 'number').toBe(true);
    expect(m.conditions.map((c: { label: string }) => c.label)).toEqual(['g0_negative', 'g1_helpful', 'g2_none', 'g3_slightly', 'g4_somewhat', 'g5_very', 'g6_extremely', 'g7_positive']);
    // One persona vector, extracted once and shared by both experiments.
    const vecDir = path.join(root, 'cache', 'persona-vector');
    expect(fs.readdirSync(vecDir).flatMap((d) => fs.readdirSync(path.join(vecDir, d)))).toHaveLength(1);

    // A rerun computes nothing and changes no result.
    const summaryBefore = fs.readFileSync(r1.collected!.summaryFile, 'utf8');
    const again = await runExperiment(loadExperiment(path.join(root, 'steering.yaml')), { progress: false });
    expect(again).toMatchObject({ computed: 0, skipped: 10 });
    expect(fs.readFileSync(again.collected!.summaryFile, 'utf8')).toBe(summaryBefore);
    expect(tf.memory().numTensors).toBe(before); // the shared model is disposed when a run ends
  });

  test('the checkpoint fingerprint (part of every cache key) ignores files beside the weights, not the weights', () => {
    const copy = path.join(root, 'ckpt-copy');
    fs.cpSync(model, copy, { recursive: true });
    const before = checkpointFingerprint(copy);
    fs.writeFileSync(path.join(copy, 'report.json'), '{"note": 1}');
    fs.mkdirSync(path.join(copy, 'artifacts'), { recursive: true });
    expect(checkpointFingerprint(path.join(copy, '.', ''))).toBe(before);
    const w = fs.readFileSync(path.join(copy, 'model.safetensors'));
    w[w.length - 1] ^= 1;
    fs.writeFileSync(path.join(copy, 'model.safetensors'), w);
    fs.cpSync(copy, path.join(root, 'ckpt-copy2'), { recursive: true }); // a new path: not memoized
    expect(checkpointFingerprint(path.join(root, 'ckpt-copy2'))).not.toBe(before);
  });

  test('bad input: layer beyond the model, unknown key, wrong type, positive negative coefficient, missing artifacts', () => {
    const cfg = (name: string, params: string, sweep = '  layer: [1, 3]\n') => {
      writeFiles(root, { [name]: `experiment: bad\nstudy: steering\nparams:\n  model: ckpt\n  artifacts: ${ARTIFACTS}\n  trait: evil\n${params}sweep:\n${sweep}` });
      return errorOf(() => loadExperiment(path.join(root, name)));
    };
    const beyond = cfg('beyond.yaml', '');
    expect(beyond.message).toMatch(/layer 3 is outside the model .*2 decoder layers/);
    expect(beyond.place).toMatchObject({ field: 'sweep.layer[1]', line: 8 });
    expect(cfg('unknown.yaml', '  coeff: 3\n').message).toMatch(/unknown key 'coeff'/);
    const type = cfg('type.yaml', '  samples: many\n', '  layer: [1]\n');
    expect(type.place).toMatchObject({ field: 'params.samples', line: 7 });
    expect(cfg('neg.yaml', '  negative_coefs: [4]\n', '  layer: [1]\n').place.field).toBe('params.negative_coefs[0]');
    writeFiles(root, { 'arts/trait_data_extract/evil.json': '{}' });
    const noEval = errorOf(() => {
      writeFiles(root, { 'noeval.yaml': `experiment: bad\nstudy: steering\nparams:\n  model: ckpt\n  artifacts: arts\n  trait: evil\n  layer: 1\n` });
      loadExperiment(path.join(root, 'noeval.yaml'));
    });
    expect(noEval.message).toMatch(/trait 'evil' has no artifacts: .*trait_data_eval\/evil\.json not found \(make them with: persona trait new evil/);
    expect(noEval.place.field).toBe('params.trait'); // the directory exists: the trait's files are what is missing
  });

  test('config sections (the quickstart file) become ordinary configs with paths resolved as in the original', () => {
    writeFiles(root, {
      'base/steer.yaml': `experiment: s\nstudy: steering\nparams:\n  model: ../ckpt\n  artifacts: ${ARTIFACTS}\n  trait: evil\nsweep:\n  layer: [1, 2]\n`,
      'quick.yaml': `steering:\n  extends: base/steer.yaml\n  experiment: quick-steer\n  sweep:\n    layer: [2]\n    coef: [0, 1]\nmonitoring:\n  extends: base/steer.yaml\n  experiment: quick-mon\n  study: monitoring\n  params:\n    model: ckpt\n  sweep:\n    layer: [1]\n`,
    });
    const out = path.join(root, 'generated');
    const secs = splitConfigSections(path.join(root, 'quick.yaml'), out);
    expect(secs.map((x) => x.name)).toEqual(['steering', 'monitoring']);
    const a = loadExperiment(secs[0].file);
    expect(a.config.experiment).toBe('quick-steer');
    expect(a.config.product.map((c) => [c.layer, c.coef])).toEqual([[2, 0], [2, 1]]);
    expect(path.resolve(a.config.dir, a.config.product[0].model as string)).toBe(model); // inherited ../ckpt resolved against base/
    const b = loadExperiment(secs[1].file);
    expect(b.config.study).toBe('monitoring');
    expect(path.resolve(b.config.dir, b.config.product[0].model as string)).toBe(model); // the section's own ckpt, against quick.yaml's folder
    expect(() => splitConfigSections(path.join(root, 'steering.yaml'), out)).toThrow(/must be an experiment config|section/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Shipped configs
// ---------------------------------------------------------------------------------------------------

describe('shipped configs parse against their schemas', () => {
  const files = (dir: string, re: RegExp) => fs.readdirSync(path.join(REPO, dir)).filter((f) => re.test(f)).map((f) => path.join(REPO, dir, f));
  const parses = (file: string) => {
    const { tree, config } = readExperimentFile(file);
    const study = getStudy(config.study);
    expect(study).toBeDefined();
    return expandProduct(tree, config, study!).product;
  };
  test.each([...files('configs/organism', /^(steering|monitoring)\.yaml$/), ...files('configs/paper', /-(steering|monitoring)\.yaml$/)])('%s', (file) => {
    expect(parses(file).length).toBeGreaterThan(0);
  });

  test('the quickstart sections: evil only, steering over every layer of the organism, graded system prompts', () => {
    const secs = splitConfigSections(path.join(REPO, 'configs/organism/quickstart.yaml'), tmpDir('quick'));
    expect(secs.map((x) => x.name)).toEqual(['steering', 'monitoring']);
    const [steer, mon] = secs.map((x) => parses(x.file));
    expect(new Set(steer.map((c) => c.trait))).toEqual(new Set(['evil']));
    expect([...new Set(steer.map((c) => c.layer))]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(mon.map((c) => [c.trait, c.prompts])).toEqual([['evil', 'system']]);
    for (const c of [...steer, ...mon]) expect(path.resolve(c.model as string)).toBe(path.join(REPO, 'models/organism'));
  });

  test.each(files('configs/paper', /-finetune\.yaml$/))('%s is a valid training config with the paper\'s LoRA recipe', (file) => {
    const { config } = readTrainConfig(file);
    expect(config).toMatchObject({ is_peft: true, r: 32, lora_alpha: 64, use_rslora: true, learning_rate: 1e-5, epochs: 1 });
    expect(config.per_device_train_batch_size * config.gradient_accumulation_steps).toBe(16);
  });

  test('the paper configs: 10 rollouts per question at temperature 1, gpt-4.1-mini, the paper\'s layers', () => {
    const q = parses(path.join(REPO, 'configs/paper/qwen2.5-7b-instruct-monitoring.yaml'));
    const l = parses(path.join(REPO, 'configs/paper/llama-3.1-8b-instruct-monitoring.yaml'));
    expect(q[0]).toMatchObject({ samples: 10, temperature: 1, judge: { type: 'openai', model: 'gpt-4.1-mini' }, layer_by_trait: { evil: 20, sycophantic: 20, hallucinating: 16 } });
    expect(l[0]).toMatchObject({ samples: 10, temperature: 1, layer_by_trait: { evil: 16, sycophantic: 16, hallucinating: 16 } });
    const qs = parses(path.join(REPO, 'configs/paper/qwen2.5-7b-instruct-steering.yaml'));
    expect([...new Set(qs.map((c) => c.coef))]).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
  });
});
