/**
 * persona run prints the study's result table (as the experiments/ entry points do) before the summary path.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ss from 'simple-statistics';
import { RESULT_TABLES, studyResultTable } from '../../cli/commands/run';
import { formatTable } from '../../lib/experiment/studies/shared/format';
import { SteeringCell, steeringTable, steeringTraitSummary } from '../../lib/experiment/studies/steering';
import { runCli } from '../support/cli';
import { ARITH } from '../experiment/support/studies';
import { tmpDir, writeFiles } from '../experiment/helpers';

test('persona run ends with the study table, then the summary path (last line, for scripts)', async () => {
  const d = tmpDir('run-table');
  writeFiles(d, { 'exp.yaml': `experiment: arith\nstudy: ${ARITH}\nseed: 5\noutput_dir: runs\ncache_dir: cache\nparams:\n  dataset: data.txt\n  delay_ms: 0\nsweep:\n  a: [1, 2]\n  b: [0.5]\n`, 'data.txt': 'l1\n' });
  RESULT_TABLES[ARITH] = (s) => formatTable([{ cells: s.n as number, total: s.total as number }]);
  try {
    const r = await runCli(['run', path.join(d, 'exp.yaml'), '--no-progress']);
    if (r.code !== 0) throw new Error(r.stderr);
    const summaryFile = path.join(d, 'runs/arith/summary.json');
    const table = formatTable([{ cells: 2, total: 1.5 + 2.5 }]);
    expect(r.stdout).toBe(`${table}${summaryFile}\n`);
    expect(JSON.parse(fs.readFileSync(summaryFile, 'utf8'))).toMatchObject({ n: 2, total: 4 });
  } finally {
    delete RESULT_TABLES[ARITH];
  }
  const plain = await runCli(['run', path.join(d, 'exp.yaml'), '--no-progress']);
  expect(plain.stdout).toBe(`${path.join(d, 'runs/arith/summary.json')}\n`); // a study without a table: only the path
});

test("the steering study's table is the entry point's", () => {
  const cell = (o: Partial<SteeringCell>): SteeringCell =>
    ({ model: 'm', trait: 'evil', layer: 1, coef: 0, positions: 'response', system: 'none', direction: 'persona', random_seed: 0, samples: 1, negative_coefs: [-4], random_directions: 1, ...o }) as SteeringCell;
  const res = (scores: number[]) => ({ trait_score: ss.mean(scores), trait_stderr: null, coherence: 90, coherence_stderr: null, n: scores.length, vector_norm: 1, extraction_kept: 1, extraction_total: 1, scores, coherences: scores.map(() => 90) });
  const results = [0, 4].map((coef) => ({ id: String(coef), settings: cell({ coef }), result: res([coef * 10, coef * 12]) }));
  const { summary } = steeringTraitSummary('evil', results as never);
  const table = studyResultTable('steering', { steering: { evil: summary } });
  expect(table).toBe(formatTable(steeringTable({ evil: summary })));
  expect(table).toMatch(/evil/);
});
