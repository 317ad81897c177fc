/**
 * Study "shift" (paper Figs. 5–6): LoRA-finetune the organism on every dataset of the family (Normal / I / II
 * of the trait datasets evil, sycophantic, hallucinating and of the narrow flaws), score each finetuned model
 * for every measured trait (eval questions, no system prompt, organism judge), and measure its finetuning
 * shift: the mean last-prompt activation over the trait's eval prompts, finetuned − base, projected onto the
 * trait's unit persona vector at the monitor layer (chosen by monitoring quality, shared/monitor-data
 * organismMonitorLayer, not by steering quality). One cell = one finetuning dataset (kind, version).
 *
 * Summary per trait: shift.<trait>.r = Pearson r between the shift projections and the trait scores after
 * finetuning across all finetuning datasets, with its bootstrap CI and the random-direction null (the same
 * r for norm-matched random directions: null_mean_abs, null_p975).
 *
 * The finetune, the judged rollouts, the vectors and the monitor layer are cached (finetune.ts and
 * shared/cached.ts), so the mitigation and screening studies reuse them; the helpers below are exported for them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { PersonaError } from '../../errors';
import { writeFileAtomic } from '../../io/atomic';
import type { Intervention } from '../../model/interventions';
import type { LinearAdapter } from '../../model/transformer';
import { FINETUNE_KINDS, FINETUNE_VERSIONS, FinetuneKind, FinetuneVersion } from '../../organism/datasets';
import { FinetuneRun, OrganismFinetuneConfig, finetuneConfigFrom, loadFinetune, organismFinetune } from '../../organism/finetune';
import { TraitArtifacts } from '../../persona/artifacts';
import { RolloutJudges, renderItemPrompt } from '../../persona/rollouts';
import { correlateShifts, finetuningShift } from '../../persona/shift';
import { mean } from '../../persona/stats';
import type { PersonaVector } from '../../persona/vector';
import { Caption, FigureSpec, Row, captionLines, lineChart, scatterWithFit } from '../../plot';
import { CellResult, ValidateContext, registerStudy } from '../study';
import { FinetuneDataset, PAPER_VERSION_FILES, datasetFile, finetuneDatasetOf, readChatJsonl } from './shared/datasets';
import { cachedRollouts, cachedVector } from './shared/cached';
import { LoadedModel, StudyCell, StudyEnv, STUDY_PATH_FIELDS, TRAIT_NAME, cellArtifacts, cellJudges, judgedBy, loadModel, studyFields, validateCellInputs, checkJudge } from './shared/cell';
import { TableRow } from './shared/format';
import { finite, monitorLayer } from './shared/monitor-data';

/** The traits the paper measures after finetuning (its finetuning datasets target these three). */
export const SHIFT_TRAITS: string[] = ['evil', 'sycophantic', 'hallucinating'];

// ---------------------------------------------------------------------------------------------------
// Shared by shift, mitigation and screening
// ---------------------------------------------------------------------------------------------------

const { trait: _trait, ...fieldsWithoutTrait } = studyFields;
/** studyFields without `trait` (these studies measure several traits per cell). */
export const studyFieldsNoTrait = fieldsWithoutTrait;

/** Overrides of the organism's LoRA recipe (lib/organism/finetune.ts DEFAULT_FINETUNE); absent fields keep the recipe. */
export const finetuneOverrides = z
  .object({
    samples: z.number().int().min(1).optional().describe('Conversations in each finetuning dataset (recipe: 1000)'),
    learning_rate: z.number().positive().optional().describe('LoRA learning rate (recipe: 1e-3)'),
    epochs: z.number().int().min(1).optional().describe('Epochs (recipe: 1)'),
    r: z.number().int().min(1).optional().describe('LoRA rank (recipe: 16, rsLoRA)'),
    lora_alpha: z.number().positive().optional().describe('LoRA alpha (recipe: 32)'),
    per_device_train_batch_size: z.number().int().min(1).optional().describe('Micro-batch size (recipe: 16)'),
    gradient_accumulation_steps: z.number().int().min(1).optional().describe('Micro-batches per step (recipe: 1)'),
    max_seq_length: z.number().int().min(8).optional().describe('Tokens per training conversation, longer ones cut (recipe: 256; paper: 2048)'),
    seed: z.number().int().optional().describe('Training seed (recipe: 0)'),
    data_seed: z.number().int().optional().describe('Seed of the dataset generator (recipe: 0)'),
  })
  .strict();
