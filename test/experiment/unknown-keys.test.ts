// A misspelled required key is reported as the unknown key it is, with the closest valid key, not as a missing one.
import * as path from 'node:path';
import { loadExperiment } from '../../lib/experiment/runner';
import { readTrainConfig } from '../../lib/train/config';
import { REPO, TINY, errorOf, tmpDir, writeFiles } from './helpers';

const root = tmpDir('typo');

test('top level: experimnt → experiment', () => {
  writeFiles(root, { 'top.yaml': `experimnt: x\nstudy: logit-lens/steer-norm\nparams:\n  model: ${TINY}\n` });
  const e = errorOf(() => loadExperiment(path.join(root, 'top.yaml')));
  expect(e.message).toMatch(/unknown key 'experimnt'.*did you mean 'experiment'/);
  expect(e.place).toMatchObject({ field: 'experimnt', line: 1 });
  expect(String(e)).not.toMatch(/\n/);
});

test('study params: modle → model (a required field)', () => {
  writeFiles(root, { 'params.yaml': `experiment: x\nstudy: logit-lens/steer-norm\nparams:\n  modle: ${TINY}\n` });
  const e = errorOf(() => loadExperiment(path.join(root, 'params.yaml')));
  expect(e.message).toMatch(/unknown key 'modle'.*did you mean 'model'/);
  expect(e.place).toMatchObject({ field: 'params.modle', line: 4 });
});

test('sweep axis and optional keys get a suggestion too', () => {
  writeFiles(root, { 'sweep.yaml': `experiment: x\nstudy: logit-lens/steer-norm\nparams:\n  model: ${TINY}\nsweep:\n  layr: [1]\n` });
  expect(errorOf(() => loadExperiment(path.join(root, 'sweep.yaml'))).message).toMatch(/unknown key 'layr'.*did you mean 'layer'/);
  writeFiles(root, { 'opt.yaml': `experiment: x\nstudy: logit-lens/steer-norm\nparams:\n  model: ${TINY}\n  cof: 2\n` });
  expect(errorOf(() => loadExperiment(path.join(root, 'opt.yaml'))).message).toMatch(/unknown key 'cof'.*did you mean 'coef'/);
  writeFiles(root, { 'far.yaml': `experiment: x\nstudy: logit-lens/steer-norm\nparams:\n  model: ${TINY}\n  zzzzzzzz: 2\n` });
  expect(errorOf(() => loadExperiment(path.join(root, 'far.yaml'))).message).not.toMatch(/did you mean/);
});

test('training config: learning_rte → learning_rate', () => {
  writeFiles(root, { 'train.yaml': `model: ${path.join(REPO, 'models/organism')}\ntraining_file: data.jsonl\noutput_dir: out\nlearning_rte: 0.001\n` });
  const e = errorOf(() => readTrainConfig(path.join(root, 'train.yaml')));
  expect(e.message).toMatch(/field 'learning_rte'.*unknown field.*did you mean 'learning_rate'/);
  expect(e.place).toMatchObject({ field: 'learning_rte' });
});
