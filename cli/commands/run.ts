import * as fs from 'fs';
import type { CommandModule } from 'yargs';
import { loadExperiment, parseShard, runExperiment } from '../../lib/experiment';
import { formatTable } from '../../lib/experiment/studies/shared/format';
import { mitigationTable } from '../../lib/experiment/studies/mitigation';
import { monitoringTable } from '../../lib/experiment/studies/monitoring';
import { findingsTable } from '../../lib/experiment/studies/paper';
import { screeningTable } from '../../lib/experiment/studies/screening';
import { shiftTable } from '../../lib/experiment/studies/shift';
import { steeringTable } from '../../lib/experiment/studies/steering';
import { prepareBackend } from '../common';

/** Per study, its summary's result table as the experiments/ entry points print it (null: none to print). */
export const RESULT_TABLES: Record<string, (s: Record<string, unknown>) => string | null> = {
  steering: (s) => (s.steering ? formatTable(steeringTable(s.steering as never)) : null),
  monitoring: (s) => (s.monitoring ? formatTable(monitoringTable(s.monitoring as never)) : null),
  mitigation: (s) => formatTable(mitigationTable(s as never)),
  screening: (s) => (s.screening ? formatTable(screeningTable(s.screening as never)) : null),
  shift: (s) => (s.shift ? formatTable(shiftTable(s.shift as never)) : null),
  paper: (s) => {
    if (!s.findings) return null;
    const lines = [...((s.not_reproduced as string[]) ?? []), ...((s.not_measured as string[]) ?? [])].map((l) => `  - ${l}\n`).join('');
    return formatTable(findingsTable(s.findings as never)) + `${s.passed} of ${s.checked} findings pass${lines ? ':\n' + lines : '\n'}`;
  },
};

/** The result table of a study's summary; null for a study without one (the summary path is printed either way). */
export function studyResultTable(study: string, s: Record<string, unknown>): string | null {
  return RESULT_TABLES[study]?.(s) ?? null;
}

interface Args { config: string; shard?: string; 'output-dir'?: string; 'cache-dir'?: string; progress: boolean; backend?: string }

export const runCommand: CommandModule<object, Args> = {
  command: 'run <config>',
  describe: 'Run an experiment config (YAML/JSON): every sweep cell without a result, then collect results.csv, summary.json and figures; resumes after any interruption',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Experiment config (.yaml, .yml, .json); keys in configs/README.md' })
      .option('shard', { type: 'string', describe: 'Run only shard i of n ("i/n", 0-based), chosen by cell-id hash; collect with `persona collect`' })
      .option('output-dir', { type: 'string', describe: 'Overrides output_dir of the config' })
      .option('cache-dir', { type: 'string', describe: 'Overrides cache_dir of the config' })
      .option('progress', { type: 'boolean', default: true, describe: 'Progress over cells on stderr: a bar on a terminal, a line with done/total and ETA every 30 s in logs' }) as never,
  handler: async (argv) => {
    const shard = argv.shard !== undefined ? parseShard(argv.shard) : undefined;
    const exp = loadExperiment(argv.config, { outputDir: argv['output-dir'], cacheDir: argv['cache-dir'] });
    await prepareBackend(argv);
    const r = await runExperiment(exp, { shard, progress: argv.progress, log: (m) => process.stderr.write(`persona run: ${m}\n`) });
    process.stderr.write(`persona run: ${r.computed} computed, ${r.skipped} already done, ${r.inShard} of ${r.cells} cells in this run\n`);
    if (r.collected) {
      const table = studyResultTable(exp.config.study, JSON.parse(fs.readFileSync(r.collected.summaryFile, 'utf8')));
      if (table) process.stdout.write(table);
    }
    // The last line of stdout is the summary path (or the run folder of a shard) so scripts can pick it up.
    process.stdout.write(`${r.collected ? r.collected.summaryFile : r.runDir}\n`);
  },
};
