import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import type { Positions } from '../../lib/model/interventions';
import { artifactPath, readArtifacts } from '../../lib/persona/artifacts';
import { SteeringSetting, evaluateSteering, steeringSettings } from '../../lib/persona/evaluate';
import { DEFAULTS } from '../../lib/persona/defaults';
import { Tokenizer } from '../../lib/tokenizer';
import { layerVector, prepareBackend, requirePositiveInt, warnUnknownWords, writeJson } from '../common';
import { JudgeArgs, judgeOptions, printTable, rolloutOptions, withJudgedModel } from './extract';

interface Args extends JudgeArgs {
  model: string; trait: string; artifacts: string; out: string; vector?: string; layer?: number; coefs: string; positions: string; samples: number;
  'max-new-tokens': number; temperature: number; seed: string; 'batch-size': number; system?: string; backend?: string;
}

export const evalCommand: CommandModule<object, Args> = {
  command: 'eval',
  describe: 'Steering evaluation: eval questions × samples per coefficient, judged; mean ± stderr of trait and coherence',
  builder: (y) =>
    rolloutOptions(judgeOptions(
      y
        .option('model', { type: 'string', demandOption: true })
        .option('trait', { type: 'string', demandOption: true })
        .option('artifacts', { type: 'string', demandOption: true, describe: 'Directory with trait_data_eval/<trait>.json, or the JSON file' })
        .option('out', { type: 'string', demandOption: true })
        .option('vector', { type: 'string', describe: 'Persona vector file (omit for an unsteered evaluation)' })
        .option('layer', { type: 'number' })
        // nargs 1: '-2,0' as a separate token is the value, not short flags (yargs only does this for plain numbers).
        .option('coefs', { type: 'string', nargs: 1, default: '0', describe: 'Comma-separated steering coefficients (0 = unsteered)' })
        .option('positions', { type: 'string', choices: ['all', 'prompt', 'response'], default: DEFAULTS.steeringPositions, describe: "Where steering adds (the paper's: response = the last prompt token, then each generated token)" })
        .option('samples', { type: 'number', default: DEFAULTS.evalSamples, describe: 'Answers per evaluation question' })
        .option('system', { type: 'string', describe: 'System prompt for every rollout' }),
    )) as never,
  handler: async (argv) => {
    // evaluateSteering writes the CSV header before generation would refuse these.
    requirePositiveInt(argv as never, 'max-new-tokens');
    await prepareBackend(argv);
    const file = argv.artifacts.endsWith('.json') ? argv.artifacts : artifactPath(argv.artifacts, argv.trait, 'eval');
    const artifacts = readArtifacts(file);
    const coefs = argv.coefs.split(',').map((s) => Number(s.trim()));
    if (coefs.some((c) => !Number.isFinite(c))) throw new PersonaError(`--coefs must be numbers separated by commas, got '${argv.coefs}'`, { field: 'coefs' });
    // Flags first: nothing is loaded for a command that cannot run.
    if (argv.vector === undefined) {
      if (coefs.some((c) => c !== 0)) throw new PersonaError('--coefs other than 0 need --vector', { field: 'vector' });
      if (argv.layer !== undefined) throw new PersonaError('--layer without --vector: there is nothing to steer with', { field: 'layer' });
    } else if (argv.layer === undefined) throw new PersonaError('--layer is required with --vector', { field: 'layer' });
    await withJudgedModel(argv, argv.trait, artifacts.eval_prompt, async (model, judges, bar) => {
      const settings: SteeringSetting[] =
        argv.vector === undefined
          ? [{ label: 'unsteered', interventions: [] }]
          : steeringSettings(layerVector(argv.vector, argv.layer!, model), argv.layer!, coefs, argv.positions as Positions, model.config.numLayers);
      const tokenizer = Tokenizer.load(argv.model);
      warnUnknownWords(tokenizer, [...artifacts.questions, ...(argv.system !== undefined ? [argv.system] : [])], `the questions${argv.system !== undefined ? ' and system prompt' : ''} (${file})`, argv.model);
      const res = await evaluateSteering({ model, tokenizer, artifacts, trait: argv.trait, judges, settings, outDir: argv.out, samples: argv.samples, system: argv.system, maxNewTokens: argv['max-new-tokens'], temperature: argv.temperature, seed: argv.seed, batchSize: argv['batch-size'], onProgress: bar.on });
      bar.stop();
      writeJson(path.join(argv.out, `${argv.trait}_eval_summary.json`), res);
      printTable([['setting', 'n', argv.trait, '±se', 'coherence', '±se'], ...res.map((s) => [s.label, s.rows, s.traitMean, s.traitStderr, s.coherenceMean, s.coherenceStderr])]);
      const few = res.filter((s) => s.traitN < 2 || s.coherenceN < 2).map((s) => `${s.label} (${Math.min(s.traitN, s.coherenceN)})`);
      if (few.length) process.stderr.write(`note: ±se is n/a where fewer than 2 answers were judged: ${few.join(', ')}; raise --samples\n`);
    });
  },
};
