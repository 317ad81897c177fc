// `extends` from another folder: every path field of every study resolves as it did in the extended file.
import * as path from 'node:path';
import { z } from 'zod';
import { getStudy, studyNames } from '../../lib/experiment';
import { loadExperiment } from '../../lib/experiment/runner';
import { REPO, tmpDir, writeFiles } from './helpers';

const BASES: Record<string, string> = {
  steering: 'configs/organism/steering.yaml',
  monitoring: 'configs/organism/monitoring.yaml',
  shift: 'configs/organism/shift.yaml',
  screening: 'configs/organism/screening.yaml',
  mitigation: 'configs/organism/mitigation.yaml',
  paper: 'configs/organism/paper.yaml',
  'logit-lens/steer-norm': 'configs/examples/steer-norm.yaml',
};

/** Value of a dotted field ('judge.prompts') of a cell. */
const get = (cell: Record<string, unknown>, f: string): unknown => f.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], cell);
const resolveAll = (dir: string, v: unknown): unknown => (typeof v === 'string' ? path.resolve(dir, v) : Array.isArray(v) ? v.map((x) => resolveAll(dir, x)) : v);

/** Schema fields whose description says they are paths ("relative to …"), dotted for nested objects. */
function describedPaths(schema: z.ZodObject, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, s] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    let inner: z.ZodType = s;
    while (!(inner instanceof z.ZodObject) && (inner as { def: { innerType?: z.ZodType } }).def.innerType) inner = (inner as { def: { innerType: z.ZodType } }).def.innerType;
    if (inner instanceof z.ZodObject) out.push(...describedPaths(inner, `${prefix}${k}.`));
    else if (/relative to/.test(s.description ?? '')) out.push(`${prefix}${k}`);
  }
  return out;
}

test('every registered study has a base config here', () => {
  expect(studyNames().filter((n) => getStudy(n) && !(n in BASES))).toEqual([]);
});

describe.each(Object.entries(BASES))('%s', (name, rel) => {
  test('declares every path field of its schema', () => {
    expect([...(getStudy(name)!.pathFields ?? [])].sort()).toEqual(expect.arrayContaining(describedPaths(getStudy(name)!.schema)));
  });

  test('a config in another folder extending it resolves every path field as the base does', () => {
    const root = tmpDir('extpaths');
    writeFiles(root, { 'elsewhere/child.yaml': `extends: ${path.join(REPO, rel)}\nexperiment: child\n` });
    const base = loadExperiment(path.join(REPO, rel));
    const child = loadExperiment(path.join(root, 'elsewhere/child.yaml'));
    expect(child.config.product.length).toBe(base.config.product.length);
    for (const f of getStudy(name)!.pathFields ?? [])
      base.config.product.forEach((b, i) => {
        expect(resolveAll(child.config.dir, get(child.config.product[i], f))).toEqual(resolveAll(base.config.dir, get(b, f)));
      });
    expect(child.config.cacheDir).toBe(base.config.cacheDir);
    expect(path.dirname(child.config.runDir)).toBe(path.dirname(base.config.runDir));
  });
});

test('nested and swept path fields (judge.prompts, sweep model) are rebased too', () => {
  const root = tmpDir('extpaths-nested');
  writeFiles(root, {
    'a/ckpt/.keep': '',
    'a/base.yaml': `experiment: b\nstudy: steering\nparams:\n  trait: evil\n  artifacts: ${path.join(REPO, 'models/organism/artifacts')}\n  judge:\n    prompts: prompts.json\nsweep:\n  model: [${path.relative(path.join(root, 'a'), path.join(REPO, 'models/organism'))}]\n`,
    'b/c/child.yaml': 'extends: ../../a/base.yaml\nexperiment: c\n',
  });
  const child = loadExperiment(path.join(root, 'b/c/child.yaml'));
  const cell = child.config.product[0] as Record<string, unknown>;
  expect(path.resolve(child.config.dir, get(cell, 'judge.prompts') as string)).toBe(path.join(root, 'a/prompts.json'));
  expect(path.resolve(child.config.dir, cell.model as string)).toBe(path.join(REPO, 'models/organism'));
});
