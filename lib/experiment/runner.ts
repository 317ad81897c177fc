/**
 * Turning a config into a run: load + validate, expand the cells, run the cells of this shard that have
 * no result yet (each result written atomically, result.json last, so a cell is finished iff its
 * result.json exists), then collect: one results CSV, the study's summary JSON and figures.
 *
 *   <output_dir>/<experiment>/
 *     plan.json                      resolved config + every cell id and settings (same for every shard)
 *     cells/<id>/result.json         {id, settings, result}; other files a cell writes live beside it
 *     results.csv, summary.json      written by collect (at the end of an unsharded run, or `persona collect`)
 *     figures/<name>.{csv,vl.json,svg,png}
 *     run.lock | run.shard-i-of-n.lock   while a run is going
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { checkpointFingerprint } from '../io/fingerprint';
import { startProgress } from '../progress';
import { FigureSpec, Row, rowsToCsv, writeFigure } from '../plot';
import { Cache, writeJsonAtomic } from './cache';
import { Shard, cellId, shardOf } from './cells';
import { LoadedConfigTree, configError, readExperimentFile, resolveConfigDir } from './config';
import { canonicalJson } from './hash';
import { acquireLock, pidAlive } from './lock';
import { CellContext, CellResult, CellSettings, ExperimentConfig, Study, expandProduct, getStudy, studyNames, validateContext } from './study';
import './studies'; // registers the built-in studies

export interface PlannedCell {
  id: string;
  settings: CellSettings;
}

export interface LoadedExperiment {
  tree: LoadedConfigTree;
  config: ExperimentConfig;
  study: Study;
  cells: PlannedCell[];
}

export interface LoadOptions {
  /** Overrides output_dir (resolved against the working directory, like any command-line path). */
  outputDir?: string;
  /** Overrides cache_dir (likewise). */
  cacheDir?: string;
}

/**
 * Reads a config and expands its sweep, without validating it against the model or files (what `persona plan`'s
 * estimate needs before a checkpoint exists); loadExperiment validates on top of this.
 */
export function expandExperiment(file: string, opts: LoadOptions = {}) {
  const { tree, config: f } = readExperimentFile(file);
  const study = getStudy(f.study);
  if (!study) throw configError(tree, ['study'], `unknown study '${f.study}'; registered: ${studyNames().join(', ') || '(none)'}`);
  const { axes, product } = expandProduct(tree, f, study);
  const outputDir = opts.outputDir !== undefined ? path.resolve(opts.outputDir) : resolveConfigDir(tree, 'output_dir', f.output_dir);
  const config: ExperimentConfig = {
    ...f,
    file: tree.file,
    dir: path.dirname(tree.file),
    axes,
    product,
    runDir: path.join(outputDir, f.experiment),
    cacheDir: opts.cacheDir !== undefined ? path.resolve(opts.cacheDir) : resolveConfigDir(tree, 'cache_dir', f.cache_dir),
  };
  return { tree, config, study };
}

/** Reads, validates and expands a config; every error names the file, key and line. */
export function loadExperiment(file: string, opts: LoadOptions = {}): LoadedExperiment {
  const { tree, config, study } = expandExperiment(file, opts);
  const f = config;
  const { axes, product } = config;
  study.validate?.(config, validateContext(tree, config));
  const settings = study.cells ? study.cells(config) : product;
  const cells: PlannedCell[] = [];
  const seen = new Set<string>();
  for (const s of settings) {
    const id = cellId(f.study, f.seed, s, axes);
    if (seen.has(id)) continue; // two sweep points that resolve to the same settings are one cell
    seen.add(id);
    cells.push({ id, settings: s });
  }
  return { tree, config, study, cells };
}

export interface RunOptions {
  shard?: Shard;
  progress?: boolean;
  log?: (message: string) => void;
  /** Called after each computed cell (tests use it to kill the process mid-sweep). */
  onCellDone?: (id: string, computedSoFar: number) => void;
  /** Collect after the cells (default: only for an unsharded run). */
  collect?: boolean;
}

export interface RunReport {
  runDir: string;
  cells: number;
  inShard: number;
  computed: number;
  skipped: number;
  collected?: CollectReport;
}

const RESULT = 'result.json';

export function cellDir(config: ExperimentConfig, id: string): string {
  return path.join(config.runDir, 'cells', id);
}

/**
 * What a cell's result depends on besides its settings: Study.inputs, or by default the fingerprint of the
 * checkpoint in a string field `model` ('absent' when there is none at that path: the cell will say so).
 */
