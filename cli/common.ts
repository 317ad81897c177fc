/** Flag parsing shared by the commands: backend, model loading, token JSON, steering/ablation flags. */
import * as fs from 'fs';
import * as path from 'path';
import type { Argv } from 'yargs';
import { PersonaError } from '../lib/errors';
import { BackendRequest, checkFitsInMemory, useBackend } from '../lib/backend';
import { Model, parameterSpecs } from '../lib/model/checkpoint';
import { readModelConfig } from '../lib/model/config';
import { Intervention, Positions, POSITIONS, ablate, steer } from '../lib/model/interventions';
import { siteForLayer } from '../lib/model/hooks';
import { PersonaVector } from '../lib/persona/vector';
import { COMMAND_DEFAULTS, DEFAULTS } from '../lib/persona/defaults';
import { writeFileAtomic } from '../lib/io/atomic';
import { Tokenizer, unknownWordsIn, unknownWordsWarning } from '../lib/tokenizer';

export async function prepareBackend(argv: { backend?: string }): Promise<string> {
  return useBackend(argv.backend as BackendRequest | undefined, (m) => process.stderr.write(`${m}\n`));
}

/** Loads a checkpoint after checking that its float32 weights fit the backend's memory. */
export async function loadModel(dir: string): Promise<Model> {
  const cfg = readModelConfig(dir);
  const n = parameterSpecs(cfg).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  checkFitsInMemory(n * 4, `model ${dir}: ${(n * 4 / 1e9).toFixed(2)} GB of float32 weights`);
  return Model.load(dir);
}

/** A JSON value given inline or as the path of a JSON file. */
export function jsonArg(value: string, flag: string): unknown {
  const text = fs.existsSync(value) ? fs.readFileSync(value, 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new PersonaError(`not valid JSON (inline or a file path): ${(e as Error).message}`, { field: flag });
  }
}

/** [T] or [B][T] integers → [B][T]. */
export function tokenMatrix(value: string, flag: string): number[][] {
  const v = jsonArg(value, flag);
  const rows = Array.isArray(v) && v.every((x) => typeof x === 'number') ? [v as number[]] : v;
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r) && r.every((x) => Number.isInteger(x))))
    throw new PersonaError('expected a list of integers or a list of such lists', { field: flag });
  return rows as number[][];
}

/** `--FLAG` must be a positive integer; checked before a command writes anything. */
export function requirePositiveInt(argv: Record<string, unknown>, flag: string): void {
  const v = argv[flag];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new PersonaError(`--${flag} must be a positive integer, got ${String(v)}`, { field: flag });
}

/** What the steering/ablation flags hold after yargs (repeatable flags are lists). */
export interface InterventionArgs {
  steer?: string | string[];
  ablate?: string | string[];
  layer?: string | number;
  coef?: number;
  positions?: string;
}

/**
 * --steer/--ablate/--layer/--coef/--positions. `positions`: where steering adds by default — the paper's
 * 'response' for generation (lib/persona/defaults.ts), 'all' for a forward pass over given tokens (no response part).
 */
export function interventionOptions<T>(y: Argv<T>, positions: Positions = COMMAND_DEFAULTS.forward.steeringPositions) {
  const why = positions === DEFAULTS.steeringPositions ? "the paper's: the last prompt token, then each generated token" : 'a forward pass over given tokens has no response part';
  return y
    .option('steer', {
      type: 'string',
      array: true,
      nargs: 1,
      describe: 'Steer with a vector: FILE[:LAYER[:COEF]] (.safetensors or .pt, [hidden] or [N+1, hidden]: row LAYER is used); repeat to combine vectors and layers; LAYER/COEF default to --layer/--coef',
    })
    .option('ablate', {
      type: 'string',
      array: true,
      nargs: 1,
      describe: "Project a vector's direction out: FILE[:LAYER], LAYER 'all' = every layer 1..N (each its own row); repeatable; LAYER defaults to --layer",
    })
    .option('layer', { type: 'string', nargs: 1, describe: "Layer for --steer/--ablate that name none: L = hidden_states[L] = output of decoder layer L-1, or 'all' (ablation only)" })
    // nargs 1: the next token is the value even when it is a negative number yargs would read as flags ('-1e-3').
    .option('coef', { type: 'number', nargs: 1, describe: 'Coefficient for --steer that names none' })
    .option('positions', { type: 'string', choices: POSITIONS as string[], default: positions, describe: `Where steering adds: all | prompt | response (default ${positions}: ${why})` })
    .check((argv) => {
      parseInterventionFlags(argv as InterventionArgs); // conflicts refused at parse time, before any model loads
      return true;
    });
}

/** One --steer or --ablate, its layer and coefficient resolved against --layer/--coef. */
export interface InterventionSpec {
  op: 'steer' | 'ablate';
  file: string;
  layer: number | 'all';
  coef?: number;
  /** The flag as given, for messages. */
  flag: string;
}

