/**
 * Runs: resume after kill -9 (child process) ends with exactly an uninterrupted run's files; a second run
 * while one is running is refused and corrupts nothing; finished cells are never recomputed; shards
 * partition the cells and `collect` merges them into the same results as one run; Slurm script.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseShard, shardOf } from '../../lib/experiment/cells';
import { cellInputs, cellState, collectExperiment, loadExperiment, runExperiment } from '../../lib/experiment/runner';
import { slurmScript } from '../../lib/experiment/slurm';
import { ARITH, READS_MODEL } from './support/studies';
import { snapshot, tmpDir, writeFiles } from './helpers';

const CHILD = path.join(__dirname, 'support/child-run.js');
const REPO = path.resolve(__dirname, '../..');

function config(dir: string, delayMs = 0): string {
  return path.join(
    writeFiles(dir, {
      'exp.yaml': `experiment: arith\nstudy: ${ARITH}\nseed: 5\nparams:\n  dataset: data.txt\n  delay_ms: ${delayMs}\nsweep:\n  a: [1, 2, 3, 4]\n  b: [0.5, 1.5, 2.5]\nslurm:\n  shards: 3\n  partition: gpu\n  setup: ["module load node"]\n`,
      'data.txt': 'l1\nl2\nl3\n',
    }),
    'exp.yaml',
  );
}

function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

async function straightRun(): Promise<Record<string, string>> {
  const d = tmpDir('straight');
  const out = path.join(d, 'runs');
  const r = await runExperiment(loadExperiment(config(d), { outputDir: out, cacheDir: path.join(out, 'cache') }), { progress: false });
  expect(r).toMatchObject({ cells: 12, computed: 12, skipped: 0 });
  return snapshot(path.join(out, 'arith'), SKIP);
}

/** plan.json names the config file, which each test writes in its own temp folder; everything else must match. */
const SKIP = /(\.lock|plan\.json)$/;
const planCells = (runDir: string) => JSON.parse(fs.readFileSync(path.join(runDir, 'plan.json'), 'utf8')).cells;

test('kill -9 after 5 cells, rerun: same files as an uninterrupted run; finished cells not recomputed', async () => {
  const d = tmpDir('killed');
  const out = path.join(d, 'runs');
  const cfg = config(d);
  const exp0 = () => loadExperiment(cfg, { outputDir: out, cacheDir: path.join(out, 'cache') });
  const child = spawnSync(process.execPath, [CHILD, cfg, out, '5'], { cwd: REPO, encoding: 'utf8' });
  expect(child.signal).toBe('SIGKILL');
  const cellsDir = path.join(out, 'arith', 'cells');
  const done = fs.readdirSync(cellsDir).filter((c) => fs.existsSync(path.join(cellsDir, c, 'result.json')));
  expect(done).toHaveLength(5);
  expect(fs.existsSync(path.join(out, 'arith', 'run.lock'))).toBe(true); // left behind by the dead process
  const before = Object.fromEntries(done.map((c) => [c, fs.statSync(path.join(cellsDir, c, 'result.json')).mtimeMs]));
  // What a kill during a write would leave: a half cell (no result.json) and a temp file of an atomic write.
  const half = exp0().cells.find((c) => !done.includes(c.id))!.id;
  writeFiles(path.join(cellsDir, half), { 'partial.bin': 'garbage' });
  writeFiles(path.join(out, 'arith'), { [`.results.csv.${deadPid()}.1.abc.tmp`]: 'half' });

  const exp = exp0();
  const r = await runExperiment(exp, { progress: false }); // takes over the stale lock
  expect(r).toMatchObject({ computed: 7, skipped: 5 });
  for (const c of done) expect(fs.statSync(path.join(cellsDir, c, 'result.json')).mtimeMs).toBe(before[c]);
  expect(snapshot(path.join(out, 'arith'), SKIP)).toEqual(await straightRun());
  expect(planCells(path.join(out, 'arith'))).toEqual(exp.cells);
  const again = await runExperiment(exp, { progress: false });
  expect(again).toMatchObject({ computed: 0, skipped: 12 });
  const summary = JSON.parse(fs.readFileSync(r.collected!.summaryFile, 'utf8'));
  // sum over a∈{1..4}, b∈{0.5,1.5,2.5} of a+b = 3·10 + 4·4.5
  expect(summary).toMatchObject({ total: 48, n: 12, run: { experiment: 'arith', cells: 12, collected: 12, missing: 0 } });
  const csv = fs.readFileSync(r.collected!.resultsCsv, 'utf8').trim().split('\n');
  expect(csv[0]).toBe('cell_id,a,b,dataset,delay_ms,max_a,sum,product,squared,lines,nested.seed');
  expect(csv).toHaveLength(13);
  expect(csv[1]).toMatch(/^a=1_b=0\.5-[0-9a-f]{12},1,0\.5,data\.txt,0,100,1\.5,0\.5,1,3,5$/);
});

