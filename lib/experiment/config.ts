/**
 * Experiment config files (YAML or JSON): `extends` chains with deep merge, the top-level schema, and
 * error places — every problem names the file, the key path and (for YAML) the line where that key is set.
 *
 * Paths: output_dir, cache_dir and input files named in params (models, datasets) are relative to the config
 * file that sets them, so a run does not depend on the working directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML, { LineCounter } from 'yaml';
import { z } from 'zod';
import { PersonaError } from '../errors';

export type KeyPath = (string | number)[];

/** `a.b[2].c` */
export function formatKeyPath(p: KeyPath): string {
  let s = '';
  for (const k of p) s += typeof k === 'number' ? `[${k}]` : s ? `.${k}` : k;
  return s || '(top level)';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const slurmSchema = z
  .object({
    shards: z.number().int().min(1).default(4).describe('Number of shards = Slurm array tasks (`persona plan --slurm`; `--shards` overrides)'),
    job_name: z.string().optional().describe('#SBATCH --job-name (default: the experiment name)'),
    partition: z.string().optional().describe('#SBATCH --partition'),
    time: z.string().default('04:00:00').describe('#SBATCH --time per array task'),
    cpus_per_task: z.number().int().min(1).default(2).describe('#SBATCH --cpus-per-task'),
    mem: z.string().default('16G').describe('#SBATCH --mem'),
    gpus: z.number().int().min(0).default(0).describe('#SBATCH --gpus per task (0: no GPU line)'),
    sbatch: z.array(z.string()).default([]).describe('Extra #SBATCH options, e.g. "--account=myproj"'),
    setup: z.array(z.string()).default([]).describe('Shell lines run before the command (module load, cd, venv …)'),
    command: z.string().default('npx persona').describe('How the array task invokes the persona program'),
  })
  .strict();

export const experimentSchema = z
  .object({
    extends: z.union([z.string(), z.array(z.string())]).optional().describe('Config file(s) this one extends, relative to it; deep merge, this file wins, lists replace'),
    experiment: z.string().regex(NAME, 'letters, digits, ".", "_" or "-"').describe('Name; results go to output_dir/experiment/'),
    study: z.string().describe('Registered study that computes each cell (see the study tables below)'),
    description: z.string().optional().describe('Free text, copied into the summary'),
    output_dir: z.string().default('runs').describe('Root of run folders, relative to the config file that sets it (the default: to the named config)'),
    cache_dir: z.string().default('runs/cache').describe('Content-addressed cache shared by all experiments, relative to the config file that sets it (the default: to the named config)'),
    seed: z.number().int().default(0).describe('Experiment seed handed to every cell (part of each cell id)'),
    params: z.record(z.string(), z.unknown()).default({}).describe("Fixed settings of every cell: the study's fields"),
    sweep: z
      .record(z.string(), z.array(z.unknown()))
      .default({})
      .describe("Study fields given as non-empty lists; cells are the cartesian product; a swept field overrides the same field in params"),
    slurm: slurmSchema.default(slurmSchema.parse({})).describe('Slurm job-array settings for `persona plan --slurm`'),
  })
  .strict();

export type ExperimentFile = z.infer<typeof experimentSchema>;

/** One file of an `extends` chain, kept so that a key path can be traced back to a line. */
export interface ConfigSource {
  file: string;
  doc: YAML.Document.Parsed | null;
  lineCounter: LineCounter | null;
  /** For JSON files: the parsed value (no line information). */
  value: unknown;
}

export interface LoadedConfigTree {
  /** Absolute path of the config named on the command line. */
  file: string;
  /** Merged content of the chain, `extends` removed. */
  raw: Record<string, unknown>;
  /** The chain in precedence order: the named file first, then what it extends (the last of a list first, depth first). */
  sources: ConfigSource[];
}

function parseFile(file: string): ConfigSource {
  if (!fs.existsSync(file)) throw new PersonaError('config file not found', { file });
  const text = fs.readFileSync(file, 'utf8');
  const ext = path.extname(file).toLowerCase();
  if (ext === '.json') {
    try {
      return { file, doc: null, lineCounter: null, value: JSON.parse(text) };
    } catch (e) {
      throw new PersonaError(`not valid JSON: ${(e as Error).message}`, { file });
    }
  }
  if (ext !== '.yaml' && ext !== '.yml') throw new PersonaError('config must be .yaml, .yml or .json', { file });
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const err = doc.errors[0];
    throw new PersonaError(`not valid YAML: ${err.message.split('\n')[0]}`, { file, line: lineCounter.linePos(err.pos[0]).line });
  }
  return { file, doc, lineCounter, value: doc.toJS() ?? {} };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; anything else (lists included) in `over` replaces `base`. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
  return out;
}

