/**
 * Entry point of the mitigation study on the organism (see lib/experiment/studies/mitigation.ts):
 *
 *   node dist/experiments/mitigation.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/mitigation.yaml)
 *
 * Same as `persona run CONFIG`, then prints a summary table and, last, the summary path. Resumes after any interruption.
 */
import * as fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BackendRequest, useBackend } from '../lib/backend';
import { PersonaError } from '../lib/errors';
import { loadExperiment, runExperiment } from '../lib/experiment';
import { formatTable } from '../lib/experiment/studies/organism-common';
import { mitigationTable } from '../lib/experiment/studies/mitigation';

async function main(): Promise<void> {
  const argv = yargs(hideBin(process.argv))
    .usage('$0 [config]')
    .option('backend', { type: 'string', default: 'wasm' })
    .option('progress', { type: 'boolean', default: true })
    .strict()
    .parseSync();
  const exp = loadExperiment(String(argv._[0] ?? 'configs/organism/mitigation.yaml'));
  await useBackend(argv.backend as BackendRequest, (m) => process.stderr.write(`${m}\n`));
  const r = await runExperiment(exp, { progress: argv.progress, log: (m) => process.stderr.write(`mitigation: ${m}\n`) });
  const summary = JSON.parse(fs.readFileSync(r.collected!.summaryFile, 'utf8'));
  process.stdout.write(formatTable(mitigationTable(summary)) + `${r.collected!.summaryFile}\n`);
}

main().catch((e) => {
  process.stderr.write(`mitigation: ${e instanceof PersonaError ? e.message : (e as Error).stack}\n`);
  process.exit(1);
});
