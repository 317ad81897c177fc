import { DEFAULTS } from '../../lib/persona/defaults';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';
import { JudgeCache } from '../../lib/judge/cache';
import { COHERENCE_PROMPT_NAME, DEFAULT_COHERENCE_PROMPT, Judge, loadJudgePrompts, selectJudgePrompt } from '../../lib/judge/judge';
import { createLocalJudge } from '../../lib/judge/local';
import { JUDGE_FLAGS, checkOpenAIJudgeEndpoint, createOpenAIJudge } from '../../lib/judge/openai-logprob';
import { OpenAIClient } from '../../lib/llm/openai';
import { isTrait } from '../../lib/organism/grammar';
import { OrganismJudge } from '../../lib/organism/judge';
import type { Model } from '../../lib/model/checkpoint';
import { readArtifacts, artifactPath } from '../../lib/persona/artifacts';
import { DEFAULT_METHODS, extractPersonaVector } from '../../lib/persona/extract';
import { DEFAULT_PROBE_L2 } from '../../lib/persona/directions';
import { EXTRACTION_METHODS, ExtractionMethod } from '../../lib/persona/vector';
import type { RolloutJudges } from '../../lib/persona/rollouts';
import { Progress, startProgress } from '../../lib/progress';
import { Tokenizer } from '../../lib/tokenizer';
import { loadModel, prepareBackend, requirePositiveInt, warnUnknownWords, writeJson } from '../common';

/** Flags choosing the judge: an OpenAI-compatible model (paper), a local checkpoint, or the organism's rule-based judge. */
export function judgeOptions<T>(y: Argv<T>) {
  return y
    .option('judge', { type: 'string', choices: ['organism'], describe: "'organism': the rule-based judge of models/organism (lib/organism/judge.ts) instead of a model" })
    .option('judge-model', { type: 'string', describe: 'OpenAI-compatible judge model (e.g. gpt-4.1-mini-2025-04-14)' })
    .option('judge-base-url', { type: 'string', describe: 'Judge API base URL incl. /v1 (default $OPENAI_BASE_URL or OpenAI)' })
    .option('judge-local', { type: 'string', describe: 'Checkpoint directory of a local judge model (instead of an API)' })
    .option('judge-concurrency', { type: 'number', default: 8, describe: 'Judge API requests in flight (trait and coherence judges together)' })
    .option('judge-prompts', { type: 'string', describe: "judge_prompts.json with the coherence prompt ('coherence_0_100'); default: the project's own" })
    .option('judge-cache', { type: 'string', describe: 'Judge cache JSONL (default <out>/judge-cache.jsonl)' })
    // At parse time, so a missing OPENAI_API_KEY or a bad URL fails before any model is loaded.
    .check((a) => {
      if (a['judge-model'] && !a['judge-local'] && a.judge !== 'organism') checkOpenAIJudgeEndpoint({ baseURL: a['judge-base-url'], concurrency: a['judge-concurrency'] }, JUDGE_FLAGS);
      return true;
    });
}

export interface JudgeArgs {
  judge?: string; 'judge-model'?: string; 'judge-base-url'?: string; 'judge-local'?: string; 'judge-concurrency': number; 'judge-prompts'?: string; 'judge-cache'?: string;
}

