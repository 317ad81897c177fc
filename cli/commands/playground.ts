import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { buildSite } from '../../lib/playground';

interface Args {
  action: string; model: string; vectors: string[]; out: string; 'neutral-prompts'?: string; float16?: boolean;
}

/** `persona playground build`: a static site running the model and its persona vectors in the browser. */
export const playgroundCommand: CommandModule<object, Args> = {
  command: 'playground <action>',
  describe: 'The persona playground in the browser: build a static site (model + vectors, runs with TF.js in the page)',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['build'], describe: 'build: write the static site to --out' })
      .option('model', { type: 'string', demandOption: true, describe: 'Checkpoint directory (config.json, weights, tokenizer with a chat template)' })
      .option('vectors', { type: 'string', array: true, demandOption: true, describe: 'Persona vector files (.safetensors, .pt, .gguf); named as persona serve names them' })
      .option('out', { type: 'string', demandOption: true, describe: 'Directory of the site (index.html, playground.js, model/, vectors/, site.json)' })
      .option('neutral-prompts', { type: 'string', describe: 'Text file, one neutral prompt per line: the reference of the prompt reading (default: the page\'s own)' })
      .option('float16', { type: 'boolean', default: false, describe: 'Store weights as float16 (half the download; values rounded)' }) as never,
  handler: async (argv) => {
    let neutralPrompts: string[] | undefined;
    if (argv['neutral-prompts'] !== undefined) {
      const file = argv['neutral-prompts'];
      if (!fs.existsSync(file)) throw new PersonaError('no such file', { file });
      neutralPrompts = fs.readFileSync(file, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
      if (neutralPrompts.length < 2) throw new PersonaError(`needs at least two prompts (one per line), found ${neutralPrompts.length}`, { file });
    }
    const s = await buildSite({
      modelDir: argv.model,
      vectors: argv.vectors,
      outDir: argv.out,
      neutralPrompts,
      float16: argv.float16,
      log: (m) => process.stderr.write(`playground: ${m}\n`),
    });
    const rel = path.relative(process.cwd(), s.outDir) || '.';
    const shown = rel.startsWith('..') ? s.outDir : rel;
    process.stdout.write(
      `wrote ${shown}: ${s.files} files, ${(s.bytes / 1e6).toFixed(1)} MB (weights ${(s.weightBytes / 1e6).toFixed(1)} MB), vectors: ${s.vectors.join(', ')}\n` +
        `open it from any static file server, e.g.\n  npx serve ${shown}\n  python3 -m http.server --directory ${shown} 8080   (then http://127.0.0.1:8080/)\n`,
    );
  },
};
