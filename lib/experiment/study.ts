/**
 * The study registry: a study says what one cell's settings are (a zod schema), how to check a config
 * against the world (model size, dataset files), which cells a config means, how to compute one cell and
 * how to summarize all cells into a summary JSON and figures. The runner knows nothing else about it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { PersonaError } from '../errors';
import type { Cache } from './cache';
import type { FigureSpec } from '../plot';
import { ExperimentFile, KeyPath, LoadedConfigTree, configError, locate, pickIssue, shapeKeysAt, unknownKeyMessage } from './config';

/** Settings of one cell, after the study schema applied its defaults. */
export type CellSettings = Record<string, unknown>;

export interface ExperimentConfig<P extends object = CellSettings> extends Omit<ExperimentFile, 'params' | 'sweep'> {
  /** Absolute path of the config file. */
  file: string;
  /** Directory of the config file: study input paths are relative to it. */
  dir: string;
  params: Record<string, unknown>;
  sweep: Record<string, unknown[]>;
  /** Swept field names, in config order. */
  axes: string[];
  /** Resolved settings of every cell of the cartesian product (params ∪ one value per axis, schema defaults applied). */
  product: P[];
  /** Absolute <output_dir>/<experiment>. */
  runDir: string;
  /** Absolute cache root. */
  cacheDir: string;
}

export interface ValidateContext {
  file: string;
  /** Throws a PersonaError at `keyPath` (e.g. ['sweep', 'layer', 2]) with the file and line. */
  fail(keyPath: KeyPath, message: string): never;
  /** Where field `name` is set: ['sweep', name] if swept, else ['params', name]. */
  keyOf(name: string): KeyPath;
  /** The values a field takes over the sweep, each with the key path that sets it. */
  valuesOf(name: string): { value: unknown; keyPath: KeyPath }[];
  /** `p` resolved against the config's directory. */
  resolvePath(p: string): string;
  /** Resolves field `name` (a path) for every value it takes; fails naming the key when a file is missing. */
  requireFiles(name: string, what?: string): void;
}

export interface CellContext {
  id: string;
  /** Absolute directory of this cell; files a cell writes go here (atomically). */
  dir: string;
  config: ExperimentConfig;
  cache: Cache;
  /** A value shared by every cell run in this process (e.g. a loaded model), created once, disposed at the end. */
  shared<T>(key: string, create: () => T, dispose?: (v: T) => void): T;
  resolvePath(p: string): string;
  log(message: string): void;
}

export interface CellResult<P extends object = CellSettings, R = Record<string, unknown>> {
  id: string;
  settings: P;
  result: R;
  /** Study.inputs when the cell ran (absent in results written before inputs were recorded). */
  inputs?: Record<string, string>;
}

export interface SummaryContext {
  config: ExperimentConfig;
  runDir: string;
  cache: Cache;
}

export interface StudySummary {
  summary: Record<string, unknown>;
  figures?: FigureSpec[];
}

export interface Study<P extends object = any, R extends object = any> {
  description: string;
  /** One cell's settings (use .strict() so that unknown keys are refused; .describe() and .default() feed configs/README.md). */
  schema: z.ZodObject;
  /**
   * Fields holding file paths (every one: a missing one breaks `extends` from another folder), dotted for
   * nested fields ('judge.prompts'); a list of strings is a list of paths. A relative path is relative to the
   * config file that sets it; when that is an extended file, the loader rebases it onto the named config's
   * directory (so ids stay portable).
   */
  pathFields?: readonly string[];
  validate?(config: ExperimentConfig<P>, ctx: ValidateContext): void;
  /** The cells to run; default: the cartesian product. */
  cells?(config: ExperimentConfig<P>): P[];
  /**
   * Fields besides the swept ones that a cell's name shows (cells() may add cells that differ from the grid
   * in fields nobody swept: their names must still tell them apart).
   */
  nameFields?(cell: P): string[];
  runCell(cell: P, ctx: CellContext): R | Promise<R>;
  /**
   * Fingerprints of what a cell reads whose content, not its path, determines its result (a checkpoint
   * retrained in place). Recorded in result.json; a finished cell whose inputs changed is run again.
   * Default (cellInputs in runner.ts): the checkpoint named by a string field `model`.
   */
  inputs?(cell: P, resolvePath: (p: string) => string): Record<string, string>;
  summarize?(results: CellResult<P, R>[], ctx: SummaryContext): StudySummary | Promise<StudySummary>;
}

const registry = new Map<string, Study>();

export function registerStudy<P extends object, R extends object>(name: string, study: Study<P, R>): void {
  if (!/^[a-z0-9][a-z0-9/_.-]*$/.test(name)) throw new PersonaError(`study name '${name}' must be lower-case letters, digits, '/', '_', '.' or '-'`);
  if (registry.has(name) && registry.get(name) !== study) throw new PersonaError(`a study named '${name}' is already registered`);
  registry.set(name, study as Study);
}

export function getStudy(name: string): Study | undefined {
  return registry.get(name);
}

