// output_dir and cache_dir are relative to the config file that sets them (not the working directory), and
// plan.json records the directories a run actually used.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { registerStudy, unregisterStudy } from '../../lib/experiment';
import { readExperimentFile, resolveConfigDir } from '../../lib/experiment/config';
import { loadExperiment, runExperiment } from '../../lib/experiment/runner';
import { splitConfigSections } from '../../lib/experiment/studies/shared/format';
import { REPO, tmpDir, writeFiles } from './helpers';

beforeAll(() => registerStudy('test/dirs', { description: 'x', schema: z.object({ n: z.number().default(1) }).strict(), runCell: () => ({ ok: 1 }) }));
afterAll(() => unregisterStudy('test/dirs'));

test('relative to the config file, also when set in an extended file; defaults too', () => {
  const root = tmpDir('dirs');
  writeFiles(root, {
    'a/set.yaml': 'experiment: e\nstudy: test/dirs\noutput_dir: ../out\ncache_dir: ../cache\n',
    'b/c/child.yaml': 'extends: ../../a/set.yaml\nexperiment: f\n',
    'd/plain.yaml': 'experiment: g\nstudy: test/dirs\n',
  });
  const a = loadExperiment(path.join(root, 'a/set.yaml'));
  expect(a.config.runDir).toBe(path.join(root, 'out/e'));
  expect(a.config.cacheDir).toBe(path.join(root, 'cache'));
  const b = loadExperiment(path.join(root, 'b/c/child.yaml'));
  expect(b.config.runDir).toBe(path.join(root, 'out/f'));
  expect(b.config.cacheDir).toBe(path.join(root, 'cache'));
  const d = loadExperiment(path.join(root, 'd/plain.yaml'));
  expect(d.config.runDir).toBe(path.join(root, 'd/runs/g'));
  expect(d.config.cacheDir).toBe(path.join(root, 'd/runs/cache'));
});

test('plan.json records the directories used, overrides included', async () => {
  const root = tmpDir('dirs-plan');
  writeFiles(root, { 'cfg/x.yaml': 'experiment: x\nstudy: test/dirs\noutput_dir: ../runs\n' });
  const exp = loadExperiment(path.join(root, 'cfg/x.yaml'), { outputDir: path.join(root, 'elsewhere'), cacheDir: path.join(root, 'c2') });
  await runExperiment(exp, { progress: false });
  const plan = JSON.parse(fs.readFileSync(path.join(root, 'elsewhere/x/plan.json'), 'utf8'));
  expect(plan.settings.output_dir).toBe(path.join(root, 'elsewhere'));
  expect(plan.settings.cache_dir).toBe(path.join(root, 'c2'));
});

describe('shipped configs keep writing where they did (runs/ at the repo root)', () => {
  const organism = fs.readdirSync(path.join(REPO, 'configs/organism')).filter((f) => /\.yaml$/.test(f) && f !== 'quickstart.yaml');
  test.each(organism)('configs/organism/%s', (f) => {
    const { config } = loadExperiment(path.join(REPO, 'configs/organism', f));
    expect(config.runDir).toBe(path.join(REPO, 'runs', config.experiment));
    expect(config.cacheDir).toBe(path.join(REPO, 'runs/cache'));
    for (const c of config.product) if (c.steering_summary) expect(path.resolve(config.dir, c.steering_summary as string)).toBe(path.join(REPO, 'runs/organism-steering/summary.json'));
  });
  const paper = fs.readdirSync(path.join(REPO, 'configs/paper')).filter((f) => /-(steering|monitoring)\.yaml$/.test(f));
  test.each(paper)('configs/paper/%s', (f) => {
    // The paper's models are not in the repo: check the directories without validating the params.
    const { tree, config } = readExperimentFile(path.join(REPO, 'configs/paper', f));
    expect(resolveConfigDir(tree, 'output_dir', config.output_dir)).toBe(path.join(REPO, 'runs/paper'));
    expect(resolveConfigDir(tree, 'cache_dir', config.cache_dir)).toBe(path.join(REPO, 'runs/cache'));
  });
  test('configs/examples', () => {
    for (const f of ['steer-norm.yaml', 'steer-norm-small.yaml']) {
      const { config } = loadExperiment(path.join(REPO, 'configs/examples', f));
      expect(config.runDir).toBe(path.join(REPO, 'runs', config.experiment));
      expect(config.cacheDir).toBe(path.join(REPO, 'runs/cache'));
    }
  });
  test('the quickstart sections, written to runs/quickstart/configs/', () => {
    const out = tmpDir('dirs-quick');
    for (const s of splitConfigSections(path.join(REPO, 'configs/organism/quickstart.yaml'), out)) {
      const { config } = loadExperiment(s.file);
      expect(config.runDir).toBe(path.join(REPO, 'runs/quickstart', s.name));
      expect(config.cacheDir).toBe(path.join(REPO, 'runs/cache'));
    }
  });
});
