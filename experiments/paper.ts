/**
 * Entry point of the paper study on the organism (see lib/experiment/studies/paper.ts):
 *
 *   node dist/experiments/paper.js [CONFIG] [--backend wasm]     (default CONFIG: configs/organism/paper.yaml)
 *
 * Same as `persona run CONFIG` (all five studies, one report), then prints every finding with its threshold and pass/fail, what did not reproduce and, last, the summary path. Resumes after any interruption.
 */
import * as fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BackendRequest, useBackend } from '../lib/backend';
import { PersonaError } from '../lib/errors';
import { loadExperiment, runExperiment } from '../lib/experiment';
import { formatTable } from '../lib/experiment/studies/organism-common';
import { findingsTable } from '../lib/experiment/studies/paper';

async function main(): Promise<void> {
  const argv = yargs(hideBin(process.argv))
    .usage('$0 [config]')
    .option('backend', { type: 'string', default: 'wasm' })
    .option('progress', { type: 'boolean', default: true })
    .strict()
    .parseSync();
  const exp = loadExperiment(String(argv._[0] ?? 'configs/organism/paper.yaml'));
  await useBackend(argv.backend as BackendRequest, (m) => process.stderr.write(`${m}\n`));
  const r = await runExperiment(exp, { progress: argv.progress, log: (m) => process.stderr.write(`paper: ${m}\n`) });
  const summary = JSON.parse(fs.readFileSync(r.collected!.summaryFile, 'utf8'));
  const lines = [...summary.not_reproduced, ...summary.not_measured].map((l: string) => `  - ${l}\n`).join('');
  process.stdout.write(formatTable(findingsTable(summary.findings)) + `${summary.passed} of ${summary.checked} findings pass${lines ? ':\n' + lines : '\n'}` + `${r.collected!.summaryFile}\n`);
}

main().catch((e) => {
  process.stderr.write(`paper: ${e instanceof PersonaError ? e.message : (e as Error).stack}\n`);
  process.exit(1);
});
