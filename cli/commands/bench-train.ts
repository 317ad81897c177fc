import type { Argv } from 'yargs';
import { benchTrain } from '../../lib/train/bench';
import { PersonaError } from '../../lib/errors';
import { checkFitsInMemory } from '../../lib/backend';
import type { Model } from '../../lib/model/checkpoint';
import type { ModelConfig } from '../../lib/model/config';
import { numParametersOf, randomModel, shapeConfig, shapeNames } from '../../lib/model/random';
import { loadModel, prepareBackend, writeJson } from '../common';

/** Which model a bench runs on: a checkpoint (--model) or random weights of a known shape (--shape). */
export interface BenchModelArgs { model?: string; shape?: string; backend?: string }

export interface BenchTrainArgs extends BenchModelArgs { batch: number; 'seq-len': number; steps: number; r: number; json?: string }

/** The --model / --shape pair (shared with bench.ts, which dispatches what = train here). */
export function benchModelOptions<T>(y: Argv<T>) {
  return y
    .option('model', { type: 'string', describe: 'Checkpoint directory (or use --shape)' })
    .option('shape', { type: 'string', describe: `Random weights of a real checkpoint's shape, no checkpoint needed: ${shapeNames().join(', ')}` });
}

/** Flags of `persona bench train`. */
export function benchTrainOptions<T>(y: Argv<T>) {
  return benchModelOptions(y)
    .option('batch', { type: 'number', default: 1 })
    .option('seq-len', { type: 'number', default: 64 })
    .option('steps', { type: 'number', default: 3, describe: 'Timed optimizer steps (after one warm-up step)' })
    .option('r', { type: 'number', default: 8, describe: 'LoRA rank (all 7 projections); 0 = full-parameter finetuning' })
    .option('json', { type: 'string', describe: 'Write the measurements here' });
}

/** Checks the flags before any backend starts: exactly one of --model and --shape, and a known shape. */
function benchModelChoice(argv: BenchModelArgs): { dir: string } | { shape: string; cfg: ModelConfig } {
  const model = argv.model === undefined || argv.model === '' ? undefined : argv.model;
  const shape = argv.shape === undefined || argv.shape === '' ? undefined : argv.shape;
  if (model !== undefined && shape !== undefined) throw new PersonaError('give either --model DIR or --shape NAME, not both');
  if (shape !== undefined) return { shape, cfg: shapeConfig(shape) };
  if (model !== undefined) return { dir: model };
  throw new PersonaError(`give --model DIR (a checkpoint) or --shape NAME (random weights; known shapes: ${shapeNames().join(', ')})`);
}

/** Starts the backend and builds the model a bench runs on (random weights on the backend itself for --shape). */
export async function openBenchModel(argv: BenchModelArgs): Promise<{ model: Model; shape: string | null }> {
  const choice = benchModelChoice(argv);
  await prepareBackend(argv);
  if ('dir' in choice) return { model: await loadModel(choice.dir), shape: null };
  const n = numParametersOf(choice.cfg);
  checkFitsInMemory(n * 4, `shape ${choice.shape}: ${((n * 4) / 1e9).toFixed(2)} GB of float32 weights`);
  process.stderr.write(`bench: random weights of shape ${choice.shape} (${(n / 1e6).toFixed(1)}M parameters, seed 0)\n`);
  return { model: await randomModel(choice.cfg, { seed: 0 }), shape: choice.shape };
}

export async function benchTrainHandler(argv: BenchTrainArgs): Promise<void> {
  const { model, shape } = await openBenchModel(argv);
  try {
    const r = await benchTrain(model, { batch: argv.batch, seqLen: argv['seq-len'], steps: argv.steps, r: argv.r, shape });
    if (argv.json) writeJson(argv.json, r);
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  } finally {
    model.dispose();
  }
}
