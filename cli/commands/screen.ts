import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { ScreenFilter, rankRows, readTrainingJsonl, screenDataset, selectSamples, writeFilteredDataset, writeScreenCsv } from '../../lib/persona/screen';
import { PersonaVector } from '../../lib/persona/vector';
import { startProgress } from '../../lib/progress';
import { Tokenizer } from '../../lib/tokenizer';
import { loadModel, prepareBackend, warnUnknownWords } from '../common';
import { printTable } from './extract';

interface Args {
  model: string; data: string; vector: string; layer: number; out: string; 'filtered-out'?: string; keep?: string; k?: number; threshold?: number;
  'max-new-tokens': number; temperature?: number; seed: string; 'batch-size': number; backend?: string;
}

export const screenCommand: CommandModule<object, Args> = {
  command: 'screen',
  describe: 'Data screening: per-sample projection difference (dataset response − base model response), ranked CSV, optional filtered dataset',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Base checkpoint directory' })
      .option('data', { type: 'string', demandOption: true, describe: 'Training JSONL of {"messages": [...]} (last message = assistant response)' })
      .option('vector', { type: 'string', demandOption: true })
      .option('layer', { type: 'number', demandOption: true })
      .option('out', { type: 'string', demandOption: true, describe: 'Ranked CSV to write' })
      .option('filtered-out', { type: 'string', describe: 'Write the kept samples (JSONL) here' })
      .option('keep', { type: 'string', choices: ['top', 'bottom', 'above', 'below'], describe: 'Filter: top/bottom --k, or above/below --threshold' })
      .option('k', { type: 'number' })
      .option('threshold', { type: 'number' })
      .option('max-new-tokens', { type: 'number', default: 300 })
      .option('temperature', { type: 'number', describe: 'Sample base responses (default greedy)' })
      .option('seed', { type: 'string', default: '0' })
      .option('batch-size', { type: 'number', default: 8 }) as never,
  handler: async (argv) => {
    await prepareBackend(argv);
    let filter: ScreenFilter | undefined;
    // A filter without a place to write its result would be ignored silently.
    if (argv['filtered-out'] === undefined && argv.keep !== undefined) throw new PersonaError(`--keep ${argv.keep} needs --filtered-out FILE`, { field: 'filtered-out' });
    if (argv['filtered-out'] !== undefined) {
      if (argv.keep === 'top' || argv.keep === 'bottom') {
        if (argv.k === undefined) throw new PersonaError(`--keep ${argv.keep} needs --k`, { field: 'k' });
        filter = { keep: argv.keep, k: argv.k };
      } else if (argv.keep === 'above' || argv.keep === 'below') {
        if (argv.threshold === undefined) throw new PersonaError(`--keep ${argv.keep} needs --threshold`, { field: 'threshold' });
        filter = { keep: argv.keep, threshold: argv.threshold };
      } else throw new PersonaError('--filtered-out needs --keep top|bottom|above|below', { field: 'keep' });
    }
    const samples = readTrainingJsonl(argv.data);
    const tokenizer = Tokenizer.load(argv.model);
    warnUnknownWords(tokenizer, samples.flatMap((s) => s.messages.map((m) => m.content)), `the dataset (${argv.data})`, argv.model);
    const vector = PersonaVector.load(argv.vector, { layer: argv.layer });
    const model = await loadModel(argv.model);
    const bar = startProgress('screen', samples.length * 2);
    try {
      const r = await screenDataset({ model, tokenizer, samples, vector, layer: argv.layer, maxNewTokens: argv['max-new-tokens'], temperature: argv.temperature, seed: argv.seed, batchSize: argv['batch-size'], onProgress: (d) => bar.update(d) });
      bar.stop();
      writeScreenCsv(argv.out, r.rows);
      let kept: number[] | undefined;
      if (filter) {
        kept = selectSamples(r.rows, filter);
        writeFilteredDataset(argv['filtered-out']!, samples, kept);
      }
      const ranked = rankRows(r.rows);
      printTable([['rank', 'index', 'projection_diff'], ...ranked.slice(0, 5).map((x, i) => [i + 1, x.index, x.projectionDiff])]);
      process.stdout.write(`dataset mean projection difference ${r.meanProjectionDiff.toFixed(4)} over ${r.rows.length} samples; random directions (${r.null.count}): mean |.| ${r.null.meanAbs.toFixed(4)}, 97.5% ${r.null.p975.toFixed(4)}\n`);
      process.stdout.write(`wrote ${path.resolve(argv.out)}${kept ? ` and ${kept.length} samples to ${path.resolve(argv['filtered-out']!)}` : ''}\n`);
    } finally {
      bar.stop();
      model.dispose();
    }
  },
};
