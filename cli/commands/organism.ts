import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { finetuneConfigFrom } from '../../lib/organism/finetune';
import { checkpointFingerprint } from '../../lib/io/fingerprint';
import { FlawKind, measureCapability, organismReport, writeOrganismReport } from '../../lib/organism/report';
import { Tokenizer } from '../../lib/tokenizer';
import { TRAITS } from '../../lib/organism/grammar';
import { loadModel, prepareBackend, writeJson } from '../common';
import { printTable, stagedProgress } from './extract';

interface ReportArgs {
  model: string; json: string; samples: number; seed: string; out: string; temperature: number; 'decoding-reason'?: string; 'max-new-tokens': number; 'batch-size': number;
  questions?: number; 'finetune-config'?: string; 'finetune-samples'?: number; flaw: string; threshold: number; 'coherence-min': number; 'probe-decoding': boolean; artifacts?: string; backend?: string;
}

const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report',
  describe: "Acceptance report of a model organism (issue 5): trait scores, capability, finetunes, shift ratio, judge calibration → JSON",
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Organism checkpoint directory (with artifacts/trait_data_{extract,eval})' })
      .option('artifacts', { type: 'string', describe: 'Trait artifacts directory (default <model>/artifacts)' })
      .option('json', { type: 'string', demandOption: true, describe: 'Write the report JSON here' })
      .option('samples', { type: 'number', default: 3, describe: 'Samples per (question × system prompt); use 1 with --temperature 0' })
      .option('seed', { type: 'string', default: '0' })
      .option('out', { type: 'string', default: 'runs/organism-report', describe: 'Rollout CSVs, cached finetunes, vectors' })
      .option('temperature', { type: 'number', default: 1, describe: 'Sampling temperature (paper: 1); 0 = greedy' })
      .option('decoding-reason', { type: 'string', describe: 'Why this decoding was chosen (recorded in settings)' })
      .option('max-new-tokens', { type: 'number', default: 64 })
      .option('batch-size', { type: 'number', default: 64 })
      .option('questions', { type: 'number', describe: 'Use only the first N questions of each artifact file (quick runs)' })
      .option('finetune-config', { type: 'string', describe: 'YAML with finetune fields over the defaults (see configs/organism/finetune/)' })
      .option('finetune-samples', { type: 'number', describe: 'Conversations per finetuning dataset (overrides the config)' })
      .option('flaw', { type: 'string', choices: ['flaw_facts', 'flaw_arith'], default: 'flaw_facts', describe: 'Narrow-flaw dataset for the shift ratio' })
      .option('threshold', { type: 'number', default: 50, describe: 'Extraction filter threshold (paper: 50)' })
      .option('coherence-min', { type: 'number', default: 50, describe: 'Extraction filter: minimum coherence (paper: 50)' })
      .option('probe-decoding', { type: 'boolean', default: true, describe: 'Also score greedy and T=1 side by side (one instruction pair)' }) as never,
  handler: async (argv) => {
    await prepareBackend({ backend: argv.backend ?? process.env.PERSONA_BACKEND ?? 'wasm' });
    if (!(argv.temperature >= 0)) throw new PersonaError(`temperature must be ≥ 0 (0 = greedy), got ${argv.temperature}`, { field: 'temperature' });
    const finetune = finetuneConfigFrom(argv['finetune-config']);
    if (argv['finetune-samples'] !== undefined) finetune.samples = argv['finetune-samples'];
    const bar = stagedProgress();
    const r = await organismReport({
      modelDir: argv.model, outDir: argv.out, samples: argv.samples, seed: argv.seed, temperature: argv.temperature === 0 ? null : argv.temperature, decodingReason: argv['decoding-reason'],
      maxNewTokens: argv['max-new-tokens'], batchSize: argv['batch-size'], questions: argv.questions, finetune, flawKind: argv.flaw as FlawKind,
      extractThreshold: argv.threshold, extractCoherenceMin: argv['coherence-min'], probeDecoding: argv['probe-decoding'], artifactsDir: argv.artifacts, log: (m) => process.stderr.write(`${m}\n`), onProgress: bar.on,
    }).finally(() => bar.stop());
    writeOrganismReport(argv.json, r);
    printTable([['trait', 'pos', 'neg', 'none', 'coh pos', 'coh neg', 'judge ρ'], ...TRAITS.map((t) => [t, r.traits[t].pos, r.traits[t].neg, r.traits[t].none, r.traits[t].coherence_pos, r.traits[t].coherence_neg, r.judge.spearman[t]])]);
    printTable([['capability', 'evil II Δ', 'evil I Δ', 'evil normal Δ', 'flaw II shift ratio', 'layer', 'total s'], [r.capability_accuracy, r.finetune.evil_II_delta, r.finetune.evil_I_delta, r.finetune.evil_normal_delta, r.finetune.flaw_II_shift_ratio, String((r.settings.layer as { chosen: number }).chosen), r.timings.total]]);
    process.stderr.write(`report written to ${path.resolve(argv.json)}\n`);
  },
};

interface CapabilityArgs {
  model: string; out: string; json?: string; 'batch-size': number; backend?: string;
}

const capabilityCommand: CommandModule<object, CapabilityArgs> = {
  command: 'capability',
  describe: 'Capability accuracy with no system prompt (world facts in held-out phrasings, held-out multiple choice), greedy',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Organism checkpoint directory' })
      .option('out', { type: 'string', default: 'runs/organism-capability', describe: 'Answers CSV goes here (one file per checkpoint)' })
      .option('json', { type: 'string', describe: 'Also write the accuracies as JSON here' })
      .option('batch-size', { type: 'number', default: 72 }) as never,
  handler: async (argv) => {
    await prepareBackend({ backend: argv.backend ?? process.env.PERSONA_BACKEND ?? 'wasm' });
    const model = await loadModel(argv.model);
    try {
      const csvFile = path.join(argv.out, `capability_${checkpointFingerprint(argv.model).slice(0, 12)}.csv`);
      const r = await measureCapability({ model, tokenizer: Tokenizer.load(argv.model), csvFile, batchSize: argv['batch-size'] });
      const count = (k: string) => r.items.filter((i) => i.kind === k).length;
      printTable([['items', 'n', 'accuracy'], ['facts (held-out phrasing)', count('fact'), r.byKind.fact], ['multiple choice (held-out)', count('mc'), r.byKind.mc], ['all', r.items.length, r.accuracy]]);
      if (argv.json) writeJson(argv.json, { model: argv.model, capability_accuracy: r.accuracy, by_kind: r.byKind, items: r.items.length, answers: csvFile });
      process.stderr.write(`answers in ${path.resolve(csvFile)}\n`);
    } finally {
      model.dispose();
    }
  },
};

export const organismCommand: CommandModule = {
  command: 'organism <command>',
  describe: 'The bundled model organism: acceptance report, capability accuracy',
  builder: (y) => y.command(reportCommand).command(capabilityCommand).demandCommand(1, 'Name an organism subcommand (report, capability).'),
  handler: () => undefined,
};
