import * as path from 'path';
import type { CommandModule } from 'yargs';
import * as tf from '@tensorflow/tfjs';
import { checkDevice } from '../../lib/backend';
import { readValues } from '../../lib/backend/read';
import { PersonaError } from '../../lib/errors';
import { IntTensorToWrite, TensorToWrite, writeSafetensors } from '../../lib/io/safetensors';
import { interventionHooks } from '../../lib/model/interventions';
import { interventionOptions, interventionsFrom, jsonArg, loadModel, prepareBackend, tokenMatrix, writeJson } from '../common';

interface Args {
  model: string; tokens: string; 'attention-mask'?: string; 'hidden-states'?: boolean; json?: string; out?: string;
  steer?: string[]; ablate?: string[]; layer?: string; coef?: number; positions?: string; backend?: string;
}

export const forwardCommand: CommandModule<object, Args> = {
  command: 'forward',
  describe: 'One forward pass over token ids; writes logits (and hidden states) as JSON or safetensors',
  builder: (y) =>
    interventionOptions(
      y
        .option('model', { type: 'string', demandOption: true })
        .option('tokens', { type: 'string', demandOption: true, describe: 'Token ids as JSON ([T] or [B][T], inline or a file)' })
        .option('attention-mask', { type: 'string', describe: 'JSON [B][T] (1 real, 0 pad; left padding)' })
        .option('hidden-states', { type: 'boolean', default: false, describe: 'Also write hidden_states [N+1][B][T][H] (Hugging Face convention)' })
        .option('json', { type: 'string', describe: 'Output file: {"logits": [B][T][V], "hidden_states"?: ...}' })
        .option('out', { type: 'string', describe: 'Output .safetensors: logits [B, T, V], hidden_states.L [B, T, H] (with --hidden-states), input_ids [B, T] int64' }),
    ) as never,
  handler: async (argv) => {
    if (argv.json === undefined && argv.out === undefined) throw new PersonaError('give --json FILE or --out FILE.safetensors', { field: 'json' });
    if (argv.out !== undefined && path.extname(argv.out).toLowerCase() !== '.safetensors') throw new PersonaError(`--out must be a .safetensors file, got '${argv.out}'`, { field: 'out' });
    await prepareBackend(argv);
    const model = await loadModel(argv.model);
    try {
      const ids = tokenMatrix(argv.tokens, 'tokens');
      const attentionMask = argv['attention-mask'] !== undefined ? (jsonArg(argv['attention-mask'], 'attention-mask') as number[][]) : undefined;
      const hooks = interventionHooks(interventionsFrom(argv, model), model.config);
      const out = model.forward({ ids, attentionMask }, { hooks, hiddenStates: argv['hidden-states'] });
      try {
        checkDevice();
        if (argv.json !== undefined) {
          const result: Record<string, unknown> = { logits: await out.logits!.array() };
          if (out.hiddenStates) result.hidden_states = await Promise.all(out.hiddenStates.map((h) => h.array()));
          writeJson(argv.json, result);
        }
        if (argv.out !== undefined) {
          const B = ids.length;
          const T = ids[0].length;
          const tensors: Record<string, TensorToWrite | IntTensorToWrite> = {
            logits: { shape: out.logits!.shape, data: await readValues(out.logits!) },
            input_ids: { shape: [B, T], data: Int32Array.from(ids.flat()), dtype: 'I64' },
          };
          if (attentionMask) tensors.attention_mask = { shape: [B, T], data: Int32Array.from(attentionMask.flat()), dtype: 'I64' };
          for (const [L, h] of (out.hiddenStates ?? []).entries()) tensors[`hidden_states.${L}`] = { shape: h.shape, data: await readValues(h) };
          writeSafetensors(argv.out, tensors, { format: 'pt', layer_convention: 'hf_hidden_states' });
        }
        checkDevice();
      } finally {
        tf.dispose([out.logits!, ...(out.hiddenStates ?? [])]);
      }
    } finally {
      model.dispose();
    }
  },
};