const SUFFIX = /^(|all|[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?)$/i;

/** FILE[:A[:B]] → file and up to `max` suffixes (a path that exists as given is a file, whatever its colons). */
export function splitSpec(spec: string, max: number): { file: string; parts: string[] } {
  if (fs.existsSync(spec)) return { file: spec, parts: [] };
  const all = spec.split(':');
  const parts: string[] = [];
  while (all.length > 1 && parts.length < max && SUFFIX.test(all[all.length - 1])) parts.unshift(all.pop()!);
  return { file: all.join(':'), parts };
}

export function parseLayer(v: string | number | undefined, what: string): number | 'all' | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'all') return 'all';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new PersonaError(`${what}: layer must be a non-negative integer or 'all', got '${v}'`, { field: 'layer' });
  return n;
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * The interventions the flags ask for, or a one-line refusal of flags that would be ignored or cancel:
 * --coef/--layer with nothing to apply them to (or every flag naming its own), a steer without a layer or
 * coefficient, steering at 'all' layers, and ablating a vector at a layer where it is also steered.
 */
export function parseInterventionFlags(argv: InterventionArgs): InterventionSpec[] {
  const steers = list(argv.steer);
  const ablates = list(argv.ablate);
  const defLayer = parseLayer(argv.layer, '--layer');
  const specs: InterventionSpec[] = [];
  for (const s of steers) {
    const { file, parts } = splitSpec(s, 2);
    const layer = parseLayer(parts[0], `--steer ${s}`) ?? defLayer;
    const coef = parts[1] !== undefined && parts[1] !== '' ? Number(parts[1]) : argv.coef;
    if (layer === undefined) throw new PersonaError(`--steer ${s} needs a layer: --steer FILE:LAYER[:COEF] or --layer L`, { field: 'layer' });
    if (layer === 'all') throw new PersonaError(`--steer ${s}: steering takes one layer per --steer (repeat --steer FILE:LAYER:COEF for several); 'all' is for --ablate`, { field: 'layer' });
    if (coef === undefined) throw new PersonaError(`--steer ${s} needs a coefficient: --steer FILE:LAYER:COEF or --coef C`, { field: 'coef' });
    specs.push({ op: 'steer', file, layer, coef, flag: `--steer ${s}` });
  }
  for (const s of ablates) {
    const { file, parts } = splitSpec(s, 1);
    const layer = parseLayer(parts[0], `--ablate ${s}`) ?? defLayer;
    if (layer === undefined) throw new PersonaError(`--ablate ${s} needs a layer: --ablate FILE:LAYER, FILE:all or --layer L`, { field: 'layer' });
    specs.push({ op: 'ablate', file, layer, flag: `--ablate ${s}` });
  }
  if (argv.coef !== undefined) {
    if (!steers.length) throw new PersonaError('--coef has no effect without --steer FILE', { field: 'coef' });
    if (steers.every((s) => (splitSpec(s, 2).parts[1] ?? '') !== '')) throw new PersonaError('--coef has no effect: every --steer names its coefficient (FILE:LAYER:COEF)', { field: 'coef' });
  }
  if (argv.layer !== undefined) {
    if (!specs.length) throw new PersonaError('--layer has no effect without --steer or --ablate', { field: 'layer' });
    const named = [...steers.map((s) => splitSpec(s, 2).parts[0]), ...ablates.map((s) => splitSpec(s, 1).parts[0])];
    if (named.every((l) => l !== undefined && l !== '')) throw new PersonaError('--layer has no effect: every --steer/--ablate names its layer (FILE:LAYER)', { field: 'layer' });
  }
  for (const a of specs.filter((x) => x.op === 'ablate'))
    for (const st of specs.filter((x) => x.op === 'steer'))
      if (path.resolve(a.file) === path.resolve(st.file) && (a.layer === 'all' || a.layer === st.layer))
        throw new PersonaError(`${st.flag} and ${a.flag} cancel: ablating the vector's direction at layer ${st.layer} removes the steering along it (the text would be unsteered); drop one`, { field: 'ablate' });
  return specs;
}

export function interventionsFrom(argv: InterventionArgs, model: Model): Intervention[] {
  const N = model.config.numLayers;
  const out: Intervention[] = [];
  for (const s of parseInterventionFlags(argv)) {
    if (s.op === 'steer') out.push(steer(layerVector(s.file, s.layer as number, model), s.layer as number, s.coef!, (argv.positions ?? 'all') as Positions, N));
    else for (const L of s.layer === 'all' ? Array.from({ length: N }, (_, i) => i + 1) : [s.layer]) out.push(ablate(layerVector(s.file, L, model), L, N));
  }
  return out;
}

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, JSON.stringify(value) + '\n');
}

/** Row L of a vector file ([N+1, hidden]), or its only row ([hidden]); checked against the model. */
export function layerVector(file: string, L: number, model: Model): Float32Array {
  const N = model.config.numLayers;
  siteForLayer(L, N); // the layer must exist in this model whatever the file holds
  const v = PersonaVector.load(file, { layer: L });
  const what = `model ${model.dir ?? ''}`.trim();
  v.checkHidden(model.config.hiddenSize, what);
  v.checkLayers(N, what);
  return v.layer(L);
}

/**
 * Warns on stderr (one line, with the count) when user text — prompts, questions, system prompts, dataset
 * messages — holds words the model's vocabulary lacks: they would silently become the unknown token.
 */
export function warnUnknownWords(tokenizer: Tokenizer, texts: Iterable<string>, what: string, vocabulary: string): void {
  const unkToken = tokenizer.unkTokenId === undefined ? undefined : tokenizer.idToToken(tokenizer.unkTokenId);
  const warning = unknownWordsWarning(unknownWordsIn(tokenizer, texts), what, vocabulary, unkToken);
  if (warning) process.stderr.write(`${warning}\n`);
}
