import type { CommandModule } from 'yargs';
import { trainStep } from '../../lib/train/step';
import { interventionOptions, interventionsFrom, jsonArg, loadModel, prepareBackend, tokenMatrix, writeJson } from '../common';

interface Args {
  model: string; tokens: string; labels: string; 'attention-mask'?: string; json: string;
  steer?: string[]; ablate?: string[]; layer?: string; coef?: number; positions?: string; backend?: string;
}

/** Inspection command used by external conformance checks: keep its flags and output stable. */
export const trainStepCommand: CommandModule<object, Args> = {
  command: 'train-step',
  describe: "One forward + backward pass of HF's shifted causal-LM loss (labels -100 ignored), no update; writes loss and every parameter's grad L2 norm",
  builder: (y) =>
    interventionOptions(
      y
        .option('model', { type: 'string', demandOption: true })
        .option('tokens', { type: 'string', demandOption: true, describe: 'Token ids as JSON ([T] or [B][T], right padded; inline or a file)' })
        .option('labels', { type: 'string', demandOption: true, describe: 'Labels as JSON, same shape; -100 = no loss' })
        .option('attention-mask', { type: 'string', describe: 'JSON [B][T] (1 real, 0 pad); position ids are 0..T-1' })
        .option('json', { type: 'string', demandOption: true, describe: 'Output file: {"loss": number, "grad_norms": {HF name: number}}' }),
    ) as never,
  handler: async (argv) => {
    await prepareBackend(argv);
    const model = await loadModel(argv.model);
    try {
      const ids = tokenMatrix(argv.tokens, 'tokens');
      const labels = tokenMatrix(argv.labels, 'labels');
      const attentionMask = argv['attention-mask'] !== undefined ? (jsonArg(argv['attention-mask'], 'attention-mask') as number[][]) : undefined;
      const r = await trainStep(model, { ids, labels, attentionMask }, { interventions: interventionsFrom(argv, model) });
      writeJson(argv.json, { loss: r.loss, grad_norms: r.gradNorms });
    } finally {
      model.dispose();
    }
  },
};