export function cellInputs(exp: LoadedExperiment, cell: PlannedCell): Record<string, string> {
  const resolvePath = (p: string) => path.resolve(exp.config.dir, p);
  if (exp.study.inputs) return exp.study.inputs(cell.settings, resolvePath);
  const model = (cell.settings as Record<string, unknown>).model;
  if (typeof model !== 'string') return {};
  const dir = resolvePath(model);
  return { model: fs.existsSync(path.join(dir, 'config.json')) ? checkpointFingerprint(dir) : 'absent' };
}

export type CellState = 'done' | 'stale' | 'todo';

/**
 * A cell's state with what decided it: todo (no result, or an unreadable one: run it again); stale (a result
 * computed from other inputs, e.g. the checkpoint was retrained in place); done (its record).
 */
export function readCell(exp: LoadedExperiment, cell: PlannedCell): { state: CellState; inputs: Record<string, string>; record?: CellResult } {
  const inputs = cellInputs(exp, cell);
  const file = path.join(cellDir(exp.config, cell.id), RESULT);
  if (!fs.existsSync(file)) return { state: 'todo', inputs };
  let record: CellResult;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as CellResult;
  } catch {
    return { state: 'todo', inputs };
  }
  const same = Object.keys(inputs).length === 0 || canonicalJson(record.inputs ?? {}) === canonicalJson(inputs);
  return same ? { state: 'done', inputs, record } : { state: 'stale', inputs };
}

export function cellState(exp: LoadedExperiment, cell: PlannedCell): CellState {
  return readCell(exp, cell).state;
}

export function isCellDone(exp: LoadedExperiment, cell: PlannedCell): boolean {
  return cellState(exp, cell) === 'done';
}

function lockName(shard?: Shard): string {
  return shard && shard.count > 1 ? `run.shard-${shard.index}-of-${shard.count}.lock` : 'run.lock';
}

export async function runExperiment(exp: LoadedExperiment, opts: RunOptions = {}): Promise<RunReport> {
  const { config, study, cells } = exp;
  const log = opts.log ?? (() => undefined);
  const shard = opts.shard;
  const mine = shard ? cells.filter((c) => shardOf(c.id, shard.count) === shard.index) : cells;
  fs.mkdirSync(config.runDir, { recursive: true });
  const what = `experiment '${config.experiment}'${shard && shard.count > 1 ? ` shard ${shard.index}/${shard.count}` : ''}`;
  const lock = acquireLock(path.join(config.runDir, lockName(shard)), what);
  const cache = new Cache(config.cacheDir);
  const shared = new Map<string, { value: unknown; dispose?: (v: unknown) => void }>();
  let computed = 0;
  let skipped = 0;
  try {
    removeStaleTemps(config.runDir);
    removeStaleTemps(path.join(config.runDir, 'figures'));
    writePlan(exp);
    cache.cleanStaleTemps();
    let stale = 0;
    const todo: (PlannedCell & { inputs: Record<string, string> })[] = [];
    for (const c of mine) {
      const { state, inputs } = readCell(exp, c);
      if (state === 'done') skipped++;
      else todo.push({ ...c, inputs });
      if (state === 'stale') stale++;
    }
    const staleNote = stale ? ` (${stale} of them rerun because an input changed, e.g. the model was retrained in place)` : '';
    log(`${what}: ${cells.length} cells, ${mine.length} in this shard, ${skipped} already done, ${todo.length} to run${staleNote}`);
    const bar = startProgress(config.experiment, mine.length, { quiet: opts.progress === false, start: skipped });
    try {
      for (const cell of todo) {
        const dir = cellDir(config, cell.id);
        // An unfinished cell starts from an empty folder: nothing a killed attempt wrote survives.
        fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir, { recursive: true });
        const ctx: CellContext = {
          id: cell.id,
          dir,
          config,
          cache,
          resolvePath: (p) => path.resolve(config.dir, p),
          log: (m) => log(`[${cell.id}] ${m}`),
          shared<T>(key: string, create: () => T, dispose?: (v: T) => void): T {
            if (!shared.has(key)) shared.set(key, { value: create(), dispose: dispose as ((v: unknown) => void) | undefined });
            return shared.get(key)!.value as T;
          },
        };
        let result: unknown;
        try {
          result = await study.runCell(cell.settings, ctx);
        } catch (e) {
          if (e instanceof PersonaError) throw new PersonaError(`cell ${cell.id}: ${e.message}`);
          throw e;
        }
        const { inputs } = cell;
        const record: CellResult = { id: cell.id, settings: cell.settings, result: result as Record<string, unknown>, ...(Object.keys(inputs).length ? { inputs } : {}) };
        canonicalJson(record, `result of cell ${cell.id}`); // refuse NaN/undefined before anything is written
        writeJsonAtomic(path.join(dir, RESULT), record);
        computed++;
        bar.update(skipped + computed);
        opts.onCellDone?.(cell.id, computed);
      }
    } finally {
      bar.stop();
    }
  } finally {
    for (const { value, dispose } of shared.values()) dispose?.(value);
    lock.release();
  }
  const report: RunReport = { runDir: config.runDir, cells: cells.length, inShard: mine.length, computed, skipped };
  if (opts.collect ?? !(shard && shard.count > 1)) report.collected = await collectExperiment(exp);
  return report;
}

