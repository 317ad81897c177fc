/**
 * Studies take any trait that has artifacts (issue 13) and name every cell (issue 12): a trait outside the
 * organism's seven (artifacts as `persona trait new` writes them) sweeps beside an organism trait, each bad
 * input is one line naming the key before any model is loaded, and cell names show what differs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadExperiment, runExperiment } from '../../lib/experiment/runner';
import { CHAT_PATH, LlmTestServer } from '../support/llm-server';
import { parse } from 'csv-parse/sync';
import { useBackend } from '../../lib/backend';
import { renderedTexts, writeInitialCheckpoint } from '../../lib/organism/checkpoint';
import { generateCorpus } from '../../lib/organism/generator';
import { readTraitArtifacts, writeArtifacts } from '../../lib/persona/artifacts';
import { REPO, errorOf, tmpDir, writeFiles } from './helpers';

const ORGANISM = path.join(REPO, 'models/organism');

describe('any trait with artifacts', () => {
  let root: string;
  beforeAll(() => {
    root = tmpDir('any-trait');
    // A new trait's artifacts, in the shape `persona trait new` writes (here from the evil files, renamed).
    const evil = readTraitArtifacts(path.join(ORGANISM, 'artifacts'), 'evil');
    const arts = path.join(root, 'arts');
    writeArtifacts(arts, 'evil', evil);
    const { graded_system_prompts: _g, many_shot_examples: _m, ...paperOnly } = evil.eval;
    writeArtifacts(arts, 'grumpy', { extract: { ...paperOnly, questions: evil.extract.questions }, eval: paperOnly });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const config = (name: string, body: string) => {
    writeFiles(root, { [name]: `experiment: ${name.replace('.yaml', '')}\nstudy: ${body}` });
    return path.join(root, name);
  };
  const judge = `  judge: {type: openai, model: judge-x, base_url: "http://127.0.0.1:9/v1"}\n`;

  test('a steering sweep over an organism trait and a new one is accepted (an API judge scores both)', () => {
    const exp = loadExperiment(config('ok.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  artifacts: arts\n${judge}sweep:\n  trait: [evil, grumpy]\n  layer: [2]\n  coef: [0, 1]\n`));
    expect([...new Set(exp.cells.map((c) => c.settings.trait))]).toEqual(['evil', 'grumpy']);
    expect(exp.cells[0].id).toMatch(/^trait=evil_layer=2_coef=0-/);
  });

  test('bad input: one line naming the key, before any model is loaded', () => {
    const noArts = errorOf(() => loadExperiment(config('none.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  artifacts: arts\n${judge}sweep:\n  trait: [evil, sleepy]\n`)));
    expect(noArts.message).toMatch(/field 'sweep\.trait\[1\]': trait 'sleepy' has no artifacts: .*trait_data_extract\/sleepy\.json not found \(make them with: persona trait new sleepy/);
    expect(noArts.message.split('\n')).toHaveLength(1);
    const organismJudge = errorOf(() => loadExperiment(config('oj.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  artifacts: arts\nsweep:\n  trait: [evil, grumpy]\n`)));
    expect(organismJudge.message).toMatch(/field 'sweep\.trait\[1\]': the organism judge scores only the organism's traits .*not 'grumpy': set judge\.type: openai/);
    const monitoring = errorOf(() => loadExperiment(config('mon.yaml', `monitoring\nparams:\n  model: ${ORGANISM}\n  artifacts: arts\n${judge}sweep:\n  trait: [evil, grumpy]\n`)));
    expect(monitoring.message).toMatch(/the artifacts of trait 'grumpy' .* have no graded_system_prompts, which the monitoring prompts need; add them with: persona trait graded-prompts grumpy --out /);
    const layer = errorOf(() => loadExperiment(config('layer.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  artifacts: arts\n${judge}  trait: grumpy\nsweep:\n  layer: [2, 7]\n`)));
    expect(layer.message).toMatch(/field 'sweep\.layer\[1\]': layer 7 is outside the model .*6 decoder layers/);
    const byTrait = errorOf(() => loadExperiment(config('lbt.yaml', `monitoring\nparams:\n  model: ${ORGANISM}\n  layer_by_trait: {evil: 9}\nsweep:\n  trait: [evil]\n`)));
    expect(byTrait.message).toMatch(/field 'params\.layer_by_trait\.evil': layer 9 is outside the model/);
    const model = errorOf(() => loadExperiment(config('jm.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  trait: evil\n  judge: {model: gpt-4.1-mini}\n`)));
    expect(model.message).toMatch(/field 'params\.judge\.model': judge\.model names an API judge model; the organism judge .* takes none/);
    const name = errorOf(() => loadExperiment(config('name.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  trait: "../evil"\n`)));
    expect(name.message).toMatch(/field 'params\.trait': a trait name is letters, digits/);
  });

  test("the paper's dataset/ layout: files read as they are; a line that is not {\"messages\": [...]} is refused naming it", () => {
    const conv = (q: string) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: 'A.' }] });
    writeFiles(root, {
      'dataset/evil/normal.jsonl': `${conv('a')}\n${conv('b')}\n`,
      'dataset/evil/misaligned_2.jsonl': `${conv('a')}\n{"prompt": "b", "completion": "B"}\n`,
    });
    const shift = (extra: string) => `shift\nparams:\n  model: ${ORGANISM}\n  layer: 2\n  traits: [evil]\n  datasets: dataset\n  kind: evil\n${extra}`;
    expect(loadExperiment(config('ds-ok.yaml', shift('  version: normal\n'))).cells).toHaveLength(1);
    const bad = errorOf(() => loadExperiment(config('ds-bad.yaml', shift('  version: II\n'))));
    expect(bad.message).toMatch(/dataset\/evil\/misaligned_2\.jsonl:2, field 'messages': missing "messages" list/);
    const missing = errorOf(() => loadExperiment(config('ds-none.yaml', shift('  version: I\n'))));
    expect(missing.message).toMatch(/field 'params\.kind': dataset file not found: .*dataset\/evil\/misaligned_1\.jsonl/);
    const noDir = errorOf(() => loadExperiment(config('ds-kind.yaml', `shift\nparams:\n  model: ${ORGANISM}\n  layer: 2\n  traits: [evil]\n  kind: mistake_medical\n`)));
    expect(noDir.message).toMatch(/field 'params\.kind': 'mistake_medical' is not one of the organism's generated datasets .*set datasets:/);
  });

  test('a judge that returns no logprobs: one line naming it, before any model is loaded, nothing cached', async () => {
    const server = await LlmTestServer.start();
    server.setFallback(CHAT_PATH, () => ({ kind: 'chat', content: '50' })); // text, no logprobs
    try {
      const file = config('nolp.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  artifacts: arts\n  judge: {type: openai, model: judge-x, base_url: "${server.url}/v1"}\n  trait: grumpy\n  layer: 2\n`);
      const exp = loadExperiment(file, { outputDir: path.join(root, 'nolp-runs'), cacheDir: path.join(root, 'nolp-cache') });
      const before = tf.memory().numTensors;
      const err = await runExperiment(exp, { progress: false }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(/field 'judge.model': judge judge-x at http:\/\/127\.0\.0\.1:\d+\/v1 returned no logprobs: .*use a model and server that return them/);
      expect(err?.message.split('\n')).toHaveLength(1);
      expect(server.count(CHAT_PATH)).toBe(1); // the one check, no rollouts judged
      expect(tf.memory().numTensors).toBe(before); // no model was loaded
      const cached = fs.existsSync(path.join(root, 'nolp-cache')) ? fs.readdirSync(path.join(root, 'nolp-cache')) : [];
      expect(cached.filter((d) => d !== 'judge')).toEqual([]);
      const cells = path.join(root, 'nolp-runs', 'nolp', 'cells');
      expect(fs.existsSync(cells) ? fs.readdirSync(cells).filter((c) => fs.existsSync(path.join(cells, c, 'result.json'))) : []).toEqual([]);
    } finally {
      await server.close();
    }
  });

  test('extract_method is a sweep axis: the PCA and probe directions come from the same judged rollouts', async () => {
    await useBackend('wasm', () => undefined);
    const ckpt = path.join(root, 'tiny');
    writeInitialCheckpoint(ckpt, renderedTexts(generateCorpus(0, 200)), { seed: 'tiny', minCount: 1, size: { hidden: 16, layers: 2, heads: 2, kvHeads: 1, intermediate: 32, maxPositions: 256 } });
    const evil = readTraitArtifacts(path.join(ORGANISM, 'artifacts'), 'evil');
    writeArtifacts(path.join(root, 'small'), 'evil', { extract: { ...evil.extract, questions: evil.extract.questions.slice(0, 3) }, eval: { ...evil.eval, questions: evil.eval.questions.slice(0, 2) } });
    const file = config('methods.yaml', `steering\ncache_dir: methods-cache\noutput_dir: methods-runs\nparams:\n  model: tiny\n  artifacts: small\n  trait: evil\n  layer: 1\n  coef: 2\n  max_new_tokens: 6\n  extract_threshold: 0\n  extract_coherence_min: 0\n  random_directions: 0\nsweep:\n  extract_method: [response_avg_diff, pca_diff, probe]\n`);
    const exp = loadExperiment(file);
    expect(exp.cells.map((c) => c.id.replace(/-[0-9a-f]{12}$/, ''))).toEqual(['extract_method=response_avg_diff', 'extract_method=pca_diff', 'extract_method=probe']);
    const r = await runExperiment(exp, { progress: false });
    expect(r.computed).toBe(3);
    const rows = parse(fs.readFileSync(r.collected!.resultsCsv, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(new Set(rows.map((x) => x.vector_norm)).size).toBe(3); // three directions
    const entries = (kind: string) => (fs.existsSync(path.join(root, 'methods-cache', kind)) ? fs.readdirSync(path.join(root, 'methods-cache', kind)).flatMap((a) => fs.readdirSync(path.join(root, 'methods-cache', kind, a))) : []);
    expect(entries('persona-vector')).toHaveLength(1); // one set of extraction rollouts
    expect(entries('persona-vector-method')).toHaveLength(2); // pca_diff and probe, derived from them
  });

  test('cell names show every value that tells cells apart: steering system/direction cells, mitigation arms', () => {
    const steer = loadExperiment(config('names.yaml', `steering\nparams:\n  model: ${ORGANISM}\n  negative_coefs: [-2]\n  random_directions: 2\nsweep:\n  trait: [evil]\n  layer: [2]\n  coef: [0, 4]\n`));
    const ids = steer.cells.map((c) => c.id.replace(/-[0-9a-f]{12}$/, ''));
    expect(ids).toEqual([
      'trait=evil_layer=2_coef=0',
      'trait=evil_layer=2_coef=4',
      'trait=evil_layer=2_coef=0_system=positive',
      'trait=evil_layer=2_coef=-2_system=positive',
      'trait=evil_layer=2_coef=4_direction=random_random_seed=0',
      'trait=evil_layer=2_coef=4_direction=random_random_seed=1',
    ]);
    expect(new Set(ids).size).toBe(ids.length);
    const mit = loadExperiment(config('mit.yaml', `mitigation\nparams:\n  model: ${ORGANISM}\n  steer_layer: 2\n  inference_coefs: [1]\n  preventative_coefs: [1, 2]\n  preventative_all_coefs: []\n  projection_weights: [1]\n`));
    const mids = mit.cells.map((c) => c.id.replace(/-[0-9a-f]{12}$/, ''));
    expect(mids).toEqual(['arm=plain_coef=0', 'arm=inference_coef=1', 'arm=preventative_single_coef=1', 'arm=preventative_single_coef=2', 'arm=preventative_random_coef=2', 'arm=caft_coef=0', 'arm=projection_reg_coef=1']);
  });
});
