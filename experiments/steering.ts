/**
 * Entry point of the steering study on the organism (see lib/experiment/studies/steering.ts):
 *
 *   node dist/experiments/steering.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/steering.yaml)
 *
 * Same as `persona run CONFIG`, then prints the summary table. Resumes after any interruption.
 */
import * as fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BackendRequest, useBackend } from '../lib/backend';
import { PersonaError } from '../lib/errors';
import { loadExperiment, runExperiment } from '../lib/experiment';
import { formatTable } from '../lib/experiment/studies/organism-common';
import { steeringTable } from '../lib/experiment/studies/steering';

async function main(): Promise<void> {
  const argv = yargs(hideBin(process.argv))
    .command('$0 [config]', 'run the steering study', (y) => y.positional('config', { type: 'string', default: 'configs/organism/steering.yaml' }))
    .option('backend', { type: 'string', default: 'wasm' })
    .option('progress', { type: 'boolean', default: true })
    .strict()
    .parseSync();
  const exp = loadExperiment(argv.config as string);
  await useBackend(argv.backend as BackendRequest, (m) => process.stderr.write(`${m}\n`));
  const r = await runExperiment(exp, { progress: argv.progress, log: (m) => process.stderr.write(`steering: ${m}\n`) });
  const summary = JSON.parse(fs.readFileSync(r.collected!.summaryFile, 'utf8'));
  process.stdout.write(formatTable(steeringTable(summary.steering)) + `${r.collected!.summaryFile}\n`);
}

main().catch((e) => {
  process.stderr.write(`steering: ${e instanceof PersonaError ? e.message : (e as Error).stack}\n`);
  process.exit(1);
});
