/**
 * What every study entry point in experiments/ does: `persona run CONFIG` on the chosen backend, then the
 * study's summary table on stdout and, last, the summary path. Resumes after any interruption.
 *
 *   node dist/experiments/<study>.js [CONFIG] [--backend wasm] [--no-progress]
 */
import * as fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BackendRequest, useBackend } from '../lib/backend';
import { PersonaError } from '../lib/errors';
import { loadExperiment, runExperiment } from '../lib/experiment';

/** `report` turns the summary JSON into the text printed before the summary path. */
export function runStudyEntryPoint(name: string, defaultConfig: string, report: (summary: Record<string, unknown>) => string): void {
  const main = async () => {
    const argv = yargs(hideBin(process.argv))
      .command('$0 [config]', `run the ${name} study`, (y) => y.positional('config', { type: 'string', default: defaultConfig }))
      .option('backend', { type: 'string', default: 'wasm' })
      .option('progress', { type: 'boolean', default: true })
      .strict()
      .parseSync();
    const exp = loadExperiment(String(argv.config));
    await useBackend(argv.backend as BackendRequest, (m) => process.stderr.write(`${m}\n`));
    const r = await runExperiment(exp, { progress: argv.progress, log: (m) => process.stderr.write(`${name}: ${m}\n`) });
    const summary = JSON.parse(fs.readFileSync(r.collected!.summaryFile, 'utf8'));
    process.stdout.write(report(summary) + `${r.collected!.summaryFile}\n`);
  };
  main().catch((e) => {
    process.stderr.write(`${name}: ${e instanceof PersonaError ? e.message : (e as Error).stack}\n`);
    process.exit(1);
  });
}
