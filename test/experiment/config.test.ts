/** Config files: extends + deep merge, schema errors that name file, key and line, sweeps, cell ids. */
import * as path from 'node:path';
import { deepMerge, readConfigTree } from '../../lib/experiment/config';
import { cellId } from '../../lib/experiment/cells';
import { loadExperiment } from '../../lib/experiment/runner';
import { ARITH } from './support/studies';
import { TINY, errorOf, tmpDir, writeFiles } from './helpers';

const arith = (body: string) => `experiment: t\nstudy: ${ARITH}\n${body}`;

describe('config errors name the file, the key path and the line', () => {
  test('unknown top-level key', () => {
    const d = writeFiles(tmpDir('cfg'), { 'c.yaml': arith('params:\n  a: 1\nsweeps:\n  b: [1]\n') });
    const e = errorOf(() => loadExperiment(path.join(d, 'c.yaml')));
    expect(e.message).toMatch(/unknown key 'sweeps'/);
    expect(e.place).toMatchObject({ line: 5, field: 'sweeps' });
    expect(e.place.file).toMatch(/c\.yaml$/);
  });

  test('unknown study field in params and in sweep', () => {
    const d = writeFiles(tmpDir('cfg'), { 'p.yaml': arith('params:\n  a: 1\n  colour: red\n'), 's.yaml': arith('sweep:\n  a: [1]\n  colour: [red]\n') });
    const p = errorOf(() => loadExperiment(path.join(d, 'p.yaml')));
    expect(p.message).toMatch(/unknown key 'colour'/);
    expect(p.place).toMatchObject({ field: 'params.colour', line: 5 });
    const s = errorOf(() => loadExperiment(path.join(d, 's.yaml')));
    expect(s.place).toMatchObject({ field: 'sweep.colour', line: 5 });
  });

  test('wrong type, pointing at the sweep value', () => {
    const d = writeFiles(tmpDir('cfg'), { 'c.yaml': arith('sweep:\n  a: [1, 2]\n  b:\n    - 1\n    - big\n') });
    const e = errorOf(() => loadExperiment(path.join(d, 'c.yaml')));
    expect(e.message).toMatch(/expected number/);
    expect(e.place).toMatchObject({ field: 'sweep.b[1]', line: 7 });
  });

  test('wrong top-level type and a sweep that is not a list', () => {
    const d = writeFiles(tmpDir('cfg'), { 'seed.yaml': arith('seed: one\n'), 'axis.yaml': arith('sweep:\n  a: 3\n') });
    expect(errorOf(() => loadExperiment(path.join(d, 'seed.yaml'))).place).toMatchObject({ field: 'seed', line: 3 });
    expect(errorOf(() => loadExperiment(path.join(d, 'axis.yaml'))).place).toMatchObject({ field: 'sweep.a', line: 4 });
  });

  test('empty sweep axis', () => {
    const d = writeFiles(tmpDir('cfg'), { 'c.yaml': arith('sweep:\n  a: [1, 2]\n  b: []\n') });
    const e = errorOf(() => loadExperiment(path.join(d, 'c.yaml')));
    expect(e.message).toMatch(/empty sweep axis/);
    expect(e.place).toMatchObject({ field: 'sweep.b', line: 5 });
  });

  test('missing dataset file, named by key', () => {
    const d = writeFiles(tmpDir('cfg'), { 'c.yaml': arith('sweep:\n  dataset: [data/ok.txt, data/missing.txt]\n'), 'data/ok.txt': 'x\n' });
    const e = errorOf(() => loadExperiment(path.join(d, 'c.yaml')));
    expect(e.message).toMatch(/dataset file not found: data\/missing\.txt/);
    expect(e.place).toMatchObject({ field: 'sweep.dataset[1]', line: 4 });
  });

  test('a layer beyond the model (validation hook of the example study)', () => {
    const d = writeFiles(tmpDir('cfg'), {
      'c.yaml': `experiment: t\nstudy: logit-lens/steer-norm\nparams:\n  model: ${TINY}\nsweep:\n  layer: [1, 4, 5]\n`,
    });
    const e = errorOf(() => loadExperiment(path.join(d, 'c.yaml')));
    expect(e.message).toMatch(/layer 5 is beyond the model .* 4 decoder layers/);
    expect(e.place).toMatchObject({ field: 'sweep.layer[2]', line: 6 });
  });

  test('unknown study lists the registered ones; missing required key; invalid YAML; JSON configs', () => {
    const d = writeFiles(tmpDir('cfg'), {
      's.yaml': 'experiment: t\nstudy: nope\n',
      'r.yaml': `study: ${ARITH}\n`,
      'bad.yaml': 'experiment: t\n  study: [\n',
      'c.json': JSON.stringify({ experiment: 't', study: ARITH, sweep: { a: [1, 2, 3] } }),
      'u.json': JSON.stringify({ experiment: 't', study: ARITH, extra: 1 }),
    });
    const s = errorOf(() => loadExperiment(path.join(d, 's.yaml')));
    expect(s.message).toMatch(/unknown study 'nope'.*logit-lens\/steer-norm/);
    expect(s.place.line).toBe(2);
    expect(errorOf(() => loadExperiment(path.join(d, 'r.yaml'))).place.field).toBe('experiment');
    expect(errorOf(() => loadExperiment(path.join(d, 'bad.yaml'))).message).toMatch(/not valid YAML/);
    expect(loadExperiment(path.join(d, 'c.json')).cells).toHaveLength(3);
    const u = errorOf(() => loadExperiment(path.join(d, 'u.json')));
    expect(u.message).toMatch(/unknown key 'extra'/);
    expect(u.place.file).toMatch(/u\.json$/);
  });
});

