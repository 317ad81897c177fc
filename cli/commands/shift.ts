import * as path from 'path';
import type { CommandModule } from 'yargs';
import { artifactPath, readArtifacts } from '../../lib/persona/artifacts';
import { renderItemPrompt } from '../../lib/persona/rollouts';
import { finetuningShift } from '../../lib/persona/shift';
import { PersonaVector } from '../../lib/persona/vector';
import { Tokenizer } from '../../lib/tokenizer';
import { loadModel, prepareBackend, writeJson } from '../common';
import { printTable } from './extract';

interface Args { base: string; finetuned: string; trait: string; artifacts: string; vector: string; layer: number; out?: string; 'batch-size': number; 'null-count': number; seed: string; backend?: string }

export const shiftCommand: CommandModule<object, Args> = {
  command: 'shift',
  describe: 'Finetuning shift: (finetuned − base) mean last-prompt activation over eval prompts, projected on the vector (full checkpoints)',
  builder: (y) =>
    y
      .option('base', { type: 'string', demandOption: true, describe: 'Base checkpoint directory (its tokenizer renders the prompts)' })
      .option('finetuned', { type: 'string', demandOption: true, describe: 'Finetuned full checkpoint directory' })
      .option('trait', { type: 'string', demandOption: true })
      .option('artifacts', { type: 'string', demandOption: true })
      .option('vector', { type: 'string', demandOption: true })
      .option('layer', { type: 'number', demandOption: true })
      .option('out', { type: 'string', describe: 'Write the result JSON here' })
      .option('batch-size', { type: 'number', default: 8 })
      .option('null-count', { type: 'number', default: 20 })
      .option('seed', { type: 'string', default: '0' }) as never,
  handler: async (argv) => {
    await prepareBackend(argv);
    const file = argv.artifacts.endsWith('.json') ? argv.artifacts : artifactPath(argv.artifacts, argv.trait, 'eval');
    const artifacts = readArtifacts(file);
    const tok = Tokenizer.load(argv.base);
    const prompts = artifacts.questions.map((q) => tok.encode(renderItemPrompt(tok, { question: q, questionId: '' })));
    const vector = PersonaVector.load(argv.vector, { layer: argv.layer });
    const base = loadModel(argv.base);
    const ft = loadModel(argv.finetuned);
    try {
      const r = finetuningShift({ base: { model: base }, finetuned: { model: ft }, prompts, vector, layer: argv.layer, batchSize: argv['batch-size'], nullCount: argv['null-count'], seed: argv.seed });
      if (argv.out) writeJson(argv.out, { ...r, diff: Array.from(r.diff), base: path.resolve(argv.base), finetuned: path.resolve(argv.finetuned) });
      printTable([['layer', 'projection', '|diff|', 'null mean|p|', 'null 97.5%', 'above null'], [r.layer, r.projection, r.diffNorm, r.null.meanAbs, r.null.p975, r.beatsNull ? 'yes' : 'no']]);
    } finally {
      base.dispose();
      ft.dispose();
    }
  },
};
