import type { Argv, CommandModule } from 'yargs';
import { benchForward, benchGenerate } from '../../lib/model/bench';
import { writeJson } from '../common';
import { BenchModelArgs, benchModelOptions, benchTrainHandler, openBenchModel } from './bench-train';

interface Args extends BenchModelArgs { what: string; batch: number; 'prompt-len': number; 'new-tokens': number; repeats: number; 'seq-len': number; steps: number; r: number; json?: string }

export const benchCommand: CommandModule<object, Args> = {
  command: 'bench <what>',
  describe: 'Measure speed on a checkpoint (--model) or random weights of a known shape (--shape): forward (prefill tokens/s), generate (+ decode ms/step), train (ms per optimizer step, tokens/s); with peak RSS and the GPU adapter',
  builder: (y: Argv) =>
    benchModelOptions(y.positional('what', { type: 'string', choices: ['forward', 'generate', 'train'] }))
      .option('batch', { type: 'number', default: 1 })
      .option('prompt-len', { type: 'number', default: 64 })
      .option('new-tokens', { type: 'number', default: 32 })
      .option('repeats', { type: 'number', default: 3 })
      .option('seq-len', { type: 'number', default: 64, describe: 'train: tokens per sequence' })
      .option('steps', { type: 'number', default: 3, describe: 'train: timed optimizer steps after one warm-up step' })
      .option('r', { type: 'number', default: 8, describe: 'train: LoRA rank (all 7 projections); 0 = full-parameter' })
      .option('json', { type: 'string', describe: 'Write the measurements here' }) as never,
  handler: async (argv) => {
    if (argv.what === 'train') return benchTrainHandler(argv);
    const { model, shape } = await openBenchModel(argv);
    try {
      const o = { batch: argv.batch, promptLen: argv['prompt-len'], newTokens: argv['new-tokens'], repeats: argv.repeats, shape };
      const r = argv.what === 'forward' ? await benchForward(model, o) : await benchGenerate(model, o);
      if (argv.json) writeJson(argv.json, r);
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    } finally {
      model.dispose();
    }
  },
};