export type FinetuneOverrides = z.infer<typeof finetuneOverrides>;

export function finetuneConfig(over: FinetuneOverrides | undefined): OrganismFinetuneConfig {
  const defined = Object.fromEntries(Object.entries(over ?? {}).filter(([, v]) => v !== undefined));
  return finetuneConfigFrom(defined);
}

/** Where organism finetunes live: beside the experiment cache, shared by every study. */
export function finetuneCacheDir(env: StudyEnv): string {
  return path.join(env.cache.root, 'organism-finetunes');
}

/** The LoRA finetune of the organism on (kind, version), trained once and cached (finetune.ts). */
export function cachedFinetune(env: StudyEnv, org: LoadedModel, kind: string, version: FinetuneVersion, cfg: OrganismFinetuneConfig, data?: FinetuneDataset): Promise<FinetuneRun> {
  return organismFinetune({ baseModel: org.dir, baseHash: org.fingerprint, kind, version, config: cfg, cacheDir: finetuneCacheDir(env), log: env.log, data });
}

/** Runs `f` with the finetune's adapters loaded on the organism, disposing them afterwards. */
export async function withFinetune<T>(org: LoadedModel, run: FinetuneRun, f: (adapters: ReadonlyMap<string, LinearAdapter>) => Promise<T>): Promise<T> {
  const lora = loadFinetune(run, org.model);
  try {
    return await f(lora.adapters());
  } finally {
    lora.dispose();
  }
}

export interface TraitEval {
  /** Mean trait score over all answers. */
  trait: number;
  coherence: number;
  /** Mean trait score per eval question (for paired bootstraps across variants). */
  per_question: number[];
  answers: number;
}

export interface EvalSettings {
  samples: number;
  maxNewTokens: number;
  temperature: number;
  batchSize: number;
  seed: string;
}

/**
 * Trait score and coherence of a model variant (base, finetuned, steered) on the trait's eval questions with
 * no system prompt, `samples` answers each; cached rollouts. Every variant uses the same sampler seeds.
 */
export async function evalTrait(
  env: StudyEnv,
  org: LoadedModel,
  trait: string,
  questions: readonly string[],
  s: EvalSettings,
  variant: { adapters?: ReadonlyMap<string, LinearAdapter>; adaptersKey?: string; interventions?: readonly Intervention[]; judges: RolloutJudges },
): Promise<TraitEval> {
  const items = questions.flatMap((question, i) => Array.from({ length: s.samples }, () => ({ question, questionId: `${trait}_${i}_none` })));
  const { rows } = await cachedRollouts(env, org, { trait, items, maxNewTokens: s.maxNewTokens, temperature: s.temperature, batchSize: s.batchSize, seed: `${s.seed}/after-finetune/${trait}`, ...variant });
  // A refused score (API judges may refuse; the organism judge never does) is left out, not counted as 0.
  const scored = (rs: typeof rows, f: 'score' | 'coherence') => rs.map((r) => r[f]).filter((v): v is number => v !== null && Number.isFinite(v));
  const all = scored(rows, 'score');
  if (!all.length) throw new PersonaError(`every ${trait} score was refused by the judge`, { field: 'judge' });
  const overall = mean(all);
  const per_question = questions.map((_, i) => {
    const q = scored(rows.slice(i * s.samples, (i + 1) * s.samples), 'score');
    return q.length ? mean(q) : overall;
  });
  const coh = scored(rows, 'coherence');
  return { trait: overall, coherence: coh.length ? mean(coh) : NaN, per_question, answers: rows.length };
}

