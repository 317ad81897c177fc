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
import { writeFileAtomic } from '../lib/io/atomic';

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

export function interventionOptions<T>(y: Argv<T>) {
  return y
    .option('steer', { type: 'string', describe: 'Steering vector: .safetensors or .pt with [hidden] or [N+1, hidden] (row L is used)' })
    .option('ablate', { type: 'string', describe: 'Vector whose direction is projected out at --layer' })
    .option('layer', { type: 'number', describe: 'Persona-vector layer L = hidden_states[L] = output of decoder layer L-1' })
    // nargs 1: the next token is the value even when it is a negative number yargs would read as flags ('-1e-3').
    .option('coef', { type: 'number', nargs: 1, describe: 'Steering coefficient' })
    .option('positions', { type: 'string', choices: POSITIONS as string[], default: 'all', describe: 'Where steering adds: all | prompt | response' });
}

export function interventionsFrom(argv: { steer?: string; ablate?: string; layer?: number; coef?: number; positions?: string }, model: Model): Intervention[] {
  const out: Intervention[] = [];
  const N = model.config.numLayers;
  const need = (flag: string) => {
    throw new PersonaError(`--${flag} is required with --${argv.steer ? 'steer' : 'ablate'}`, { field: flag });
  };
  if (argv.steer !== undefined) {
    if (argv.layer === undefined) need('layer');
    if (argv.coef === undefined) need('coef');
    const v = layerVector(argv.steer, argv.layer!, model);
    out.push(steer(v, argv.layer!, argv.coef!, (argv.positions ?? 'all') as Positions, N));
  }
  if (argv.ablate !== undefined) {
    if (argv.layer === undefined) need('layer');
    out.push(ablate(layerVector(argv.ablate, argv.layer!, model), argv.layer!, N));
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