export function studyNames(): string[] {
  return [...registry.keys()].sort();
}

/** Removes a study (tests register throwaway studies). */
export function unregisterStudy(name: string): void {
  registry.delete(name);
}

/** The cartesian product of the sweep axes over params, validated by the study schema (rebases `file`'s path fields in place). */
export function expandProduct(tree: LoadedConfigTree, file: ExperimentFile, study: Study): { axes: string[]; product: CellSettings[] } {
  const shape = study.schema.shape as Record<string, unknown>;
  const axes = Object.keys(file.sweep);
  for (const a of axes) {
    if (!(a in shape)) throw configError(tree, ['sweep', a], `${unknownKeyMessage(a, Object.keys(shape))}: study '${file.study}' has no such field`);
    if (file.sweep[a].length === 0) throw configError(tree, ['sweep', a], 'empty sweep axis: give at least one value');
  }
  // Paths set in an extended file are relative to that file: rebase them onto the named config's directory.
  const rebase = (value: unknown, keyPath: KeyPath): unknown => {
    if (Array.isArray(value)) return value.map((v, i) => rebase(v, [...keyPath, i]));
    if (typeof value !== 'string' || path.isAbsolute(value)) return value;
    const from = locate(tree, keyPath).file;
    if (from === tree.file) return value;
    return path.relative(path.dirname(tree.file), path.resolve(path.dirname(from), value)) || '.';
  };
  // Rebases the (possibly nested) field `rest` of `obj`, copying the objects on the way.
  const rebaseIn = (obj: unknown, rest: string[], keyPath: KeyPath): unknown => {
    if (!rest.length) return rebase(obj, keyPath);
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || !(rest[0] in obj)) return obj;
    const o = obj as Record<string, unknown>;
    return { ...o, [rest[0]]: rebaseIn(o[rest[0]], rest.slice(1), [...keyPath, rest[0]]) };
  };
  let params: unknown = { ...file.params };
  const sweep: Record<string, unknown[]> = { ...file.sweep };
  for (const f of study.pathFields ?? []) {
    const [head, ...rest] = f.split('.');
    params = rebaseIn(params, [head, ...rest], ['params']);
    if (head in sweep) sweep[head] = sweep[head].map((v, i) => rebaseIn(v, rest, ['sweep', head, i]));
  }
  file.params = params as Record<string, unknown>;
  file.sweep = sweep;
  const product: CellSettings[] = [];
  const idx = axes.map(() => 0);
  const total = axes.reduce((n, a) => n * file.sweep[a].length, 1);
  for (let c = 0; c < total; c++) {
    const raw: Record<string, unknown> = { ...file.params };
    axes.forEach((a, i) => (raw[a] = file.sweep[a][idx[i]]));
    const r = study.schema.safeParse(raw);
    if (!r.success) {
      const issue = pickIssue(r.error.issues);
      const where = (p: KeyPath): KeyPath => {
        const ai = axes.indexOf(String(p[0]));
        return ai >= 0 ? ['sweep', p[0], idx[ai], ...p.slice(1)] : ['params', ...p];
      };
      const keyPath = issue.code === 'unrecognized_keys' ? where([...(issue.path as KeyPath), issue.keys[0]]) : where(issue.path as KeyPath);
      const msg = issue.code === 'unrecognized_keys' ? `${unknownKeyMessage(issue.keys[0], shapeKeysAt(study.schema, issue.path))}: study '${file.study}' has no such field` : issue.message;
      throw configError(tree, keyPath, msg);
    }
    product.push(r.data as CellSettings);
    // Odometer: the last axis varies fastest, as in nested loops written in config order.
    for (let i = axes.length - 1; i >= 0; i--) {
      if (++idx[i] < file.sweep[axes[i]].length) break;
      idx[i] = 0;
    }
  }
  return { axes, product };
}

export function validateContext(tree: LoadedConfigTree, config: ExperimentConfig): ValidateContext {
  const fail = (keyPath: KeyPath, message: string): never => {
    throw configError(tree, keyPath, message);
  };
  const keyOf = (name: string): KeyPath => (name in config.sweep ? ['sweep', name] : ['params', name]);
  const valuesOf = (name: string) =>
    name in config.sweep
      ? config.sweep[name].map((value, i) => ({ value, keyPath: ['sweep', name, i] as KeyPath }))
      : [{ value: config.product[0]?.[name] ?? config.params[name], keyPath: ['params', name] as KeyPath }];
  const resolvePath = (p: string) => path.resolve(config.dir, p);
  return {
    file: config.file,
    fail,
    keyOf,
    valuesOf,
    resolvePath,
    requireFiles(name, what = 'file') {
      for (const { value, keyPath } of valuesOf(name)) {
        if (value === undefined) continue;
        if (typeof value !== 'string') fail(keyPath, `expected a path, got ${JSON.stringify(value)}`);
        if (!fs.existsSync(resolvePath(value as string))) fail(keyPath, `${what} not found: ${value} (resolved to ${resolvePath(value as string)})`);
      }
    },
  };
}