export interface TraitContext {
  cell: StudyCell;
  artifacts: { extract: TraitArtifacts; eval: TraitArtifacts; dir: string };
  vector: PersonaVector;
  /** The cell's judges of this trait (organism judge, or the configured API judge). */
  judges: RolloutJudges;
  /** The trait's monitor layer (chosen by monitoring quality unless fixed). */
  layer: number;
  layerRule: string;
}

/** Vector and monitor layer of a trait (both cached; the same the monitoring study computes for the same settings). */
export function traitContext(env: StudyEnv & { resolvePath(p: string): string }, org: LoadedModel, base: Omit<StudyCell, 'trait'>, trait: string, seed: number, monitor: { samples: number; layer?: number }): Promise<TraitContext> {
  const cell = { ...base, trait } as StudyCell;
  // Every cell of a run asks for the same few contexts: computed once per process (the parts are cached on disk anyway).
  const memo = {
    dir: org.dir,
    trait,
    artifacts: cell.artifacts ?? null,
    judge: cell.judge,
    extract: [cell.extract_samples, cell.extract_method, cell.extract_threshold, cell.extract_coherence_min],
    gen: [cell.temperature, cell.max_new_tokens, cell.batch_size],
    seed,
    monitor,
  };
  return env.shared(`trait-context:${JSON.stringify(memo)}`, async () => {
    const artifacts = cellArtifacts(cell, env.resolvePath);
    const judges = cellJudges(env, cell, artifacts.eval, env.resolvePath);
    const v = await cachedVector(env, org, cell, artifacts.extract, seed, judges);
    const { choice } = await monitorLayer(env, org, cell, artifacts, v.vector, seed, { ...monitor, judges });
    return { cell, artifacts, vector: v.vector, judges, layer: choice.layer, layerRule: choice.rule };
  });
}

/** The `traits` values of a config (defaults applied). */
export function configTraits(product: readonly { traits?: string[] }[]): string[] {
  return [...new Set(product.flatMap((p) => p.traits ?? SHIFT_TRAITS))];
}

export const datasetName = (kind: string, version: string) => `${kind}_${version}`;

/** The finetuning data of a cell: the paper-layout file under `datasets`, or undefined for the organism's generated dataset. */
export function cellFinetuneData(cell: { datasets?: string; kind: string; version: FinetuneVersion; finetune?: FinetuneOverrides }, resolvePath: (p: string) => string): FinetuneDataset | undefined {
  if (cell.datasets === undefined) return undefined;
  return finetuneDatasetOf({ datasets: resolvePath(cell.datasets), kind: cell.kind, version: cell.version }, { samples: cell.finetune?.samples, dataSeed: 0 });
}

/**
 * Checks every finetuning dataset of a config before any model is loaded: an organism kind when no `datasets`
 * directory is given, else the paper-layout file, every line {"messages": [...]} (an error names the line).
 */
export function validateDatasets(product: readonly { datasets?: string; kind: string; version: FinetuneVersion }[], ctx: ValidateContext): void {
  const seen = new Set<string>();
  for (const c of product) {
    const k = JSON.stringify([c.datasets ?? null, c.kind, c.version]);
    if (seen.has(k)) continue;
    seen.add(k);
    const kindKey = ctx.valuesOf('kind').find((v) => v.value === c.kind)?.keyPath ?? ctx.keyOf('kind');
    if (c.datasets === undefined) {
      if (!FINETUNE_KINDS.includes(c.kind as FinetuneKind))
        ctx.fail(kindKey, `'${c.kind}' is not one of the organism's generated datasets (${FINETUNE_KINDS.join(', ')}); for the paper's datasets set datasets: <its dataset/ directory> (files <kind>/normal.jsonl, misaligned_1.jsonl, misaligned_2.jsonl)`);
      continue;
    }
    const file = datasetFile(ctx.resolvePath(c.datasets), c.kind, c.version);
    if (!fs.existsSync(file)) ctx.fail(kindKey, `dataset file not found: ${file} (the paper's layout: <datasets>/<kind>/${Object.values(PAPER_VERSION_FILES).join(' | ')})`);
    readChatJsonl(file); // every line a conversation; an error names the file and line
  }
}

