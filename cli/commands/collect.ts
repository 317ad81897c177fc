import type { CommandModule } from 'yargs';
import { collectExperiment, loadExperiment } from '../../lib/experiment';

interface Args { config: string; 'output-dir'?: string; 'cache-dir'?: string; 'allow-partial': boolean }

export const collectCommand: CommandModule<object, Args> = {
  command: 'collect <config>',
  describe: 'Merge the cell results of every shard into results.csv, summary.json and figures',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Experiment config the shards ran' })
      .option('output-dir', { type: 'string', describe: 'Overrides output_dir of the config' })
      .option('cache-dir', { type: 'string', describe: 'Overrides cache_dir of the config' })
      .option('allow-partial', { type: 'boolean', default: false, describe: 'Summarize the finished cells even if some are missing' }) as never,
  handler: async (argv) => {
    const exp = loadExperiment(argv.config, { outputDir: argv['output-dir'], cacheDir: argv['cache-dir'] });
    const r = await collectExperiment(exp, { allowPartial: argv['allow-partial'] });
    if (r.missing.length) process.stderr.write(`persona collect: ${r.missing.length} of ${exp.cells.length} cells missing\n`);
    process.stderr.write(`persona collect: ${r.resultsCsv}\n`);
    process.stdout.write(`${r.summaryFile}\n`);
  },
};