describe('extends', () => {
  test('deep merge: mappings merge, lists and scalars replace, the extending file wins', () => {
    expect(deepMerge({ a: { x: 1, y: [1, 2] }, b: 1 }, { a: { y: [3] }, c: 2 })).toEqual({ a: { x: 1, y: [3] }, b: 1, c: 2 });
    const d = writeFiles(tmpDir('ext'), {
      'base/base.yaml': arith('seed: 3\nparams:\n  a: 1\n  b: 5\nsweep:\n  a: [1, 2]\n  b: [5, 6]\nslurm:\n  mem: 4G\n'),
      'child.yaml': 'extends: base/base.yaml\nexperiment: child\nparams:\n  b: 7\nsweep:\n  b: [9]\nslurm:\n  shards: 2\n',
    });
    const exp = loadExperiment(path.join(d, 'child.yaml'));
    expect(exp.config.experiment).toBe('child');
    expect(exp.config.seed).toBe(3);
    expect(exp.config.slurm).toMatchObject({ mem: '4G', shards: 2 });
    expect(exp.cells.map((c) => [c.settings.a, c.settings.b])).toEqual([[1, 9], [2, 9]]);
  });

  test('a path set in an extended file is relative to that file', () => {
    const d = writeFiles(tmpDir('ext'), {
      'base/base.yaml': arith('params:\n  dataset: data/train.txt\n'),
      'base/data/train.txt': 'x\n',
      'child.yaml': 'extends: base/base.yaml\nexperiment: child\n',
      'sub/other.yaml': 'extends: ../base/base.yaml\nexperiment: other\nsweep:\n  dataset: [../base/data/train.txt]\n',
    });
    expect(loadExperiment(path.join(d, 'child.yaml')).cells[0].settings.dataset).toBe(path.join('base', 'data', 'train.txt'));
    expect(loadExperiment(path.join(d, 'sub/other.yaml')).cells[0].settings.dataset).toBe('../base/data/train.txt');
  });

  test('an error in the extended file names that file and line', () => {
    const d = writeFiles(tmpDir('ext'), {
      'base.yaml': arith('params:\n  a: 1\n  b: "two"\n'),
      'child.yaml': 'extends: base.yaml\nexperiment: child\n',
    });
    const e = errorOf(() => loadExperiment(path.join(d, 'child.yaml')));
    expect(e.place.file).toMatch(/base\.yaml$/);
    expect(e.place).toMatchObject({ field: 'params.b', line: 5 });
  });

  test('cycles and missing parents are refused', () => {
    const d = writeFiles(tmpDir('ext'), {
      'a.yaml': 'extends: b.yaml\nexperiment: a\n',
      'b.yaml': 'extends: [c.yaml]\n',
      'c.yaml': 'extends: a.yaml\n',
      'm.yaml': 'extends: nowhere.yaml\n',
    });
    expect(errorOf(() => readConfigTree(path.join(d, 'a.yaml'))).message).toMatch(/cycle: .*a\.yaml → .*b\.yaml → .*c\.yaml → .*a\.yaml/);
    const m = errorOf(() => readConfigTree(path.join(d, 'm.yaml')));
    expect(m.message).toMatch(/does not exist: nowhere\.yaml/);
    expect(m.place.line).toBe(1);
  });
});

describe('sweeps and cell ids', () => {
  test('cartesian product in config order, last axis fastest, study defaults filled', () => {
    const d = writeFiles(tmpDir('sw'), { 'c.yaml': arith('params:\n  b: 0.5\nsweep:\n  a: [1, 2, 3]\n  b: [10, 20]\n') });
    const { cells, config } = loadExperiment(path.join(d, 'c.yaml'));
    expect(config.axes).toEqual(['a', 'b']);
    expect(cells.map((c) => [c.settings.a, c.settings.b])).toEqual([[1, 10], [1, 20], [2, 10], [2, 20], [3, 10], [3, 20]]);
    expect(cells[0].settings).toEqual({ a: 1, b: 10, delay_ms: 0, max_a: 100 });
    expect(new Set(cells.map((c) => c.id)).size).toBe(6);
    expect(cells[0].id).toMatch(/^a=1_b=10-[0-9a-f]{12}$/);
  });

  test('ids depend on settings, not on key order, spelling of defaults, or file', () => {
    const d = writeFiles(tmpDir('id'), {
      '1.yaml': arith('params:\n  b: 2\n  a: 1\n'),
      '2.json': JSON.stringify({ study: ARITH, params: { a: 1, delay_ms: 0 }, experiment: 'other' }),
      '3.yaml': arith('params:\n  a: 1\n  b: 2.5\n'),
      '4.yaml': arith('seed: 1\nparams:\n  a: 1\n'),
    });
    const id = (f: string) => loadExperiment(path.join(d, f)).cells[0].id;
    expect(id('1.yaml')).toBe(id('2.json'));
    expect(id('3.yaml')).not.toBe(id('1.yaml'));
    expect(id('4.yaml')).not.toBe(id('1.yaml'));
    // Fixed by the spec (sha256 of RFC 8785 JSON), independent of this code's key order.
    expect(cellId('s', 0, { b: 1, a: 'x/y.jsonl' }, ['a'])).toBe(cellId('s', 0, { a: 'x/y.jsonl', b: 1 }, ['a']));
    expect(cellId('s', 0, { a: 'x/y.jsonl' }, ['a'])).toMatch(/^a=y-[0-9a-f]{12}$/);
  });
});
