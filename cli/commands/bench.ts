import type { Argv, CommandModule } from 'yargs';
import { benchForward, benchGenerate } from '../../lib/model/bench';
import { loadModel, prepareBackend, writeJson } from '../common';

interface Args { what: string; model: string; batch: number; 'prompt-len': number; 'new-tokens': number; repeats: number; json?: string; backend?: string }

export const benchCommand: CommandModule<object, Args> = {
  command: 'bench <what>',
  describe: 'Measure engine speed: prefill tokens/s, decode ms/step, peak RSS (what: forward | generate)',
  builder: (y: Argv) =>
    y
      .positional('what', { type: 'string', choices: ['forward', 'generate'] })
      .option('model', { type: 'string', demandOption: true })
      .option('batch', { type: 'number', default: 1 })
      .option('prompt-len', { type: 'number', default: 64 })
      .option('new-tokens', { type: 'number', default: 32 })
      .option('repeats', { type: 'number', default: 3 })
      .option('json', { type: 'string', describe: 'Write the measurements here' }) as never,
  handler: async (argv) => {
    await prepareBackend(argv);
    const model = loadModel(argv.model);
    try {
      const o = { batch: argv.batch, promptLen: argv['prompt-len'], newTokens: argv['new-tokens'], repeats: argv.repeats };
      const r = argv.what === 'forward' ? benchForward(model, o) : benchGenerate(model, o);
      if (argv.json) writeJson(argv.json, r);
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    } finally {
      model.dispose();
    }
  },
};
