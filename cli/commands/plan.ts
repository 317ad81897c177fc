import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { isCellDone, loadExperiment, shardOf, slurmScript } from '../../lib/experiment';
import { writeFileAtomic } from '../../lib/io/atomic';

interface Args { config: string; slurm: boolean; shards?: number; 'output-dir'?: string; 'cache-dir'?: string; json: boolean }

export const planCommand: CommandModule<object, Args> = {
  command: 'plan <config>',
  describe: 'Validate a config and list its cells (id, settings, done?, shard); --slurm writes a Slurm job-array script',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Experiment config' })
      .option('slurm', { type: 'boolean', default: false, describe: 'Write <run folder>/slurm.sh: one shard per array task' })
      .option('shards', { type: 'number', describe: 'Number of shards (default: slurm.shards of the config)' })
      .option('output-dir', { type: 'string', describe: 'Overrides output_dir of the config' })
      .option('cache-dir', { type: 'string', describe: 'Overrides cache_dir of the config' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the cell list as JSON' }) as never,
  handler: (argv) => {
    const exp = loadExperiment(argv.config, { outputDir: argv['output-dir'], cacheDir: argv['cache-dir'] });
    const n = argv.shards ?? exp.config.slurm.shards;
    const cells = exp.cells.map((c) => ({ id: c.id, done: isCellDone(exp, c), shard: shardOf(c.id, n), settings: c.settings }));
    if (argv.slurm) {
      const { script, shards } = slurmScript(exp, { shards: argv.shards });
      const file = path.join(exp.config.runDir, 'slurm.sh');
      fs.mkdirSync(path.join(exp.config.runDir, 'slurm'), { recursive: true }); // Slurm does not create the --output folder
      writeFileAtomic(file, script);
      fs.chmodSync(file, 0o755);
      process.stderr.write(`persona plan: ${exp.cells.length} cells in ${shards} array tasks; submit with: sbatch ${file}\n`);
      process.stdout.write(`${file}\n`);
      return;
    }
    if (argv.json) {
      process.stdout.write(`${JSON.stringify({ experiment: exp.config.experiment, runDir: exp.config.runDir, shards: n, cells }, null, 2)}\n`);
      return;
    }
    const done = cells.filter((c) => c.done).length;
    process.stdout.write(`${exp.config.experiment} (${exp.config.study}): ${cells.length} cells, ${done} done, axes: ${exp.config.axes.join(' × ') || '(none)'}\n`);
    for (const c of cells) process.stdout.write(`${c.done ? 'done' : 'todo'}  shard ${c.shard}/${n}  ${c.id}\n`);
  },
};
