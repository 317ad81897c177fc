import type { Argv } from 'yargs';
import { benchTrain } from '../../lib/train/bench';
import { loadModel, prepareBackend, writeJson } from '../common';

export interface BenchTrainArgs { model: string; batch: number; 'seq-len': number; steps: number; r: number; json?: string; backend?: string }

/** Flags of `persona bench train` (bench.ts dispatches what = train here). */
export function benchTrainOptions<T>(y: Argv<T>) {
  return y
    .option('model', { type: 'string', demandOption: true })
    .option('batch', { type: 'number', default: 1 })
    .option('seq-len', { type: 'number', default: 64 })
    .option('steps', { type: 'number', default: 3, describe: 'Timed optimizer steps (after one warm-up step)' })
    .option('r', { type: 'number', default: 8, describe: 'LoRA rank (all 7 projections); 0 = full-parameter finetuning' })
    .option('json', { type: 'string', describe: 'Write the measurements here' });
}

export async function benchTrainHandler(argv: BenchTrainArgs): Promise<void> {
  await prepareBackend(argv);
  const model = loadModel(argv.model);
  try {
    const r = benchTrain(model, { batch: argv.batch, seqLen: argv['seq-len'], steps: argv.steps, r: argv.r });
    if (argv.json) writeJson(argv.json, r);
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  } finally {
    model.dispose();
  }
}