// ---------------------------------------------------------------------------------------------------
// The study
// ---------------------------------------------------------------------------------------------------

/** Fields of every study that finetunes on one organism dataset and measures along trait vectors (shift, screening). */
export const finetuneDatasetFields = {
  datasets: z.string().optional().describe("The paper's dataset/ directory (<kind>/normal.jsonl, misaligned_1.jsonl, misaligned_2.jsonl of {\"messages\": [...]}), relative to the config file; default: the organism's generated datasets"),
  kind: z.string().default('evil').describe(`Finetuning dataset family: a directory of \`datasets\` (e.g. evil, sycophancy, hallucination, mistake_medical), or without it one of the organism's: ${FINETUNE_KINDS.join(' | ')} (lib/organism/datasets.ts)`),
  version: z.enum(FINETUNE_VERSIONS as unknown as [FinetuneVersion, ...FinetuneVersion[]]).default('II').describe('Dataset version: normal | I (mild; the paper\'s misaligned_1.jsonl) | II (severe; misaligned_2.jsonl)'),
  samples: z.number().int().min(1).default(4).describe('Answers per eval question when scoring a finetuned model'),
  layer: z.number().int().min(1).optional().describe('Layer of the projection; default: the monitor layer chosen by monitoring quality (shared/monitor-data)'),
  layer_samples: z.number().int().min(1).default(4).describe('Answers per (graded system prompt, question) used to choose the monitor layer (as the monitoring study)'),
  finetune: finetuneOverrides.default({}).describe('Overrides of the organism LoRA recipe (lib/organism/finetune.ts)'),
  null_directions: z.number().int().min(20).default(20).describe('Norm-matched random directions in each null'),
  bootstrap_reps: z.number().int().min(10).default(1000).describe('Bootstrap resamples of each CI'),
};

export const shiftSchema = z
  .object({
    ...studyFieldsNoTrait,
    ...finetuneDatasetFields,
    traits: z.array(TRAIT_NAME).min(1).default(SHIFT_TRAITS).describe('Traits scored after finetuning and whose vectors measure the shift'),
  })
  .strict();

export type ShiftCell = z.infer<typeof shiftSchema>;

export interface ShiftTraitResult {
  layer: number;
  layer_rule: string;
  score: number;
  coherence: number;
  base_score: number;
  base_coherence: number;
  /** (finetuned − base mean last-prompt activation) · v̂ at the layer. */
  projection: number;
  diff_norm: number;
  null_p975: number;
  beats_null: boolean;
  /** Identity of the judge that scored the trait. */
  judged_by?: string;
}

export interface ShiftResult extends Record<string, unknown> {
  dataset: string;
  finetune_key: string;
  steps: number;
  final_loss: number | null;
  traits: Record<string, ShiftTraitResult>;
}

/** Per cell: the shift vectors at the layer (the null of r needs them) and the vector's direction there. */
const DIFFS_FILE = 'shift_diffs.json';
interface DiffFile {
  [trait: string]: { layer: number; diff: number[]; direction: number[] };
}