/** Temp files of atomic writes (lib/io/atomic.ts names them .<name>.<pid>.<time>.<rand>.tmp) whose writer died. */
function removeStaleTemps(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const m = /^\..+\.(\d+)\.\d+\.[a-z0-9]+\.tmp$/.exec(name);
    if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/** plan.json: what the run folder is for; identical for every shard and every rerun of the same config. */
function writePlan(exp: LoadedExperiment): void {
  const { config, cells } = exp;
  const { product: _p, runDir: _r, cacheDir: _c, file: _f, dir: _d, ...rest } = config;
  // The directories actually used (after --output-dir/--cache-dir and resolution), not the config's text.
  const settings = { ...rest, output_dir: path.dirname(config.runDir), cache_dir: config.cacheDir };
  const plan = { config: path.relative(process.cwd(), config.file) || config.file, settings, cells };
  const text = JSON.stringify(plan, null, 2) + '\n';
  const file = path.join(config.runDir, 'plan.json');
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) writeFileAtomic(file, text);
}

export interface CollectReport {
  resultsCsv: string;
  summaryFile: string;
  figures: string[];
  missing: string[];
}

/** Flattens nested result objects into dotted columns; lists become JSON text. */
function flatten(prefix: string, v: unknown, out: Row): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  } else if (Array.isArray(v)) out[prefix] = JSON.stringify(v);
  else out[prefix] = v as Row[string];
}

/** Results of the finished cells; `missing` lists cells without a current one, `stale` (a subset) those whose result is from other inputs. */
export function readCellResults(exp: LoadedExperiment): { results: CellResult[]; missing: string[]; stale: string[] } {
  const results: CellResult[] = [];
  const missing: string[] = [];
  const stale: string[] = [];
  for (const c of exp.cells) {
    const { state, record } = readCell(exp, c);
    if (record) results.push(record);
    else missing.push(c.id);
    if (state === 'stale') stale.push(c.id);
  }
  return { results, missing, stale };
}

/**
 * Merges every cell's result (from any shard) into results.csv, runs the study's summary and writes
 * summary.json and figures. Refuses when cells are missing unless `allowPartial`.
 */
export async function collectExperiment(exp: LoadedExperiment, opts: { allowPartial?: boolean } = {}): Promise<CollectReport> {
  const { config, study } = exp;
  const { results, missing, stale } = readCellResults(exp);
  if (missing.length && !opts.allowPartial) {
    const staleNote = stale.length ? ` (${stale.length} of them have a result from other inputs: the model changed since they ran)` : '';
    throw new PersonaError(
      `${missing.length} of ${exp.cells.length} cells have no result yet${staleNote} (e.g. ${missing[0]}); run the missing shards, or collect with --allow-partial`,
      { file: config.runDir },
    );
  }
  const rows: Row[] = results.map((r) => {
    const row: Row = { cell_id: r.id };
    flatten('', r.settings, row);
    const res: Row = {};
    flatten('', r.result, res);
    for (const [k, v] of Object.entries(res)) row[k in row ? `result.${k}` : k] = v;
    return row;
  });
  const resultsCsv = path.join(config.runDir, 'results.csv');
  writeFileAtomic(resultsCsv, rows.length ? rowsToCsv(rows) : 'cell_id\n');
  const cache = new Cache(config.cacheDir);
  const s = study.summarize ? await study.summarize(results, { config, runDir: config.runDir, cache }) : { summary: {} };
  const figures: string[] = [];
  for (const fig of s.figures ?? ([] as FigureSpec[])) {
    const out = await writeFigure(path.join(config.runDir, 'figures'), fig);
    figures.push(out.csv, out.svg, out.png);
  }
  if ('run' in s.summary) throw new PersonaError(`study '${config.study}' returned a summary key 'run', which is reserved`);
  const summary = {
    ...s.summary,
    run: {
      experiment: config.experiment,
      study: config.study,
      description: config.description,
      cells: exp.cells.length,
      collected: results.length,
      missing: missing.length,
      results_csv: path.relative(config.runDir, resultsCsv),
      figures: figures.map((f) => path.relative(config.runDir, f)),
    },
  };
  const summaryFile = path.join(config.runDir, 'summary.json');
  writeJsonAtomic(summaryFile, summary);
  return { resultsCsv, summaryFile, figures, missing };
}
