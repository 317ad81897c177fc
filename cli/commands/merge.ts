import type { CommandModule } from 'yargs';
import { mergeAdapterIntoCheckpoint } from '../../lib/train/peft';
import { prepareBackend } from '../common';

interface Args { model: string; adapter: string; out: string; backend?: string }

export const mergeCommand: CommandModule<object, Args> = {
  command: 'merge',
  describe: 'Fold a PEFT LoRA adapter into the base weights and write a full Hugging Face checkpoint',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Base checkpoint directory' })
      .option('adapter', { type: 'string', demandOption: true, describe: 'PEFT adapter directory (adapter_config.json + adapter_model.safetensors)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output checkpoint directory' }) as never,
  handler: async (argv) => {
    await prepareBackend(argv);
    const r = await mergeAdapterIntoCheckpoint(argv.model, argv.adapter, argv.out);
    process.stdout.write(`${JSON.stringify({ out: argv.out, merged_modules: r.merged })}\n`);
  },
};
