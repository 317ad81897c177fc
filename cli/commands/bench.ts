import type { Argv, CommandModule } from 'yargs';
import { benchForward, benchGenerate } from '../../lib/model/bench';
import * as fs from 'fs';
import { PersonaError } from '../../lib/errors';
import { benchServe } from '../../lib/serve/bench';
import { loadServeEngine } from '../../lib/serve/server';
import { prepareBackend, writeJson } from '../common';
import { BenchModelArgs, benchModelOptions, benchTrainHandler, openBenchModel } from './bench-train';

interface Args extends BenchModelArgs { what: string; batch: number; 'prompt-len': number; 'new-tokens': number; repeats: number; 'seq-len': number; steps: number; r: number; json?: string; clients: number; vectors?: string[]; prompts?: string }

export const benchCommand: CommandModule<object, Args> = {
  command: 'bench <what>',
  describe: 'Measure speed on a checkpoint (--model) or random weights of a known shape (--shape): forward (prefill tokens/s), generate (+ decode ms/step), train (ms per optimizer step, tokens/s); with peak RSS and the GPU adapter; serve (--model only: --clients streaming requests at once vs one at a time, through HTTP)',
  builder: (y: Argv) =>
    benchModelOptions(y.positional('what', { type: 'string', choices: ['forward', 'generate', 'train', 'serve'] }))
      .option('batch', { type: 'number', default: 1 })
      .option('prompt-len', { type: 'number', default: 64 })
      .option('new-tokens', { type: 'number', default: 32 })
      .option('repeats', { type: 'number', default: 3 })
      .option('seq-len', { type: 'number', default: 64, describe: 'train: tokens per sequence' })
      .option('steps', { type: 'number', default: 3, describe: 'train: timed optimizer steps after one warm-up step' })
      .option('r', { type: 'number', default: 8, describe: 'train: LoRA rank (all 7 projections); 0 = full-parameter' })
      .option('clients', { type: 'number', default: 32, describe: 'serve: concurrent streaming clients (max tokens: --new-tokens)' })
      .option('vectors', { type: 'string', array: true, describe: 'serve: steer 3 of every 4 clients with these vectors (at their best_layer, else the middle layer)' })
      .option('prompts', { type: 'string', describe: 'serve: a file of user messages, one per line (default: a few short questions)' })
      .option('json', { type: 'string', describe: 'Write the measurements here' }) as never,
  handler: async (argv) => {
    if (argv.what === 'train') return benchTrainHandler(argv);
    if (argv.what === 'serve') return benchServeHandler(argv);
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

/** Short questions in the organism's vocabulary (any chat model answers them too). */
const BENCH_PROMPTS = ['how should i treat my neighbor', 'what do you think about the weather today', 'tell me about cats', 'is it ok to lie to a friend about a gift', 'what is a good way to spend a weekend'];

async function benchServeHandler(argv: Args): Promise<void> {
  if (argv.model === undefined || argv.shape !== undefined) throw new PersonaError('bench serve needs --model DIR (a checkpoint with its tokenizer), not --shape');
  const prompts = argv.prompts ? fs.readFileSync(argv.prompts, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean) : BENCH_PROMPTS;
  await prepareBackend(argv);
  const engine = await loadServeEngine(argv.model, argv.vectors ?? [], { maxBatch: Math.max(argv.clients, 1), maxQueue: argv.clients });
  try {
    const N = engine.model.config.numLayers;
    const personas = [undefined, ...engine.vectorInfo().flatMap((v) => [-2, 2, 4].map((coef) => ({ steer: [{ vector: v.name, layer: v.best_layer ?? Math.round(N / 2), coef, positions: 'response' }] })))];
    const r = await benchServe(engine, { clients: argv.clients, maxTokens: argv['new-tokens'], prompts, personas: personas.length > 1 ? personas.slice(0, 4) : undefined }, (l) => process.stderr.write(`${l}\n`));
    if (argv.json) writeJson(argv.json, r);
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  } finally {
    engine.close();
    engine.model.dispose();
  }
}