/** Reads `file` and everything it extends; refuses cycles. */
export function readConfigTree(file: string): LoadedConfigTree {
  // Returns the merged content and the sources in precedence order (locate takes the first that has a key).
  const load = (f: string, stack: string[]): { merged: Record<string, unknown>; sources: ConfigSource[] } => {
    const abs = path.resolve(f);
    if (stack.includes(abs)) {
      const chain = [...stack.slice(stack.indexOf(abs)), abs].map((p) => path.relative(process.cwd(), p) || p).join(' → ');
      throw new PersonaError(`'extends' makes a cycle: ${chain}`, { file: stack[stack.length - 1], field: 'extends' });
    }
    const src = parseFile(abs);
    if (!isPlainObject(src.value)) throw new PersonaError('a config must be a mapping of keys to values', { file: abs });
    const own = src.value;
    const ext = own.extends;
    let merged: unknown = {};
    let inherited: ConfigSource[] = [];
    if (ext !== undefined) {
      const list = typeof ext === 'string' ? [ext] : Array.isArray(ext) && ext.every((e) => typeof e === 'string') ? (ext as string[]) : null;
      if (!list) throw new PersonaError("'extends' must be a file path or a list of file paths", { file: abs, field: 'extends', line: lineOf(src, ['extends']) });
      for (const e of list) {
        const target = path.resolve(path.dirname(abs), e);
        if (!fs.existsSync(target)) throw new PersonaError(`extends a file that does not exist: ${e}`, { file: abs, field: 'extends', line: lineOf(src, ['extends']) });
        const sub = load(target, [...stack, abs]);
        merged = deepMerge(merged, sub.merged);
        inherited = [...sub.sources, ...inherited]; // a later file of the list wins over an earlier one
      }
    }
    const { extends: _drop, ...rest } = own;
    return { merged: deepMerge(merged, rest) as Record<string, unknown>, sources: [src, ...inherited] };
  };
  const abs = path.resolve(file);
  const { merged, sources } = load(abs, []);
  return { file: abs, raw: merged, sources };
}

