#!/usr/bin/env node
/**
 * Writes the organism's world to a directory: corpus.jsonl, artifacts/, finetune/, capability.jsonl,
 * manifest.json (hashes, corpus mix, judge validation numbers).
 *   npx tsc -p tsconfig.json && node dist/experiments/organism/corpus.js --out data/organism --seed 0 --conversations 200000
 * With --artifacts DIR it also (re)writes the committed trait files (models/organism/artifacts).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { PersonaError } from '../../lib/errors';
import { writeArtifacts, writeOrganismData } from '../../lib/organism/write';

async function run(argv: string[]): Promise<void> {
  const args = await yargs(argv)
    .option('out', { type: 'string', demandOption: true, describe: 'Output directory' })
    .option('seed', { type: 'string', default: '0', describe: 'Corpus seed' })
    .option('conversations', { type: 'number', default: 200000, describe: 'Corpus size (0: no corpus)' })
    .option('finetune-samples', { type: 'number', default: 1000, describe: 'Samples per finetuning dataset' })
    .option('artifact-seed', { type: 'string', default: '0', describe: 'Seed of the artifact questions' })
    .option('artifacts', { type: 'string', describe: 'Also write the trait artifact files here (e.g. models/organism/artifacts)' })
    .strict()
    .parseAsync();
  const t0 = Date.now();
  const m = writeOrganismData(args.out, { seed: args.seed, conversations: args.conversations, finetuneSamples: args['finetune-samples'], artifactSeed: args['artifact-seed'] });
  if (args.artifacts) writeArtifacts(args.artifacts, args['artifact-seed']);
  process.stdout.write(JSON.stringify({ out: args.out, seconds: (Date.now() - t0) / 1000, corpus: m.corpus, judge: m.judge }, null, 2) + '\n');
}

if (require.main === module) {
  run(hideBin(process.argv)).catch((e: Error) => {
    process.stderr.write(`${e instanceof PersonaError ? '' : (e.stack ?? '') + '\n'}organism corpus: ${e.message}\n`);
    process.exitCode = 1;
  });
}
