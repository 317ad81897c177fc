import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { captureTokenActivations, writeTokenCapture } from '../../lib/model/tokens';
import { ProjectionTarget, tokenProjections, writeTokenProjectionsCsv } from '../../lib/persona/token-projections';
import { PersonaVector } from '../../lib/persona/vector';
import { Tokenizer, unknownWordsWarning } from '../../lib/tokenizer';
import { interventionOptions, interventionsFrom, loadModel, parseLayer, prepareBackend, splitSpec, tokenMatrix } from '../common';

interface Args {
  model: string; prompt?: string; system?: string; response?: string; tokens?: string; layers?: string; sites?: string; out?: string; project?: string[]; csv?: string;
  steer?: string[]; ablate?: string[]; layer?: string; coef?: number; positions?: string; backend?: string;
}

/** '0,2,4' or 'all' (every hidden_states layer 0..N). */
function layerList(v: string | undefined, N: number): number[] | undefined {
  if (v === undefined) return undefined;
  if (v.trim() === 'all') return Array.from({ length: N + 1 }, (_, i) => i);
  const out = v.split(',').map((x) => Number(x.trim()));
  if (out.some((L) => !Number.isInteger(L) || L < 0)) throw new PersonaError(`--layers must be layer numbers separated by commas or 'all', got '${v}'`, { field: 'layers' });
  return out;
}

export const captureCommand: CommandModule<object, Args> = {
  command: 'capture',
  describe: 'Per-token activations at chosen layers/sites (safetensors: hidden_states.L / <site> [T, hidden], input_ids [T]) and per-token projections onto vectors (CSV)',
  builder: (y) =>
    interventionOptions(
      y
        .option('model', { type: 'string', demandOption: true, describe: 'Checkpoint directory' })
        .option('prompt', { type: 'string', describe: 'User message, rendered with the chat template and its generation prompt' })
        .option('system', { type: 'string', describe: 'System prompt (with --prompt)' })
        .option('response', { type: 'string', describe: 'Assistant answer appended after the prompt (its tokens have role response)' })
        .option('tokens', { type: 'string', describe: 'Token ids as JSON [T] instead of --prompt (all positions have role prompt)' })
        .option('layers', { type: 'string', describe: "hidden_states layers to capture, comma-separated or 'all' (default all when --sites is not given)" })
        .option('sites', { type: 'string', describe: 'Hook sites, comma-separated: embed, blocks.i.{resid_pre,attn_out,resid_mid,mlp_out,resid_post}, final_norm' })
        .option('out', { type: 'string', describe: 'Activations file (.safetensors)' })
        .option('project', { type: 'string', array: true, nargs: 1, describe: 'Project every token onto VECTOR[:LAYER] (default: every captured layer, its own row); repeatable; needs --csv' })
        .option('csv', { type: 'string', describe: 'Per-token projections: position, token_id, token, role, layer, vector, projection' })
        .conflicts('prompt', 'tokens'),
    ) as never,
  handler: async (argv) => {
    if (argv.prompt === undefined && argv.tokens === undefined) throw new PersonaError('give --prompt TEXT or --tokens JSON', { field: 'prompt' });
    if ((argv.system !== undefined || argv.response !== undefined) && argv.prompt === undefined) throw new PersonaError('--system and --response go with --prompt', { field: argv.system !== undefined ? 'system' : 'response' });
    if (argv.out !== undefined && path.extname(argv.out).toLowerCase() !== '.safetensors') throw new PersonaError(`--out must be a .safetensors file, got '${argv.out}'`, { field: 'out' });
    const projects = argv.project ?? [];
    if (projects.length && argv.csv === undefined) throw new PersonaError('--project needs --csv FILE for the per-token projections', { field: 'csv' });
    if (argv.csv !== undefined && !projects.length) throw new PersonaError('--csv holds projections: give --project VECTOR[:LAYER]', { field: 'project' });
    if (argv.out === undefined && argv.csv === undefined) throw new PersonaError('nothing to write: give --out FILE.safetensors and/or --project VECTOR --csv FILE', { field: 'out' });
    const targets: ProjectionTarget[] = projects.map((spec) => {
      const { file, parts } = splitSpec(spec, 1);
      const layer = parseLayer(parts[0], `--project ${spec}`);
      if (layer === 'all') throw new PersonaError(`--project ${spec}: omit the layer to project at every captured layer`, { field: 'project' });
      return { name: path.basename(file), vector: PersonaVector.load(file, layer === undefined ? {} : { layer }), layer };
    });
    await prepareBackend(argv);
    const model = await loadModel(argv.model);
    try {
      const N = model.config.numLayers;
      const sites = argv.sites?.split(',').map((s) => s.trim()).filter(Boolean);
      let layers = layerList(argv.layers, N) ?? (sites?.length ? [] : layerList('all', N)!);
      // A projection at a layer not asked for is captured too (the CSV needs it), without being asked twice.
      for (const t of targets) if (t.layer !== undefined && !layers.includes(t.layer)) layers = [...layers, t.layer];
      let ids: number[];
      let promptLength: number;
      let tokenizer: Tokenizer | null = null;
      if (argv.tokens !== undefined) {
        const m = tokenMatrix(argv.tokens, 'tokens');
        if (m.length !== 1) throw new PersonaError('capture takes one sequence: --tokens [T]', { field: 'tokens' });
        ids = m[0];
        promptLength = ids.length;
      } else {
        tokenizer = Tokenizer.load(argv.model);
        const messages = [...(argv.system !== undefined ? [{ role: 'system', content: argv.system }] : []), { role: 'user', content: argv.prompt! }];
        const prompt = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
        // As extraction tokenizes rollouts: prompt + answer as one text, the prompt's own length marks the split.
        const enc = tokenizer.encodeWithUnknowns(prompt + (argv.response ?? ''));
        ids = enc.ids;
        promptLength = tokenizer.encode(prompt).length;
        const unkToken = tokenizer.unkTokenId === undefined ? undefined : tokenizer.idToToken(tokenizer.unkTokenId);
        const warning = unknownWordsWarning(enc.unknown, argv.response !== undefined ? 'the prompt and response' : 'the prompt', argv.model, unkToken);
        if (warning) process.stderr.write(`${warning}\n`);
      }
      const cap = await captureTokenActivations(model, ids, { layers, sites, interventions: interventionsFrom(argv, model) });
      if (argv.out !== undefined) {
        writeTokenCapture(argv.out, cap, { promptLength, model: path.basename(path.resolve(argv.model)) });
        process.stderr.write(`wrote ${path.resolve(argv.out)}: ${cap.tensors.map((t) => t.name).join(', ')} [${ids.length}, ${cap.hidden}], input_ids [${ids.length}] (prompt_length ${promptLength})\n`);
      }
      if (argv.csv !== undefined) {
        const tok = tokenizer;
        const rows = tokenProjections(cap, promptLength, targets, (id) => (tok ? tok.idToToken(id) ?? '' : ''));
        writeTokenProjectionsCsv(argv.csv, rows);
        process.stderr.write(`wrote ${path.resolve(argv.csv)}: ${rows.length} rows (${ids.length} tokens × layers × vectors)\n`);
      }
    } finally {
      model.dispose();
    }
  },
};