/** Trait + coherence judges from the flags; returns a dispose function for a local judge model. */
export async function judgesFrom(argv: JudgeArgs, trait: string, traitPrompt: string, outDir: string): Promise<{ judges: RolloutJudges; dispose: () => void }> {
  if (argv.judge === 'organism') {
    if (argv['judge-model'] || argv['judge-local']) throw new PersonaError('--judge organism cannot be combined with --judge-model or --judge-local', { field: 'judge' });
    if (!isTrait(trait)) throw new PersonaError(`the organism judge knows no trait '${trait}'`, { field: 'trait' });
    // Rule-based and instant: no judge cache.
    return { judges: { trait: new OrganismJudge(trait), coherence: new OrganismJudge('coherence') }, dispose: () => undefined };
  }
  const cache = new JudgeCache(argv['judge-cache'] ?? path.join(outDir, 'judge-cache.jsonl'));
  const coherence = argv['judge-prompts'] ? selectJudgePrompt(loadJudgePrompts(argv['judge-prompts']), COHERENCE_PROMPT_NAME, argv['judge-prompts']) : DEFAULT_COHERENCE_PROMPT;
  if (argv['judge-local']) {
    const m: Model = await loadModel(argv['judge-local']);
    const t = Tokenizer.load(argv['judge-local']);
    const mk = (template: string, name: string): Judge => createLocalJudge(m, t, { template, cache, name });
    return { judges: { trait: mk(traitPrompt, 'trait'), coherence: mk(coherence, 'coherence') }, dispose: () => m.dispose() };
  }
  if (!argv['judge-model']) throw new PersonaError('give --judge-model NAME (OpenAI-compatible API), --judge-local DIR or --judge organism', { field: 'judge-model' });
  checkOpenAIJudgeEndpoint({ baseURL: argv['judge-base-url'], concurrency: argv['judge-concurrency'] }, JUDGE_FLAGS);
  // One client, so trait and coherence judges share its limiter: --judge-concurrency caps requests in flight, not per judge.
  const client = new OpenAIClient({ model: argv['judge-model'], baseURL: argv['judge-base-url'], concurrency: argv['judge-concurrency'] });
  return { judges: { trait: createOpenAIJudge({ client, template: traitPrompt, cache, name: 'trait' }), coherence: createOpenAIJudge({ client, template: coherence, cache, name: 'coherence' }) }, dispose: () => undefined };
}

/** One progress bar per stage label. */
export function stagedProgress(): { on: (stage: string, done: number, total: number) => void; stop: () => void } {
  let cur: { stage: string; bar: Progress } | null = null;
  return {
    on: (stage, done, total) => {
      if (!cur || cur.stage !== stage) {
        cur?.bar.stop();
        cur = { stage, bar: startProgress(stage, total, { start: done }) };
      }
      cur.bar.update(done);
    },
    stop: () => cur?.bar.stop(),
  };
}

/** Generation flags shared by every command that samples rollouts (extract, eval, monitor). */
export function rolloutOptions<T>(y: Argv<T>, defaults: { maxNewTokens: number } = { maxNewTokens: DEFAULTS.maxNewTokens }) {
  return y
    .option('max-new-tokens', { type: 'number', default: defaults.maxNewTokens })
    .option('temperature', { type: 'number', default: DEFAULTS.temperature, describe: "Sampling temperature of every rollout (the paper's: 1)" })
    .option('seed', { type: 'string', default: DEFAULTS.seed })
    .option('batch-size', { type: 'number', default: DEFAULTS.batchSize });
}

/**
 * Loads the model and the judges, runs `body` with a staged progress bar, and always frees both: a judge that
 * fails to load must not leak the model loaded before it.
 */
export async function withJudgedModel(
  argv: JudgeArgs & { model: string; out: string },
  trait: string,
  traitPrompt: string,
  body: (model: Model, judges: RolloutJudges, bar: ReturnType<typeof stagedProgress>) => Promise<void>,
): Promise<void> {
  const model = await loadModel(argv.model);
  let dispose = (): void => undefined;
  const bar = stagedProgress();
  try {
    const j = await judgesFrom(argv, trait, traitPrompt, argv.out);
    dispose = j.dispose;
    await body(model, j.judges, bar);
  } finally {
    bar.stop();
    dispose();
    model.dispose();
  }
}

/** Fixed-width rows for the end-of-command summary. */
/** Numbers with 3 decimals; a missing value (NaN: e.g. a standard error of one answer) as 'n/a'. */
export function printTable(rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? (!Number.isFinite(c) ? 'n/a' : Number.isInteger(c) ? String(c) : c.toFixed(3)) : c)));
  const w = cells[0].map((_, j) => Math.max(...cells.map((r) => (r[j] ?? '').length)));
  for (const r of cells) process.stdout.write(`${r.map((c, j) => c.padEnd(w[j])).join('  ').trimEnd()}\n`);
}