registerStudy<ShiftCell, ShiftResult>('shift', {
  description: 'Finetuning shift along the persona vector vs trait score after finetuning, over every finetuning dataset (paper Figs. 5–6)',
  schema: shiftSchema,
  pathFields: [...STUDY_PATH_FIELDS, 'datasets'],
  validate(config, ctx) {
    validateDatasets(config.product, ctx);
    const traits = configTraits(config.product);
    // The monitor layer (unless fixed) is chosen under the graded system prompts.
    validateCellInputs(ctx, { layerFields: ['layer'], traits, needs: config.product.some((c) => c.layer === undefined) ? ['graded_system_prompts'] : [] });
  },
  async runCell(cell, ctx) {
    await checkJudge(ctx, cell.judge); // a judge without logprobs stops the run before any model is loaded
    const org = await loadModel(ctx, ctx.resolvePath(cell.model));
    const seed = ctx.config.seed;
    const run = await cachedFinetune(ctx, org, cell.kind, cell.version, finetuneConfig(cell.finetune), cellFinetuneData(cell, ctx.resolvePath));
    const evalS: EvalSettings = { samples: cell.samples, maxNewTokens: cell.max_new_tokens, temperature: cell.temperature, batchSize: cell.batch_size, seed: String(seed) };
    const traits: Record<string, ShiftTraitResult> = {};
    const diffs: DiffFile = {};
    for (const t of cell.traits) {
      const tc = await traitContext(ctx, org, cell, t, seed, { samples: cell.layer_samples, layer: cell.layer });
      const questions = tc.artifacts.eval.questions;
      const base = await evalTrait(ctx, org, t, questions, evalS, { judges: tc.judges });
      const prompts = questions.map((q) => org.tokenizer.encode(renderItemPrompt(org.tokenizer, { question: q, questionId: '' })));
      const { after, sh } = await withFinetune(org, run, async (adapters) => ({
        after: await evalTrait(ctx, org, t, questions, evalS, { adapters, adaptersKey: run.key, judges: tc.judges }),
        sh: await finetuningShift({ base: { model: org.model }, finetuned: { model: org.model, adapters }, prompts, vector: tc.vector, layer: tc.layer, batchSize: cell.batch_size, seed: `${seed}/shift/${t}`, nullCount: cell.null_directions }),
      }));
      traits[t] = {
        layer: tc.layer,
        layer_rule: tc.layerRule,
        score: after.trait,
        coherence: after.coherence,
        base_score: base.trait,
        base_coherence: base.coherence,
        projection: sh.projection,
        diff_norm: sh.diffNorm,
        null_p975: sh.null.p975,
        beats_null: sh.beatsNull,
        judged_by: judgedBy(tc.judges),
      };
      diffs[t] = { layer: tc.layer, diff: Array.from(sh.diff), direction: Array.from(tc.vector.layer(tc.layer)) };
    }
    writeFileAtomic(path.join(ctx.dir, DIFFS_FILE), JSON.stringify(diffs) + '\n');
    return { dataset: datasetName(cell.kind, cell.version), finetune_key: run.key, steps: run.steps, final_loss: run.finalLoss, traits };
  },
  summarize(results, ctx) {
    const traits = [...new Set(results.flatMap((r) => Object.keys(r.result.traits)))];
    const summary: Record<string, unknown> = {};
    const figures: FigureSpec[] = [];
    const reps = results[0]?.settings.bootstrap_reps ?? 1000;
    const nullCount = results[0]?.settings.null_directions ?? 20;
    for (const t of traits) {
      const mine = results.filter((r) => r.result.traits[t]);
      const files = mine.map((r) => JSON.parse(fs.readFileSync(path.join(ctx.runDir, 'cells', r.id, DIFFS_FILE), 'utf8')) as DiffFile);
      const layer = files[0][t].layer;
      const items = mine.map((r, i) => ({ diff: Float32Array.from(files[i][t].diff), traitScore: r.result.traits[t].score }));
      const direction = Float32Array.from(files[0][t].direction);
      const rows: Row[] = mine.map((r) => ({
        dataset: r.result.dataset,
        kind: r.settings.kind,
        version: r.settings.version,
        trait: t,
        shift_projection: r.result.traits[t].projection,
        trait_score: r.result.traits[t].score,
        coherence: r.result.traits[t].coherence,
        base_score: r.result.traits[t].base_score,
      }));
      let corr: ReturnType<typeof correlateShifts> | null = null;
      try {
        corr = correlateShifts(items, direction, { seed: `${ctx.config.seed}/shift/${t}`, nullCount, bootstrapReps: reps });
      } catch (e) {
        if (!(e instanceof PersonaError)) throw e;
        corr = null; // fewer than 3 datasets, or a bootstrap with mostly undefined resamples: r is reported alone
      }
      const r = corr ? finite(corr.r) : null;
      summary[t] = {
        r,
        r_ci: corr && Number.isFinite(corr.ci95.lo) ? corr.ci95 : null,
        null_mean_abs: corr ? finite(corr.null.meanAbs) : null,
        null_p975: corr ? finite(corr.null.p975) : null,
        null_directions: nullCount,
        beats_null: corr?.beatsNull ?? false,
        n: mine.length,
        layer,
        layer_rule: mine[0].result.traits[t].layer_rule,
        base_score: mine[0].result.traits[t].base_score,
        threshold: 0.75,
        pass: r !== null && r >= 0.75,
        by_dataset: Object.fromEntries(rows.map((row) => [row.dataset as string, { shift_projection: row.shift_projection, trait_score: row.trait_score, coherence: row.coherence }])),
      };
      const caption = {
        statistic: 'r (across finetuning datasets)',
        value: r ?? NaN,
        ...(corr && Number.isFinite(corr.ci95.lo) ? { ci: { ...corr.ci95, level: 0.95, reps } } : {}),
        ...(corr && Number.isFinite(corr.null.p975) ? { null: { meanAbs: corr.null.meanAbs, p975: corr.null.p975, count: nullCount } } : {}),
      };
      const notes = [`n = ${mine.length} finetunes; base model ${t} score ${mineBase(mine, t)}`, `shift = finetuned − base mean last-prompt activation on the ${t} eval prompts,`, `projected on the unit ${t} vector at layer ${layer} (the monitor layer)`];
      if (rows.length >= 2) {
        const scatter = scatterWithFit(rows, {
            title: `${t}: finetuning shift vs ${t} score after finetuning (Fig. 6)`,
            x: 'shift_projection',
            y: 'trait_score',
            color: 'kind',
            xTitle: `shift along the ${t} vector (layer ${layer})`,
            yTitle: `${t} score after finetuning`,
            colorTitle: 'dataset',
            caption: captionWith(caption, notes),
          });
        scatter.layer[0].encoding.shape = { field: 'version', type: 'nominal', title: 'version', sort: [...FINETUNE_VERSIONS] };
        figures.push({ name: `shift_vs_trait_${t}`, rows, spec: scatter });
      }
      const line = lineChart(rows, {
        title: `${t} score after finetuning on each dataset (Fig. 5)`,
        x: 'version',
        xType: 'ordinal',
        y: 'trait_score',
        series: 'kind',
        xTitle: 'dataset version (normal → I → II)',
        yTitle: `${t} score`,
        seriesTitle: 'dataset',
        caption: captionWith(caption, notes),
      });
      // Versions in dataset order, not alphabetical.
      for (const l of line.layer) l.encoding.x = { ...l.encoding.x, sort: [...FINETUNE_VERSIONS], axis: { labelAngle: 0 } };
      figures.push({ name: `trait_after_finetuning_${t}`, rows, spec: line });
    }
    return { summary: { shift: summary }, figures };
  },
});

/** Caption lines of a statistic (value, CI, null) followed by short note lines (one long line would widen the figure). */
export function captionWith(c: Caption, notes: string[]): string[] {
  return [...captionLines({ ...c, note: undefined }), ...notes];
}

function mineBase(mine: CellResult<ShiftCell, ShiftResult>[], t: string): string {
  const b = mine[0]?.result.traits[t]?.base_score;
  return b === undefined ? 'n/a' : String(Math.round(b * 10) / 10);
}

/** One row per trait of `summary.shift`, for printing with formatTable. */
export function shiftTable(shift: Record<string, { r: number | null; r_ci: { lo: number; hi: number } | null; null_p975: number | null; n: number; layer: number; base_score: number; pass: boolean }>): TableRow[] {
  return Object.entries(shift).map(([trait, s]) => ({
    trait,
    layer: s.layer,
    datasets: s.n,
    'base score': s.base_score,
    r: s.r,
    '95% CI': s.r_ci ? `[${s.r_ci.lo.toFixed(2)}, ${s.r_ci.hi.toFixed(2)}]` : null,
    'null p97.5': s.null_p975,
    'r ≥ 0.75': s.pass,
  }));
}
