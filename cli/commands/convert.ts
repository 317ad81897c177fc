import * as fs from 'fs';
import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { readModelConfig } from '../../lib/model/config';
import { openWeights } from '../../lib/io/weights';
import { writeTfjsWeights } from '../../lib/io/tfjs-weights';

/** Files that travel with the weights: config, generation settings, tokenizer, chat template. */
const SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'];

export function convertCheckpoint(from: string, to: string, opts: { float16?: boolean } = {}): void {
  readModelConfig(from); // refuse what the engine cannot load before writing anything
  if (path.resolve(from) === path.resolve(to)) throw new PersonaError('--out must differ from --model', { field: 'out' });
  fs.mkdirSync(to, { recursive: true });
  const source = openWeights(from);
  try {
    writeTfjsWeights(to, source, { float16: opts.float16 });
  } finally {
    source.close();
  }
  for (const f of SIDE_FILES) if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(to, f));
}

export const convertCommand: CommandModule<object, { model: string; out: string; float16: boolean }> = {
  command: 'convert',
  describe: "Write a checkpoint's weights in TensorFlow.js's weights-manifest format (model.json + shards)",
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true })
      .option('out', { type: 'string', demandOption: true })
      .option('float16', { type: 'boolean', default: false, describe: 'Store weights as float16 (half the size)' }) as never,
  handler: (argv) => {
    convertCheckpoint(argv.model, argv.out, { float16: argv.float16 });
    process.stderr.write(`wrote ${path.resolve(argv.out)}\n`);
  },
};