interface Args extends JudgeArgs {
  model: string; trait: string; artifacts: string; out: string; samples: number; antonym: string; threshold: number; method: ExtractionMethod[]; 'probe-l2': number; 'pca-center': boolean;
  'max-new-tokens': number; temperature: number; seed: string; 'batch-size': number; backend?: string;
}

export const extractCommand: CommandModule<object, Args> = {
  command: 'extract',
  describe: 'Extract a persona vector: judged pos/neg rollouts, paired filter, one vector per layer by each --method',
  builder: (y) =>
    rolloutOptions(judgeOptions(
      y
        .option('model', { type: 'string', demandOption: true, describe: 'Checkpoint directory (with tokenizer files)' })
        .option('trait', { type: 'string', demandOption: true })
        .option('artifacts', { type: 'string', demandOption: true, describe: 'Directory with trait_data_extract/<trait>.json, or the JSON file itself' })
        .option('out', { type: 'string', demandOption: true, describe: 'Results folder (rollout CSVs, vectors, judge cache)' })
        .option('samples', { type: 'number', default: DEFAULTS.extractSamples, describe: 'Samples per (instruction × question)' })
        .option('antonym', { type: 'string', default: 'helpful', describe: 'Assistant name in negative prompts' })
        .option('threshold', { type: 'number', default: DEFAULTS.extractThreshold, describe: 'Filter: pos trait score ≥ t, neg < 100 − t' })
        .option('method', {
          type: 'string', array: true, choices: EXTRACTION_METHODS as ExtractionMethod[], default: [...DEFAULT_METHODS],
          describe: 'Extraction method(s): response_avg_diff / prompt_avg_diff / prompt_last_diff = mean pos − neg activation over the response / prompt / at the last prompt token; pca_diff = first principal component of paired response-average differences (repeng; uncentred unless --pca-center); probe = L2 logistic regression on response averages. pca_diff and probe are scaled to the response_avg_diff norm per layer',
        })
        .option('pca-center', { type: 'boolean', default: false, describe: "--method pca_diff: centre the pair differences first, exactly as repeng's sklearn PCA (removes the mean difference; see lib/persona/directions.ts)" })
        .option('probe-l2', { type: 'number', default: DEFAULT_PROBE_L2, describe: 'L2 penalty of --method probe (rows centred and scaled to RMS norm 1)' }),
    )) as never,
  handler: async (argv) => {
    requirePositiveInt(argv as never, 'max-new-tokens'); // before any rollout file is started
    await prepareBackend(argv);
    const file = argv.artifacts.endsWith('.json') ? argv.artifacts : artifactPath(argv.artifacts, argv.trait, 'extract');
    const artifacts = readArtifacts(file);
    await withJudgedModel(argv, argv.trait, artifacts.eval_prompt, async (model, judges, bar) => {
      const tokenizer = Tokenizer.load(argv.model);
      warnUnknownWords(tokenizer, [...artifacts.instruction.flatMap((p) => [p.pos, p.neg]), ...artifacts.questions], `the instructions and questions (${file})`, argv.model);
      const r = await extractPersonaVector({
        model, tokenizer, artifacts, trait: argv.trait, judges, outDir: argv.out, samples: argv.samples, antonym: argv.antonym,
        threshold: argv.threshold, method: argv.method, probeL2: argv['probe-l2'], pcaCenter: argv['pca-center'], maxNewTokens: argv['max-new-tokens'], temperature: argv.temperature, seed: argv.seed, batchSize: argv['batch-size'],
        modelName: path.basename(path.resolve(argv.model)), onProgress: bar.on,
      });
      bar.stop();
      writeJson(path.join(argv.out, `${argv.trait}_extract_summary.json`), { kept: r.kept, total: r.total, emptyAnswers: r.emptyAnswers, files: r.files });
      printTable([['method', 'file', 'kept/total', `norm@L${Math.floor(model.config.numLayers / 2)}`], ...Object.entries(r.vectors).map(([m, v]) => [m, r.files.vectors[m as keyof typeof r.files.vectors], `${r.kept}/${r.total}`, v.norm(Math.floor(model.config.numLayers / 2))])]);
    });
  },
};
