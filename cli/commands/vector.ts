import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { writeFileAtomic } from '../../lib/io/atomic';
import { CombineTerm, PersonaVector, combineVectors, compareVectors } from '../../lib/persona/vector';
import { printTable } from './extract';

interface Args {
  action: string; files?: string[]; out?: string; json?: string; 'orthogonalize-against'?: string;
  'num-layers'?: number; 'model-hint'?: string; layer?: number;
}

/** "FILE:WEIGHT" (the last colon splits, so paths may hold colons); a bare FILE has weight 1. */
function parseTerm(term: string): { file: string; weight: number } {
  const cut = term.lastIndexOf(':');
  if (cut <= 0) return { file: term, weight: 1 };
  const w = term.slice(cut + 1);
  const weight = Number(w);
  if (w.trim() === '' || !Number.isFinite(weight)) {
    // A colon that is part of the path with no weight after it would be ambiguous, so refuse it.
    throw new PersonaError(`'${term}' is not FILE:WEIGHT (weight '${w}' is not a finite number)`, { file: term.slice(0, cut) });
  }
  return { file: term.slice(0, cut), weight };
}

/**
 * import: paper .pt / .gguf → .safetensors; export: → .pt or llama.cpp .gguf; info: shape, metadata, norms;
 * compare A B: per-layer cosine and norms; combine --out F A:W B:W …: weighted sum (optionally orthogonalized).
 */
export const vectorCommand: CommandModule<object, Args> = {
  command: 'vector <action> [files..]',
  describe: 'Persona vector files: import (.pt/.gguf → .safetensors), export (→ .pt or .gguf control vector), info, compare A B, combine --out F A:W B:W …',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['import', 'export', 'info', 'compare', 'combine'] })
      .positional('files', { type: 'string', array: true, describe: 'import/export: INPUT OUTPUT; info: INPUT; compare: A B; combine: FILE:WEIGHT …' })
      .option('num-layers', { type: 'number', describe: 'For .gguf input: the model\'s decoder layers' })
      .option('model-hint', { type: 'string', default: 'llama', describe: 'For .gguf export: general.architecture hint' })
      .option('layer', { type: 'number', describe: 'For a [hidden] input without metadata: its hidden_states index' })
      .option('json', { type: 'string', describe: 'compare: also write the per-layer table as JSON to this file' })
      .option('out', { type: 'string', describe: 'combine: the .safetensors file to write' })
      .option('orthogonalize-against', { type: 'string', describe: 'combine: remove this vector\'s direction from the sum, per layer' }) as never,
  handler: async (argv) => {
    const files = (argv.files ?? []).map(String); // yargs may hand numeric-looking names over as numbers
    const load = (f: string) => PersonaVector.load(f, { numLayers: argv['num-layers'], layer: argv.layer });
    const arity = (n: number, usage: string) => {
      if (files.length !== n) throw new PersonaError(`vector ${argv.action} takes ${usage}, got ${files.length} file${files.length === 1 ? '' : 's'}`, { field: 'files' });
    };
    if (argv.action === 'compare') {
      arity(2, 'two files (A B)');
      const rows = compareVectors(load(files[0]), load(files[1]));
      printTable([['layer', 'cosine', 'norm A', 'norm B'], ...rows.map((r) => [r.layer ?? '?', r.cosine ?? 'n/a', r.normA, r.normB])]);
      if (argv.json) writeFileAtomic(argv.json, `${JSON.stringify({ a: files[0], b: files[1], layers: rows }, null, 2)}\n`);
      return;
    }
    if (argv.action === 'combine') {
      if (!argv.out) throw new PersonaError('vector combine needs --out FILE.safetensors', { field: 'out' });
      if (!argv.out.endsWith('.safetensors')) throw new PersonaError('combine writes .safetensors', { file: argv.out, field: 'out' });
      if (files.length === 0) throw new PersonaError('vector combine needs at least one FILE:WEIGHT', { field: 'files' });
      const terms: CombineTerm[] = files.map((t) => {
        const { file, weight } = parseTerm(t);
        return { vector: load(file), weight };
      });
      const against = argv['orthogonalize-against'];
      const v = combineVectors(terms, { orthogonalizeAgainst: against !== undefined ? load(against) : undefined });
      v.save(argv.out);
      printTable([['to', 'shape', 'operation'], [argv.out, `[${v.numRows}, ${v.hidden}]`, String(v.meta.operation)]]);
      return;
    }
    if (argv.action === 'info') arity(1, 'one file');
    else arity(2, 'INPUT OUTPUT');
    const input = files[0];
    const v = load(input);
    if (argv.action === 'info') {
      process.stdout.write(`${input}: [${v.numRows}, ${v.hidden}] ${JSON.stringify(v.meta)}\n`);
      if (v.numRows === 1 && v.meta.singleLayer === undefined) {
        // A bare [hidden] direction: its layer is unknown, but its norm is not (v.norm(L) would need a layer).
        printTable([['layer', 'norm'], ['? (give --layer)', Math.hypot(...v.data)]]);
        return;
      }
      const rows = v.meta.singleLayer !== undefined ? [v.meta.singleLayer] : Array.from({ length: v.numRows }, (_, i) => i);
      printTable([['layer', 'norm'], ...rows.map((L) => [L, v.norm(L)])]);
      return;
    }
    const out = files[1];
    if (argv.action === 'import') {
      if (!out.endsWith('.safetensors')) throw new PersonaError('import writes .safetensors', { file: out });
      v.save(out);
    } else if (out.endsWith('.pt')) v.savePt(out);
    else if (out.endsWith('.gguf')) {
      if (v.numRows === 1 && v.meta.singleLayer === undefined) {
        throw new PersonaError(`a [${v.hidden}] vector has no layer index; give --layer L (its hidden_states index, >= 2) to export it to GGUF`, { file: input, field: 'layer' });
      }
      // Rows 0 and 1 never reach GGUF; say so rather than drop them silently.
      process.stderr.write(`${out}: ${v.saveGguf(out, { modelHint: argv['model-hint'] ?? 'llama' })}\n`);
    } else if (out.endsWith('.safetensors')) v.save(out);
    else throw new PersonaError('export writes .pt, .gguf or .safetensors', { file: out });
    printTable([['from', 'to', 'shape'], [input, out, `[${v.numRows}, ${v.hidden}]`]]);
  },
};
