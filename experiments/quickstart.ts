/**
 * The quickstart (README's main command): on the bundled organism, extract the evil persona vector, steer
 * with it over layers × coefficients, monitor graded system prompts, print a summary table and write CSVs
 * and figures to runs/quickstart/. Offline; ~5 minutes on 2 CPU cores (wasm backend).
 *
 *   npm run quickstart [-- --config configs/organism/quickstart.yaml --out runs/quickstart --backend wasm]
 *
 * Rerunning resumes: finished cells and cached rollouts/vectors (runs/cache) are never recomputed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BackendRequest, useBackend } from '../lib/backend';
import { PersonaError } from '../lib/errors';
import { writeFileAtomic } from '../lib/io/atomic';
import { loadExperiment, runExperiment } from '../lib/experiment';
import { formatTable, splitConfigSections } from '../lib/experiment/studies/shared/format';
import { monitoringTable } from '../lib/experiment/studies/monitoring';
import { steeringTable } from '../lib/experiment/studies/steering';

async function main(): Promise<void> {
  const argv = yargs(hideBin(process.argv))
    .option('config', { type: 'string', default: 'configs/organism/quickstart.yaml', describe: 'Sections of experiment configs, run in order' })
    .option('out', { type: 'string', default: 'runs/quickstart', describe: 'Where the merged summary and the generated configs go' })
    .option('backend', { type: 'string', default: 'wasm', describe: 'tfjs backend: wasm | webgpu | cpu | tensorflow | auto' })
    .option('progress', { type: 'boolean', default: true })
    .strict()
    .parseSync();
  const t0 = Date.now();
  const log = (m: string) => process.stderr.write(`quickstart: ${m}\n`);
  const sections = splitConfigSections(argv.config, path.join(argv.out, 'configs'));
  const exps = sections.map((s) => ({ ...s, exp: loadExperiment(s.file) })); // validate every section before running any
  await useBackend(argv.backend as BackendRequest, log);
  const merged: Record<string, unknown> = {};
  const tables: string[] = [];
  const figures: string[] = [];
  for (const { name, exp } of exps) {
    const t = Date.now();
    const r = await runExperiment(exp, { progress: argv.progress, log });
    const summary = JSON.parse(fs.readFileSync(r.collected!.summaryFile, 'utf8')) as Record<string, unknown>;
    log(`${name}: ${r.computed} cells computed, ${r.skipped} reused, ${((Date.now() - t) / 1000).toFixed(0)} s`);
    merged[name] = summary;
    figures.push(...r.collected!.figures.filter((f) => f.endsWith('.png')));
    if (summary.steering) tables.push(`Steering (${name}):\n${formatTable(steeringTable(summary.steering as never))}`);
    if (summary.monitoring) tables.push(`Monitoring (${name}):\n${formatTable(monitoringTable(summary.monitoring as never))}`);
  }
  const seconds = (Date.now() - t0) / 1000;
  const file = path.join(argv.out, 'summary.json');
  writeFileAtomic(file, JSON.stringify({ ...merged, quickstart: { seconds, config: argv.config } }, null, 2) + '\n');
  process.stdout.write(`\n${tables.join('\n')}\nFigures:\n${figures.map((f) => `  ${path.relative(process.cwd(), f)}`).join('\n')}\n\nquickstart finished in ${seconds.toFixed(0)} s\n${path.relative(process.cwd(), file)}\n`);
}

main().catch((e) => {
  process.stderr.write(`quickstart: ${e instanceof PersonaError ? e.message : (e as Error).stack}\n`);
  process.exit(1);
});
