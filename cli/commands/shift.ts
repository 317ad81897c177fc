import * as path from 'path';
import type { CommandModule } from 'yargs';
import { artifactPath, readArtifacts } from '../../lib/persona/artifacts';
import { renderItemPrompt } from '../../lib/persona/rollouts';
import { finetuningShift } from '../../lib/persona/shift';
import { PersonaVector } from '../../lib/persona/vector';
import { Tokenizer } from '../../lib/tokenizer';
import type { Model } from '../../lib/model/checkpoint';
import { PersonaError } from '../../lib/errors';
import type { LoraAdapters } from '../../lib/train/lora';
import { loadAdapter } from '../../lib/train/peft';
import { loadModel, prepareBackend, warnUnknownWords, writeJson } from '../common';
import { printTable } from './extract';

interface Args { base: string; finetuned?: string; adapter?: string; trait: string; artifacts: string; vector: string; layer: number; out?: string; 'batch-size': number; 'null-count': number; seed: string; backend?: string }

export const shiftCommand: CommandModule<object, Args> = {
  command: 'shift',
  describe: 'Finetuning shift: (finetuned − base) mean last-prompt activation over eval prompts, projected on the vector (full checkpoint or PEFT adapter)',
  builder: (y) =>
    y
      .option('base', { type: 'string', demandOption: true, describe: 'Base checkpoint directory (its tokenizer renders the prompts)' })
      .option('finetuned', { type: 'string', describe: 'Finetuned full checkpoint directory' })
      .option('adapter', { type: 'string', describe: 'Or: PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) applied on top of --base' })
      .option('trait', { type: 'string', demandOption: true })
      .option('artifacts', { type: 'string', demandOption: true })
      .option('vector', { type: 'string', demandOption: true })
      .option('layer', { type: 'number', demandOption: true })
      .option('out', { type: 'string', describe: 'Write the result JSON here' })
      .option('batch-size', { type: 'number', default: 8 })
      .option('null-count', { type: 'number', default: 20 })
      .option('seed', { type: 'string', default: '0' }) as never,
  handler: async (argv) => {
    // Checked up front: the library would only find out after every rollout had been generated.
    if (!Number.isInteger(argv['null-count']) || argv['null-count'] < 20) throw new PersonaError(`--null-count must be an integer >= 20 (random directions for the null), got ${argv['null-count']}`, { field: 'null-count' });
    await prepareBackend(argv);
    const file = argv.artifacts.endsWith('.json') ? argv.artifacts : artifactPath(argv.artifacts, argv.trait, 'eval');
    const artifacts = readArtifacts(file);
    const tok = Tokenizer.load(argv.base);
    warnUnknownWords(tok, artifacts.questions, `the questions (${file})`, argv.base);
    const prompts = artifacts.questions.map((q) => tok.encode(renderItemPrompt(tok, { question: q, questionId: '' })));
    const vector = PersonaVector.load(argv.vector, { layer: argv.layer });
    if ((argv.finetuned === undefined) === (argv.adapter === undefined)) throw new PersonaError('give exactly one of --finetuned DIR (full checkpoint) or --adapter DIR (PEFT adapter on --base)', { field: argv.finetuned === undefined ? 'finetuned' : 'adapter' });
    const base = await loadModel(argv.base);
    let ft: Model | undefined;
    let lora: LoraAdapters | undefined;
    try {
      if (argv.adapter !== undefined) lora = loadAdapter(argv.adapter, base);
      else ft = await loadModel(argv.finetuned!);
      const finetuned = lora ? { model: base, adapters: lora.adapters() } : { model: ft! };
      const r = await finetuningShift({ base: { model: base }, finetuned, prompts, vector, layer: argv.layer, batchSize: argv['batch-size'], nullCount: argv['null-count'], seed: argv.seed });
      const what = argv.adapter !== undefined ? { adapter: path.resolve(argv.adapter) } : { finetuned: path.resolve(argv.finetuned!) };
      if (argv.out) writeJson(argv.out, { ...r, diff: Array.from(r.diff), base: path.resolve(argv.base), ...what });
      printTable([['layer', 'projection', '|diff|', 'null mean|p|', 'null 97.5%', 'above null'], [r.layer, r.projection, r.diffNorm, r.null.meanAbs, r.null.p975, r.beatsNull ? 'yes' : 'no']]);
    } finally {
      lora?.dispose();
      ft?.dispose();
      base.dispose();
    }
  },
};
