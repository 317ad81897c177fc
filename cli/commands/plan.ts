import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { LoadedExperiment, isCellDone, loadExperiment, shardOf, slurmScript } from '../../lib/experiment';
import YAML from 'yaml';
import { PlanEstimate, estimateExperiment, estimateTraining, formatEstimate, formatTrainEstimate } from '../../lib/experiment/estimate';
import { writeFileAtomic } from '../../lib/io/atomic';

interface Args {
  config: string; slurm: boolean; shards?: number; 'output-dir'?: string; 'cache-dir'?: string; json: boolean;
  estimate: boolean; bench?: string; 'judge-price-in'?: number; 'judge-price-out'?: number; 'answer-tokens'?: number; 'train-examples'?: number;
}

export const planCommand: CommandModule<object, Args> = {
  command: 'plan <config>',
  describe: 'Validate a config, list its cells (id, settings, done?, shard) and estimate the work (tokens, forward passes, judge requests and tokens; cost with --judge-price-*, GPU hours with --bench); --slurm writes a Slurm job-array script',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Experiment config' })
      .option('slurm', { type: 'boolean', default: false, describe: 'Write <run folder>/slurm.sh: one shard per array task' })
      .option('shards', { type: 'number', describe: 'Number of shards (default: slurm.shards of the config)' })
      .option('output-dir', { type: 'string', describe: 'Overrides output_dir of the config' })
      .option('cache-dir', { type: 'string', describe: 'Overrides cache_dir of the config' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the cell list (and the estimate) as JSON' })
      .option('estimate', { type: 'boolean', default: true, describe: 'Print the work estimate (--no-estimate: only the cells)' })
      .option('bench', { type: 'string', describe: 'JSON of `persona bench generate --json FILE` on the target machine: adds GPU hours at that speed' })
      .option('judge-price-in', { type: 'number', describe: 'Judge price, USD per million input tokens (e.g. 0.4 for gpt-4.1-mini)' })
      .option('judge-price-out', { type: 'number', describe: 'Judge price, USD per million output tokens (e.g. 1.6 for gpt-4.1-mini)' })
      .option('answer-tokens', { type: 'number', describe: 'Expected answer length in tokens (default: every answer runs to max_new_tokens, an upper bound)' })
      .option('train-examples', { type: 'number', describe: 'Training config whose training_file is not here: its number of examples' }) as never,
  handler: (argv) => {
    if (isTrainingConfig(argv.config)) {
      // A `persona train` config (finetunes): passes, steps and tokens; GPU hours from `persona bench train --json`.
      const e = estimateTraining(argv.config, { examples: argv['train-examples'], benchFile: argv.bench });
      process.stdout.write(argv.json ? `${JSON.stringify({ training: e }, null, 2)}\n` : formatTrainEstimate(e));
      return;
    }
    // The estimate needs only the config: a machine without the model can plan (the cell list needs the model to validate).
    let exp: LoadedExperiment | undefined;
    try {
      exp = loadExperiment(argv.config, { outputDir: argv['output-dir'], cacheDir: argv['cache-dir'] });
    } catch (e) {
      if (argv.slurm || !argv.estimate || !(e instanceof PersonaError) || !/not found/.test(e.message)) throw e;
      process.stderr.write(`persona plan: not validated (${e.message}); the estimate below uses the config alone\n`);
    }
    let estimate: PlanEstimate | undefined;
    if (argv.estimate) {
      try {
        estimate = estimateExperiment(argv.config, { benchFile: argv.bench, judgePriceIn: argv['judge-price-in'], judgePriceOut: argv['judge-price-out'], answerTokens: argv['answer-tokens'] });
      } catch (e) {
        // A study without an estimator still gets its cell list.
        if (!(e instanceof PersonaError && e.place?.field === 'study' && exp)) throw e;
        process.stderr.write(`persona plan: ${e.message}\n`);
      }
    }
    if (exp && argv.slurm) {
      const { script, shards } = slurmScript(exp, { shards: argv.shards });
      const file = path.join(exp.config.runDir, 'slurm.sh');
      fs.mkdirSync(path.join(exp.config.runDir, 'slurm'), { recursive: true }); // Slurm does not create the --output folder
      writeFileAtomic(file, script);
      fs.chmodSync(file, 0o755);
      process.stderr.write(`persona plan: ${exp.cells.length} cells in ${shards} array tasks; submit with: sbatch ${file}\n`);
      process.stdout.write(`${file}\n`);
      return;
    }
    const n = argv.shards ?? exp?.config.slurm.shards ?? 1;
    const cells = exp ? exp.cells.map((c) => ({ id: c.id, done: isCellDone(exp!, c), shard: shardOf(c.id, n), settings: c.settings })) : undefined;
    if (argv.json) {
      process.stdout.write(`${JSON.stringify({ experiment: exp?.config.experiment ?? estimate?.experiment, runDir: exp?.config.runDir, shards: n, cells, estimate }, null, 2)}\n`);
      return;
    }
    if (exp && cells) {
      const done = cells.filter((c) => c.done).length;
      process.stdout.write(`${exp.config.experiment} (${exp.config.study}): ${cells.length} cells, ${done} done, axes: ${exp.config.axes.join(' × ') || '(none)'}\n`);
      for (const c of cells) process.stdout.write(`${c.done ? 'done' : 'todo'}  shard ${c.shard}/${n}  ${c.id}\n`);
    }
    if (estimate) process.stdout.write(`${exp ? '\n' : ''}${formatEstimate(estimate)}`);
  },
};

/** A `persona train` config (training_file, no study) rather than an experiment config. */
function isTrainingConfig(file: string): boolean {
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return false; // the experiment loader reports the file's problem
  }
  return !!raw && typeof raw === 'object' && 'training_file' in raw && !('study' in raw);
}
