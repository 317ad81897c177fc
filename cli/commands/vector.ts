import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { PersonaVector } from '../../lib/persona/vector';
import { printTable } from './extract';

interface Args { action: string; input: string; output?: string; 'num-layers'?: number; 'model-hint'?: string; layer?: number }

/** import: paper .pt / .gguf → .safetensors; export: → .pt or llama.cpp .gguf; info: shape, metadata, norms. */
export const vectorCommand: CommandModule<object, Args> = {
  command: 'vector <action> <input> [output]',
  describe: 'Persona vector files: import (.pt/.gguf → .safetensors), export (→ .pt or .gguf control vector), info',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['import', 'export', 'info'] })
      .positional('input', { type: 'string' })
      .positional('output', { type: 'string' })
      .option('num-layers', { type: 'number', describe: 'For .gguf input: the model\'s decoder layers' })
      .option('model-hint', { type: 'string', default: 'llama', describe: 'For .gguf export: general.architecture hint' })
      .option('layer', { type: 'number', describe: 'For a [hidden] input without metadata: its hidden_states index' }) as never,
  handler: async (argv) => {
    const v = PersonaVector.load(argv.input, { numLayers: argv['num-layers'], layer: argv.layer });
    if (argv.action === 'info') {
      process.stdout.write(`${argv.input}: [${v.numRows}, ${v.hidden}] ${JSON.stringify(v.meta)}\n`);
      if (v.numRows === 1 && v.meta.singleLayer === undefined) {
        // A bare [hidden] direction: its layer is unknown, but its norm is not (v.norm(L) would need a layer).
        printTable([['layer', 'norm'], ['? (give --layer)', Math.hypot(...v.data)]]);
        return;
      }
      const rows = v.meta.singleLayer !== undefined ? [v.meta.singleLayer] : Array.from({ length: v.numRows }, (_, i) => i);
      printTable([['layer', 'norm'], ...rows.map((L) => [L, v.norm(L)])]);
      return;
    }
    if (!argv.output) throw new PersonaError(`vector ${argv.action} needs an output path`, { field: 'output' });
    const out = argv.output;
    if (argv.action === 'import') {
      if (!out.endsWith('.safetensors')) throw new PersonaError('import writes .safetensors', { file: out });
      v.save(out);
    } else if (out.endsWith('.pt')) v.savePt(out);
    else if (out.endsWith('.gguf')) v.saveGguf(out, { modelHint: argv['model-hint'] ?? 'llama' });
    else if (out.endsWith('.safetensors')) v.save(out);
    else throw new PersonaError('export writes .pt, .gguf or .safetensors', { file: out });
    printTable([['from', 'to', 'shape'], [argv.input, out, `[${v.numRows}, ${v.hidden}]`]]);
  },
};
