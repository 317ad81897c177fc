import type { CommandModule } from 'yargs';
import { loadExperiment, parseShard, runExperiment } from '../../lib/experiment';
import { prepareBackend } from '../common';

interface Args { config: string; shard?: string; 'output-dir'?: string; 'cache-dir'?: string; progress: boolean; backend?: string }

export const runCommand: CommandModule<object, Args> = {
  command: 'run <config>',
  describe: 'Run an experiment config (YAML/JSON): every sweep cell without a result, then collect results.csv, summary.json and figures; resumes after any interruption',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Experiment config (.yaml, .yml, .json); keys in configs/README.md' })
      .option('shard', { type: 'string', describe: 'Run only shard i of n ("i/n", 0-based), chosen by cell-id hash; collect with `persona collect`' })
      .option('output-dir', { type: 'string', describe: 'Overrides output_dir of the config' })
      .option('cache-dir', { type: 'string', describe: 'Overrides cache_dir of the config' })
      .option('progress', { type: 'boolean', default: true, describe: 'Progress bar over cells on stderr' }) as never,
  handler: async (argv) => {
    const shard = argv.shard !== undefined ? parseShard(argv.shard) : undefined;
    const exp = loadExperiment(argv.config, { outputDir: argv['output-dir'], cacheDir: argv['cache-dir'] });
    await prepareBackend(argv);
    const r = await runExperiment(exp, { shard, progress: argv.progress, log: (m) => process.stderr.write(`persona run: ${m}\n`) });
    process.stderr.write(`persona run: ${r.computed} computed, ${r.skipped} already done, ${r.inShard} of ${r.cells} cells in this run\n`);
    // The last line of stdout is the summary path (or the run folder of a shard) so scripts can pick it up.
    process.stdout.write(`${r.collected ? r.collected.summaryFile : r.runDir}\n`);
  },
};
