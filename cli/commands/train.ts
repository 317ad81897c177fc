import type { CommandModule } from 'yargs';
import { readTrainConfig } from '../../lib/train/config';
import { runTraining } from '../../lib/train/trainer';
import { prepareBackend } from '../common';

interface Args { config: string; resume: boolean; progress: boolean; backend?: string }

export const trainCommand: CommandModule<object, Args> = {
  command: 'train <config>',
  describe: 'Finetune (LoRA or full) from a JSON/YAML training config with the paper\'s fields; resumes from the newest checkpoint in output_dir',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Training config (.json, .yaml, .yml)' })
      .option('resume', { type: 'boolean', default: true, describe: 'Resume from the newest checkpoint in output_dir (--no-resume starts over)' })
      .option('progress', { type: 'boolean', default: true, describe: 'Progress on stderr: a bar on a terminal, a line with done/total and ETA every 30 s in logs (PERSONA_PROGRESS_INTERVAL)' }) as never,
  handler: async (argv) => {
    const { config, ignored } = readTrainConfig(argv.config);
    await prepareBackend(argv);
    const log = (m: string) => process.stderr.write(`persona train: ${m}\n`);
    if (ignored.length) log(`ignored (Python-stack only): ${ignored.join(', ')}`);
    const r = await runTraining(config, { progress: argv.progress, resume: argv.resume, log });
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  },
};
