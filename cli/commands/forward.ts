import type { CommandModule } from 'yargs';
import * as tf from '@tensorflow/tfjs';
import { checkDevice } from '../../lib/backend';
import { interventionHooks } from '../../lib/model/interventions';
import { interventionOptions, interventionsFrom, jsonArg, loadModel, prepareBackend, tokenMatrix, writeJson } from '../common';

interface Args {
  model: string; tokens: string; 'attention-mask'?: string; 'hidden-states'?: boolean; json: string;
  steer?: string[]; ablate?: string[]; layer?: string; coef?: number; positions?: string; backend?: string;
}

export const forwardCommand: CommandModule<object, Args> = {
  command: 'forward',
  describe: 'One forward pass over token ids; writes logits (and hidden states) as JSON',
  builder: (y) =>
    interventionOptions(
      y
        .option('model', { type: 'string', demandOption: true })
        .option('tokens', { type: 'string', demandOption: true, describe: 'Token ids as JSON ([T] or [B][T], inline or a file)' })
        .option('attention-mask', { type: 'string', describe: 'JSON [B][T] (1 real, 0 pad; left padding)' })
        .option('hidden-states', { type: 'boolean', default: false, describe: 'Also write hidden_states [N+1][B][T][H] (Hugging Face convention)' })
        .option('json', { type: 'string', demandOption: true, describe: 'Output file: {"logits": [B][T][V], "hidden_states"?: ...}' }),
    ) as never,
  handler: async (argv) => {
    await prepareBackend(argv);
    const model = await loadModel(argv.model);
    try {
      const ids = tokenMatrix(argv.tokens, 'tokens');
      const attentionMask = argv['attention-mask'] !== undefined ? (jsonArg(argv['attention-mask'], 'attention-mask') as number[][]) : undefined;
      const hooks = interventionHooks(interventionsFrom(argv, model), model.config);
      const out = model.forward({ ids, attentionMask }, { hooks, hiddenStates: argv['hidden-states'] });
      let result: Record<string, unknown>;
      try {
        checkDevice();
        result = { logits: await out.logits!.array() };
        if (out.hiddenStates) result.hidden_states = await Promise.all(out.hiddenStates.map((h) => h.array()));
        checkDevice();
      } finally {
        tf.dispose([out.logits!, ...(out.hiddenStates ?? [])]);
      }
      writeJson(argv.json, result);
    } finally {
      model.dispose();
    }
  },
};
