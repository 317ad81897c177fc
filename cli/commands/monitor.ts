import * as fs from 'fs';
import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { artifactPath, readArtifacts } from '../../lib/persona/artifacts';
import { MonitorCondition, gradedSystemPrompts, manyShotConditions, monitorProjections } from '../../lib/persona/monitor';
import { readRolloutsCsv } from '../../lib/persona/rollouts-csv';
import { PersonaVector } from '../../lib/persona/vector';
import { COMMAND_DEFAULTS, DEFAULTS } from '../../lib/persona/defaults';
import { Tokenizer } from '../../lib/tokenizer';
import { jsonArg, prepareBackend, requirePositiveInt, warnUnknownWords, writeJson } from '../common';
import { JudgeArgs, judgeOptions, printTable, rolloutOptions, withJudgedModel } from './extract';

interface Args extends JudgeArgs {
  model: string; trait: string; artifacts: string; out: string; vector: string; layer: number; conditions?: string; 'shots-from'?: string; shots: string;
  samples: number; 'max-new-tokens': number; temperature: number; seed: string; 'batch-size': number; 'null-count': number; backend?: string;
}

export const monitorCommand: CommandModule<object, Args> = {
  command: 'monitor',
  describe: 'Monitoring: last-prompt-token projection per prompt vs judged trait score (Pearson r, bootstrap CI, random-direction null)',
  builder: (y) =>
    rolloutOptions(judgeOptions(
      y
        .option('model', { type: 'string', demandOption: true })
        .option('trait', { type: 'string', demandOption: true })
        .option('artifacts', { type: 'string', demandOption: true })
        .option('out', { type: 'string', demandOption: true })
        .option('vector', { type: 'string', demandOption: true })
        .option('layer', { type: 'number', demandOption: true })
        .option('conditions', { type: 'string', describe: "JSON [{label, system}] (inline or file); default: the artifacts' eight graded system prompts, as the monitoring study" })
        .option('shots-from', { type: 'string', describe: 'Rollouts CSV whose top-scored answers become many-shot examples' })
        // nargs 1: a separate '-1,2' is the value (then refused below), not short flags.
        .option('shots', { type: 'string', nargs: 1, default: '0,1,2,4', describe: 'Comma-separated K for --shots-from' })
        .option('samples', { type: 'number', default: COMMAND_DEFAULTS.monitor.samples, describe: 'Answers per (condition, question)' })
        .option('null-count', { type: 'number', default: DEFAULTS.nullCount, describe: 'Random directions in the null' }),
    ), { maxNewTokens: COMMAND_DEFAULTS.monitor.maxNewTokens }) as never,
  handler: async (argv) => {
    // Checked up front: the library would only find out after every rollout had been generated.
    if (!Number.isInteger(argv['null-count']) || argv['null-count'] < 20) throw new PersonaError(`--null-count must be an integer >= 20 (random directions for the null), got ${argv['null-count']}`, { field: 'null-count' });
    requirePositiveInt(argv as never, 'max-new-tokens');
    const shots = argv.shots.split(',').map((s) => Number(s.trim()));
    if (shots.some((k) => !Number.isInteger(k) || k < 0)) throw new PersonaError(`--shots must be non-negative integers separated by commas, got '${argv.shots}'`, { field: 'shots' });
    await prepareBackend(argv);
    const file = argv.artifacts.endsWith('.json') ? argv.artifacts : artifactPath(argv.artifacts, argv.trait, 'eval');
    const artifacts = readArtifacts(file);
    let conditions: MonitorCondition[];
    if (argv['shots-from']) {
      const rows = readRolloutsCsv(argv['shots-from'], argv.trait).rows.filter((r) => r.score !== null).sort((a, b) => b.score! - a.score!);
      conditions = manyShotConditions(rows.map((r) => ({ question: r.question, answer: r.answer })), shots);
    } else if (argv.conditions) {
      const c = jsonArg(argv.conditions, 'conditions');
      if (!Array.isArray(c) || !c.every((x) => x && typeof x.label === 'string' && (x.system === undefined || typeof x.system === 'string')))
        throw new PersonaError('expected a JSON list of {"label", "system"}', { file: fs.existsSync(argv.conditions) ? argv.conditions : undefined, field: 'conditions' });
      conditions = c as MonitorCondition[];
    } else conditions = gradedSystemPrompts(artifacts, argv.trait, { file });
    const vector = PersonaVector.load(argv.vector, { layer: argv.layer });
    await withJudgedModel(argv, argv.trait, artifacts.eval_prompt, async (model, judges, bar) => {
      const tokenizer = Tokenizer.load(argv.model);
      warnUnknownWords(tokenizer, [...artifacts.questions, ...conditions.flatMap((c) => [c.system ?? '', ...(c.history ?? []).map((m) => m.content)])], 'the questions and conditions', argv.model);
      const r = await monitorProjections({ model, tokenizer, vector, layer: argv.layer, trait: argv.trait, questions: artifacts.questions, conditions, judges, outDir: argv.out, samples: argv.samples, maxNewTokens: argv['max-new-tokens'], temperature: argv.temperature, seed: argv.seed, batchSize: argv['batch-size'], nullCount: argv['null-count'], onProgress: bar.on });
      bar.stop();
      writeJson(path.join(argv.out, `${argv.trait}_monitor_summary.json`), r);
      printTable([['condition', 'projection', argv.trait, '±se'], ...r.conditions.map((c) => [c.label, c.projectionMean, c.traitMean, c.traitStderr])]);
      const c = r.correlation;
      process.stdout.write(`pearson r = ${c.r.toFixed(3)} [95% CI ${c.ci95.lo.toFixed(3)}, ${c.ci95.hi.toFixed(3)}] over ${c.n} prompts; random directions (${c.null.count}): mean |r| ${c.null.meanAbs.toFixed(3)}, 97.5% ${c.null.p975.toFixed(3)}${c.beatsNull ? '' : ' — NOT above the null'}\n`);
    });
  },
};