test('a second run while the first still runs is refused; the first is killed; the rerun completes identically', async () => {
  const d = tmpDir('concurrent');
  const out = path.join(d, 'runs');
  const cfg = config(d, 150);
  const child = spawn(process.execPath, [CHILD, cfg, out], { cwd: REPO, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const lock = path.join(out, 'arith', 'run.lock');
  const cellsDir = path.join(out, 'arith', 'cells');
  const someDone = () => fs.existsSync(cellsDir) && fs.readdirSync(cellsDir).some((c) => fs.existsSync(path.join(cellsDir, c, 'result.json')));
  for (let i = 0; i < 200 && !(fs.existsSync(lock) && someDone()); i++) await new Promise((r) => setTimeout(r, 50));
  expect(fs.existsSync(lock)).toBe(true);
  const exp = loadExperiment(cfg, { outputDir: out, cacheDir: path.join(out, 'cache') });
  await expect(runExperiment(exp, { progress: false })).rejects.toThrow(new RegExp(`experiment 'arith' is already running \\(pid ${child.pid} on `));
  child.kill('SIGKILL');
  await exited;
  const r = await runExperiment(exp, { progress: false });
  expect(r.computed + r.skipped).toBe(12);
  expect(r.skipped).toBeGreaterThan(0);
  const straight = await straightRun();
  const snap = snapshot(path.join(out, 'arith'), SKIP);
  // delay_ms is part of the settings, so ids differ from the straight run's; the summary does not depend on it.
  expect(snap['summary.json']).toBe(straight['summary.json']);
  expect(Object.keys(snap).filter((f) => f.endsWith('result.json'))).toHaveLength(12);
  expect(Object.keys(snap).filter((f) => /\.(tmp|stale)/.test(f))).toEqual([]); // nothing half-written left behind
}, 30000);

test('shards partition the cells deterministically; collect merges them into what one run writes', async () => {
  const d = tmpDir('shards');
  const out = path.join(d, 'runs');
  const exp = loadExperiment(config(d), { outputDir: out, cacheDir: path.join(out, 'cache') });
  expect(() => parseShard('3/3')).toThrow(/0 ≤ i < n/);
  expect(() => parseShard('1-3')).toThrow(/i\/n/);
  expect(parseShard(' 2/5 ')).toEqual({ index: 2, count: 5 });
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    if (i === 2) await expect(collectExperiment(exp)).rejects.toThrow(/cells have no result yet/);
    const r = await runExperiment(exp, { shard: { index: i, count: 3 }, progress: false });
    expect(r.collected).toBeUndefined();
    const mine = exp.cells.filter((c) => shardOf(c.id, 3) === i).map((c) => c.id);
    expect(r.inShard).toBe(mine.length);
    seen.push(...mine);
  }
  expect(seen.sort()).toEqual(exp.cells.map((c) => c.id).sort());
  // The shard function uses the id's hash only: a cell's shard does not depend on the rest of the sweep.
  expect(exp.cells.map((c) => shardOf(c.id, 3))).toEqual(exp.cells.map((c) => parseInt(c.id.slice(-12, -4), 16) % 3));
  await collectExperiment(exp);
  expect(snapshot(path.join(out, 'arith'), SKIP)).toEqual(await straightRun());
  expect(planCells(path.join(out, 'arith'))).toEqual(exp.cells);
});

test('partial collect and the Slurm job-array script', async () => {
  const d = tmpDir('slurm');
  const out = path.join(d, 'runs');
  const exp = loadExperiment(config(d), { outputDir: out, cacheDir: path.join(out, 'cache') });
  await runExperiment(exp, { shard: { index: 0, count: 4 }, progress: false });
  const partial = await collectExperiment(exp, { allowPartial: true });
  expect(partial.missing.length).toBe(exp.cells.filter((c) => shardOf(c.id, 4) !== 0).length);
  const { script, shards } = slurmScript(exp);
  expect(shards).toBe(3);
  expect(script.startsWith('#!/bin/bash\n')).toBe(true);
  expect(script).toContain('#SBATCH --array=0-2\n');
  expect(script).toContain('#SBATCH --partition=gpu\n');
  expect(script).toContain('#SBATCH --job-name=arith\n');
  expect(script).toContain(`npx persona run ${exp.config.file} --shard "\${SLURM_ARRAY_TASK_ID}/3" --output-dir ${out}`);
  expect(script.indexOf('module load node')).toBeLessThan(script.indexOf('npx persona run'));
  expect(script).not.toContain('--no-progress'); // progress lines go to the task's log (lib/progress.ts)
  expect(slurmScript(exp, { shards: 50 }).shards).toBe(12); // never more tasks than cells
  const bash = spawnSync('bash', ['-n'], { input: script });
  expect(bash.status).toBe(0); // the script parses
});

test('a checkpoint retrained in place makes its cells stale: rerun recomputes them, collect refuses them meanwhile', async () => {
  const d = tmpDir('stale');
  const out = path.join(d, 'runs');
  writeFiles(d, {
    'model/config.json': '{"width": 3}\n',
    'exp.yaml': `experiment: reads\nstudy: ${READS_MODEL}\nparams:\n  model: model\nsweep:\n  k: [1, 2]\n`,
    'paper.yaml': 'experiment: reads-paper\nstudy: paper\nparams:\n  configs: [exp.yaml]\n',
  });
  const load = () => loadExperiment(path.join(d, 'exp.yaml'), { outputDir: out, cacheDir: path.join(out, 'cache') });
  const paper = () => loadExperiment(path.join(d, 'paper.yaml'), { outputDir: out, cacheDir: path.join(out, 'cache') });
  const logs: string[] = [];
  const first = await runExperiment(load(), { progress: false });
  expect(first).toMatchObject({ computed: 2, skipped: 0 });
  const exp = load();
  const record = JSON.parse(fs.readFileSync(path.join(out, 'reads', 'cells', exp.cells[0].id, 'result.json'), 'utf8'));
  expect(record.inputs).toEqual(cellInputs(exp, exp.cells[0]));
  expect(record.inputs.model).toMatch(/^[0-9a-f]{64}$/);
  expect(await runExperiment(load(), { progress: false })).toMatchObject({ computed: 0, skipped: 2 });
  const paperBefore = cellInputs(paper(), paper().cells[0]);

  // Retrain in place: same path, other weights.
  writeFiles(d, { 'model/config.json': '{"width": 5}\n' });
  expect(load().cells.map((c) => cellState(load(), c))).toEqual(['stale', 'stale']);
  expect(cellInputs(paper(), paper().cells[0])).not.toEqual(paperBefore);
  await expect(collectExperiment(load())).rejects.toThrow(/2 of 2 cells have no result yet \(2 of them have a result from other inputs/);
  const again = await runExperiment(load(), { progress: false, log: (m) => logs.push(m) });
  expect(again).toMatchObject({ computed: 2, skipped: 0 });
  expect(logs.join('\n')).toMatch(/2 of them rerun because an input changed/);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'reads', 'summary.json'), 'utf8'));
  expect(summary.widths).toEqual([5, 10]);
  // Notes beside the weights (a README, a report) are not inputs.
  writeFiles(d, { 'model/README.md': 'notes\n' });
  expect(await runExperiment(load(), { progress: false })).toMatchObject({ computed: 0, skipped: 2 });
});