function lineOf(src: ConfigSource, keyPath: KeyPath): number | undefined {
  if (!src.doc || !src.lineCounter) return undefined;
  // The deepest prefix of the path that exists in this document: its key's line (or the value's).
  for (let n = keyPath.length; n > 0; n--) {
    const prefix = keyPath.slice(0, n);
    if (!src.doc.hasIn(prefix)) continue;
    const parentPath = prefix.slice(0, -1);
    const parent = parentPath.length ? src.doc.getIn(parentPath, true) : src.doc.contents;
    if (YAML.isMap(parent)) {
      const pair = parent.items.find((it) => YAML.isScalar(it.key) && it.key.value === prefix[prefix.length - 1]);
      const node = (pair?.key ?? pair?.value) as YAML.Node | undefined;
      if (node?.range) return src.lineCounter.linePos(node.range[0]).line;
    }
    const node = src.doc.getIn(prefix, true) as YAML.Node | undefined;
    if (node && YAML.isNode(node) && node.range) return src.lineCounter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** The file (and line) that sets `keyPath`: the first file of the chain that has it, else the named file. */
export function locate(tree: LoadedConfigTree, keyPath: KeyPath): { file: string; line?: number } {
  for (const src of tree.sources) {
    if (hasPath(src.value, keyPath)) return { file: src.file, line: lineOf(src, keyPath) };
  }
  // Not set anywhere (a missing required key or a default): point at the deepest existing parent.
  for (let n = keyPath.length - 1; n >= 0; n--) {
    for (const src of tree.sources) if (hasPath(src.value, keyPath.slice(0, n)) && n > 0) return { file: src.file, line: lineOf(src, keyPath.slice(0, n)) };
  }
  return { file: tree.file };
}

function hasPath(v: unknown, p: KeyPath): boolean {
  let cur = v;
  for (const k of p) {
    if (typeof k === 'number') {
      if (!Array.isArray(cur) || k >= cur.length) return false;
      cur = cur[k];
    } else {
      if (!isPlainObject(cur) || !(k in cur)) return false;
      cur = cur[k];
    }
  }
  return true;
}

/** A PersonaError at `keyPath` of the config, with the file and line that set it. */
export function configError(tree: LoadedConfigTree, keyPath: KeyPath, message: string): PersonaError {
  const { file, line } = locate(tree, keyPath);
  return new PersonaError(message, { file: path.relative(process.cwd(), file) || file, line, field: formatKeyPath(keyPath) });
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** The valid key closest to a misspelled one, if it is close enough to be the likely intent. */
export function closestKey(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(key.toLowerCase(), c.toLowerCase());
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(Math.max(key.length, best.length) / 3)) ? best : undefined;
}

/** "unknown key 'k' (did you mean 'x'?)". */
export function unknownKeyMessage(key: string, candidates: readonly string[]): string {
  const near = closestKey(key, candidates);
  return `unknown key '${key}'${near ? ` (did you mean '${near}'?)` : ''}`;
}

/**
 * The issue to report: an unknown key before anything else, since a misspelled required key also makes
 * that key "missing" and zod lists the missing one first.
 */
export function pickIssue(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue {
  return issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
}

/** Keys of the object schema at `p` inside `schema` (through defaults, optionals, nullables and arrays). */
export function shapeKeysAt(schema: z.ZodType, p: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  const unwrap = () => {
    for (let n = 0; n < 10 && s && !(s instanceof z.ZodObject); n++) {
      const def = (s as { def?: { innerType?: unknown; element?: unknown } }).def;
      s = def?.innerType ?? def?.element;
    }
  };
  unwrap();
  for (const k of p) {
    if (typeof k === 'number') continue; // array index: unwrap already went to the element
    if (!(s instanceof z.ZodObject)) return [];
    s = (s.shape as Record<string, unknown>)[String(k)];
    unwrap();
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** A zod issue as a config error; unknown keys name the key itself and the closest valid one of `schema`. */
export function zodIssueError(tree: LoadedConfigTree, issue: z.core.$ZodIssue, prefix: KeyPath, mapPath?: (p: KeyPath) => KeyPath, schema?: z.ZodType): PersonaError {
  const rel = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    const p = [...prefix, ...(mapPath ? mapPath([...rel, key]) : [...rel, key])];
    const also = issue.keys.length > 1 ? ` (also: ${issue.keys.slice(1).join(', ')})` : '';
    return configError(tree, p, `${unknownKeyMessage(key, schema ? shapeKeysAt(schema, rel) : [])}${also}`);
  }
  const p = [...prefix, ...(mapPath ? mapPath(rel) : rel)];
  return configError(tree, p, issue.message);
}

/**
 * output_dir or cache_dir as an absolute path: relative to the config file that sets it, or (the default)
 * to the named config, so that runs and caches do not depend on the working directory.
 */
export function resolveConfigDir(tree: LoadedConfigTree, key: 'output_dir' | 'cache_dir', value: string): string {
  return path.resolve(path.dirname(locate(tree, [key]).file), value);
}

/** Reads and validates the top level of an experiment config (the study validates params and sweep). */
export function readExperimentFile(file: string): { tree: LoadedConfigTree; config: ExperimentFile } {
  const tree = readConfigTree(file);
  const r = experimentSchema.safeParse(tree.raw);
  if (!r.success) throw zodIssueError(tree, pickIssue(r.error.issues), [], undefined, experimentSchema);
  return { tree, config: r.data };
}
