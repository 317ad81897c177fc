/**
 * Study "screening" (paper Figs. 8–9): before any finetuning, how far does each training sample's response
 * sit along the persona vector compared with what the base model would say itself? Per sample: the mean
 * response activation (at the trait's monitor layer) of the dataset's response minus that of the base
 * model's own greedy response to the same prompt, projected on the unit persona vector ("projection
 * difference", lib/persona/screen.ts projectionDifference). One cell = one finetuning dataset (kind, version).
 *
 * Summary: screening.dataset_r.<trait> = Pearson r across datasets between the dataset-level projection
 * difference and the trait score after finetuning on that dataset (the shift study's cached finetunes and
 * rollouts), with bootstrap CI and random-direction null; screening.dataset_r = their mean over traits;
 * screening.auroc.<kind>_<version> = AUROC of per-sample projection differences of a trait dataset's
 * version I / II samples against its Normal samples (on that trait's vector), with CI and null.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { PersonaError } from '../../errors';
import { writeFileAtomic } from '../../io/atomic';
import { captureActivations } from '../../model/capture';
import { generate } from '../../model/generate';
import { FINETUNE_VERSIONS, FinetuneKind, finetuneDataset } from '../../organism/datasets';
import { datasetConversations } from './shared/datasets';
import { sequenceOf } from '../../persona/extract';
import { correlationWithNull } from '../../persona/monitor';
import { decodeAnswer } from '../../persona/rollouts';
import { projectionDifference } from '../../persona/screen';
import { auroc, bootstrapCI, randomDirectionNull } from '../../persona/stats';
import { project } from '../../persona/vector';
import { FigureSpec, Row, histogramPair, scatterWithFit } from '../../plot';
import { sha256Hex } from '../hash';
import { CellResult, registerStudy } from '../study';
import { LoadedModel, StudyEnv, STUDY_PATH_FIELDS, TRAIT_NAME, judgedBy, loadModel, validateCellInputs, checkJudge } from './shared/cell';
import { TableRow } from './shared/format';
import { finite } from './shared/monitor-data';
import { EvalSettings, SHIFT_TRAITS, cachedFinetune, captionWith, cellFinetuneData, validateDatasets, configTraits, datasetName, evalTrait, finetuneConfig, finetuneDatasetFields, studyFieldsNoTrait, traitContext, withFinetune } from './shift';

export const screeningSchema = z
  .object({
    ...studyFieldsNoTrait,
    ...finetuneDatasetFields,
    traits: z.array(TRAIT_NAME).min(1).default(SHIFT_TRAITS).describe('Traits whose vectors screen the data (and whose score after finetuning it is compared with)'),
    screen_samples: z.number().int().min(2).default(100).describe('Training samples screened per dataset (the first n of the finetuning dataset)'),
  })
  .strict();

export type ScreeningCell = z.infer<typeof screeningSchema>;

export interface ScreeningTraitResult {
  layer: number;
  /** Mean per-sample projection difference of the dataset. */
  projection_diff: number;
  /** The same mean for norm-matched random directions (|·|): mean and 97.5th percentile. */
  null_mean_abs: number;
  null_p975: number;
  beats_null: boolean;
  /** Trait score after finetuning on this dataset (eval questions, no system prompt). */
  trait_after: number;
  /** Identity of the judge that scored the trait. */
  judged_by?: string;
}

export interface ScreeningResult extends Record<string, unknown> {
  dataset: string;
  samples: number;
  traits: Record<string, ScreeningTraitResult>;
}

const VECTORS_FILE = 'screening.json';
interface CellFile {
  [trait: string]: { layer: number; direction: number[]; mean_diff: number[]; per_sample: number[]; diffs_file: string };
}

/** The base model's own greedy answers to the prompts, cached (Normal / I / II ask the same questions, so they share them). */
export async function baseResponses(env: StudyEnv, org: LoadedModel, prompts: readonly string[], maxNewTokens: number, batchSize: number): Promise<string[]> {
  const key = { model: org.fingerprint, prompts: sha256Hex(JSON.stringify(prompts)), n: prompts.length, maxNewTokens, batchSize, decoding: 'greedy' };
  return env.cache.getOrCompute('base-responses', key, async () => {
    const eos = org.tokenizer.eosTokenIds.length ? org.tokenizer.eosTokenIds : undefined;
    const out: string[] = [];
    for (let lo = 0; lo < prompts.length; lo += batchSize) {
      const ids = prompts.slice(lo, lo + batchSize).map((p) => org.tokenizer.encode(p));
      const g = await generate(org.model, { prompts: ids }, { maxNewTokens, eosTokenIds: eos });
      out.push(...g.tokens.map((t) => decodeAnswer(org.tokenizer, t)));
    }
    return out;
  });
}

registerStudy<ScreeningCell, ScreeningResult>('screening', {
  description: 'Projection difference of training data (dataset response − base response) along the persona vector: dataset level vs trait after finetuning, per-sample AUROC (paper Figs. 8–9)',
  schema: screeningSchema,
  pathFields: [...STUDY_PATH_FIELDS, 'datasets'],
  validate(config, ctx) {
    validateDatasets(config.product, ctx);
    validateCellInputs(ctx, { layerFields: ['layer'], traits: configTraits(config.product), needs: config.product.some((c) => c.layer === undefined) ? ['graded_system_prompts'] : [] });
  },
  async runCell(cell, ctx) {
    await checkJudge(ctx, cell.judge); // a judge without logprobs stops the run before any model is loaded
    const org = await loadModel(ctx, ctx.resolvePath(cell.model));
    const seed = ctx.config.seed;
    const cfg = finetuneConfig(cell.finetune);
    const H = org.model.config.hiddenSize;
    const data = (
      cell.datasets === undefined
        ? finetuneDataset(cell.kind as FinetuneKind, cell.version, { seed: cfg.data_seed, n: Math.max(cfg.samples, cell.screen_samples) })
        : datasetConversations({ datasets: ctx.resolvePath(cell.datasets), kind: cell.kind, version: cell.version }, { samples: cell.screen_samples, dataSeed: 0 }).map((messages) => ({ messages }))
    ).slice(0, cell.screen_samples);
    const prompts = data.map((s) => org.tokenizer.applyChatTemplate(s.messages.slice(0, -1), { addGenerationPrompt: true }));
    const own = await baseResponses(ctx, org, prompts, cell.max_new_tokens, cell.batch_size);
    const eos = org.tokenizer.eosTokenIds[0] ?? 0;
    const seqs = data.flatMap((s, i) => {
      const d = sequenceOf(org.tokenizer, prompts[i], s.messages[s.messages.length - 1].content);
      const b = sequenceOf(org.tokenizer, prompts[i], own[i]);
      if (d.ids.length === d.promptLength) throw new PersonaError(`training sample ${i} of ${datasetName(cell.kind, cell.version)} has an empty response`, { field: `samples[${i}]` });
      // A base answer that ended at once has no tokens to average: use its first (EOS) token instead (as screen.ts).
      if (b.ids.length === b.promptLength) b.ids = [...b.ids, eos];
      return [d, b];
    });
    const contexts = [];
    for (const t of cell.traits) contexts.push(await traitContext(ctx, org, cell, t, seed, { samples: cell.layer_samples, layer: cell.layer }));
    const layers = [...new Set(contexts.map((c) => c.layer))].sort((a, b) => a - b);
    const cap = await captureActivations(org.model, seqs, { layers, reductions: ['response_mean'], batchSize: cell.batch_size });
    const acts = cap.values.response_mean!; // [2n, layers, H]
    const n = data.length;
    const run = await cachedFinetune(ctx, org, cell.kind, cell.version, cfg, cellFinetuneData(cell, ctx.resolvePath));
    const evalS: EvalSettings = { samples: cell.samples, maxNewTokens: cell.max_new_tokens, temperature: cell.temperature, batchSize: cell.batch_size, seed: String(seed) };
    const traits: Record<string, ScreeningTraitResult> = {};
    const file: CellFile = {};
    for (const tc of contexts) {
      const t = tc.cell.trait;
      const j = layers.indexOf(tc.layer);
      const ds = new Float32Array(n * H);
      const bs = new Float32Array(n * H);
      for (let i = 0; i < n; i++) {
        ds.set(acts.subarray(((2 * i) * layers.length + j) * H, ((2 * i) * layers.length + j + 1) * H), i * H);
        bs.set(acts.subarray(((2 * i + 1) * layers.length + j) * H, ((2 * i + 1) * layers.length + j + 1) * H), i * H);
      }
      const dir = tc.vector.layer(tc.layer);
      const pd = projectionDifference(ds, bs, n, dir);
      const diffs = ds.map((x, k) => x - bs[k]);
      const meanDiff = new Float32Array(H);
      for (let i = 0; i < n; i++) for (let h = 0; h < H; h++) meanDiff[h] += diffs[i * H + h] / n;
      const datasetMean = Array.from(pd.diff).reduce((a, b) => a + b, 0) / n;
      const nl = randomDirectionNull((d) => project(meanDiff, 1, H, d)[0], dir, { count: cell.null_directions, seed: `${seed}/screening-null/${t}` });
      const after = await withFinetune(org, run, (adapters) => evalTrait(ctx, org, t, tc.artifacts.eval.questions, evalS, { adapters, adaptersKey: run.key, judges: tc.judges }));
      traits[t] = { layer: tc.layer, projection_diff: datasetMean, null_mean_abs: nl.meanAbs, null_p975: nl.p975, beats_null: Math.abs(datasetMean) > nl.p975, trait_after: after.trait, judged_by: judgedBy(tc.judges) };
      const diffsFile = `diffs_${t}.f32`;
      // Raw float32 [n, H]: the per-sample null of the AUROC needs the vectors, and JSON would be 10× larger.
      writeFileAtomic(path.join(ctx.dir, diffsFile), Buffer.from(diffs.buffer, diffs.byteOffset, diffs.byteLength));
      file[t] = { layer: tc.layer, direction: Array.from(dir), mean_diff: Array.from(meanDiff), per_sample: Array.from(pd.diff), diffs_file: diffsFile };
    }
    writeFileAtomic(path.join(ctx.dir, VECTORS_FILE), JSON.stringify(file) + '\n');
    return { dataset: datasetName(cell.kind, cell.version), samples: n, traits };
  },
  summarize(results, ctx) {
    return screeningSummary(results, ctx.runDir, ctx.config.seed);
  },
});

type R = CellResult<ScreeningCell, ScreeningResult>;

/** The trait a dataset family targets: its own name, or the paper's dataset directories named by noun. */
const PAPER_DATASET_TRAITS: Record<string, string> = { sycophancy: 'sycophantic', hallucination: 'hallucinating' };
export const datasetTrait = (kind: string): string => PAPER_DATASET_TRAITS[kind] ?? kind;

export function screeningSummary(results: readonly R[], runDir: string, seed: number): { summary: Record<string, unknown>; figures: FigureSpec[] } {
  const files = new Map(results.map((r) => [r.id, JSON.parse(fs.readFileSync(path.join(runDir, 'cells', r.id, VECTORS_FILE), 'utf8')) as CellFile]));
  const traits = [...new Set(results.flatMap((r) => Object.keys(r.result.traits)))];
  const reps = results[0]?.settings.bootstrap_reps ?? 1000;
  const nullCount = results[0]?.settings.null_directions ?? 20;
  const figures: FigureSpec[] = [];
  const byTrait: Record<string, unknown> = {};
  const rs: number[] = [];
  for (const t of traits) {
    const mine = results.filter((r) => r.result.traits[t]);
    const H = files.get(mine[0].id)![t].direction.length;
    const acts = new Float32Array(mine.length * H);
    mine.forEach((r, i) => acts.set(files.get(r.id)![t].mean_diff, i * H));
    const direction = Float32Array.from(files.get(mine[0].id)![t].direction);
    const scores = mine.map((r) => r.result.traits[t].trait_after);
    let corr: ReturnType<typeof correlationWithNull> | null = null;
    try {
      corr = correlationWithNull(acts, scores, direction, { seed: `${seed}/screening/${t}`, nullCount, bootstrapReps: reps });
    } catch (e) {
      if (!(e instanceof PersonaError)) throw e;
      corr = null; // fewer than 3 datasets or an undefined bootstrap
    }
    const r = corr ? finite(corr.r) : null;
    if (r !== null) rs.push(r);
    const layer = mine[0].result.traits[t].layer;
    byTrait[t] = { r, r_ci: corr && Number.isFinite(corr.ci95.lo) ? corr.ci95 : null, null_mean_abs: corr ? finite(corr.null.meanAbs) : null, null_p975: corr ? finite(corr.null.p975) : null, n: mine.length, layer };
    const rows: Row[] = mine.map((x) => ({ dataset: x.result.dataset, kind: x.settings.kind, version: x.settings.version, projection_diff: x.result.traits[t].projection_diff, trait_after: x.result.traits[t].trait_after }));
    if (rows.length >= 2) {
      const scatter = scatterWithFit(rows, {
          title: `${t}: projection difference of the training data vs ${t} after finetuning (Fig. 8)`,
          x: 'projection_diff',
          y: 'trait_after',
          color: 'kind',
          xTitle: `mean projection difference on the ${t} vector (layer ${layer})`,
          yTitle: `${t} score after finetuning`,
          colorTitle: 'dataset',
          caption: captionWith(
            {
              statistic: 'r (across datasets)',
              value: r ?? NaN,
              ...(corr && Number.isFinite(corr.ci95.lo) ? { ci: { ...corr.ci95, level: 0.95, reps } } : {}),
              ...(corr && Number.isFinite(corr.null.p975) ? { null: { meanAbs: corr.null.meanAbs, p975: corr.null.p975, count: nullCount } } : {}),
            },
            [`n = ${mine.length} datasets, ${mine[0].result.samples} samples each`, "difference = dataset response − the base model's own greedy response (mean response activation)"],
          ),
      });
      scatter.layer[0].encoding.shape = { field: 'version', type: 'nominal', title: 'version', sort: [...FINETUNE_VERSIONS] };
      figures.push({ name: `screening_dataset_${t}`, rows, spec: scatter });
    }
  }

  // Per-sample separation of each trait dataset's I / II samples from its Normal samples.
  const aurocs: Record<string, unknown> = {};
  const flat: Record<string, number | null> = {};
  for (const t of traits) {
    const normal = results.find((r) => datasetTrait(r.settings.kind) === t && r.settings.version === 'normal' && r.result.traits[t]);
    if (!normal) continue;
    const nf = files.get(normal.id)![t];
    const H = nf.direction.length;
    const direction = Float32Array.from(nf.direction);
    const readDiffs = (r: R) => new Float32Array(new Uint8Array(fs.readFileSync(path.join(runDir, 'cells', r.id, files.get(r.id)![t].diffs_file))).buffer);
    const normalDiffs = readDiffs(normal);
    const hist: Row[] = nf.per_sample.map((v) => ({ version: 'Normal', projection_diff: v }));
    const captionParts: string[] = [];
    let headline: { value: number; ci?: { lo: number; hi: number }; null?: { meanAbs: number; p975: number } } | null = null;
    for (const version of ['II', 'I'] as const) {
      const pos = results.find((r) => datasetTrait(r.settings.kind) === t && r.settings.version === version && r.result.traits[t]);
      if (!pos) continue;
      const pf = files.get(pos.id)![t];
      const a = auroc(pf.per_sample, nf.per_sample);
      let ci: { lo: number; hi: number } | null = null;
      try {
        // Resample all samples of both groups together; a resample missing a group is undefined (dropped).
        const np = pf.per_sample.length;
        const nn = nf.per_sample.length;
        ci = bootstrapCI(
          (idx) => {
            const p = idx.filter((i) => i < np).map((i) => pf.per_sample[i]);
            const q = idx.filter((i) => i >= np).map((i) => nf.per_sample[i - np]);
            return p.length && q.length ? auroc(p, q) : NaN;
          },
          np + nn,
          { seed: `${seed}/auroc/${t}/${version}`, reps },
        );
      } catch {
        ci = null;
      }
      const posDiffs = readDiffs(pos);
      const np = posDiffs.length / H;
      const nn = normalDiffs.length / H;
      // Null: the same AUROC with the samples projected on norm-matched random directions (|AUROC − 0.5|).
      const nl = randomDirectionNull((d) => auroc(Array.from(project(posDiffs, np, H, d)), Array.from(project(normalDiffs, nn, H, d))) - 0.5, direction, { count: nullCount, seed: `${seed}/auroc-null/${t}/${version}` });
      const key = `${t}_${version}`;
      flat[key] = a;
      aurocs[key] = { auroc: a, ci, null_mean: 0.5 + nl.meanAbs, null_p975: 0.5 + nl.p975, n_pos: np, n_normal: nn, layer: nf.layer };
      for (const v of pf.per_sample) hist.push({ version, projection_diff: v });
      captionParts.push(`AUROC ${version} vs Normal = ${fmt(a)}${ci ? ` [${fmt(ci.lo)}, ${fmt(ci.hi)}]` : ''} (random directions: mean ${fmt(0.5 + nl.meanAbs)}, 97.5th pct ${fmt(0.5 + nl.p975)})`);
      if (!headline) headline = { value: a, ...(ci ? { ci } : {}), null: { meanAbs: 0.5 + nl.meanAbs, p975: 0.5 + nl.p975 } };
    }
    if (headline && new Set(hist.map((h) => h.version)).size >= 2) {
      const spec = histogramPair(hist, {
        title: `${t}: per-sample projection difference, ${t} datasets vs Normal (Fig. 9)`,
        value: 'projection_diff',
        group: 'version',
        xTitle: `projection difference on the ${t} vector (layer ${nf.layer})`,
        groupTitle: 'dataset version',
        caption: [...captionParts, `${t} I / II samples vs the Normal ${t} dataset's samples (same questions)`, 'AUROC null: norm-matched random directions, either orientation'],
      });
      spec.encoding.color = { ...spec.encoding.color, sort: ['Normal', 'I', 'II'] };
      figures.push({ name: `screening_samples_${t}`, rows: hist, spec });
    }
  }
  const datasetR = rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : null;
  return {
    summary: {
      screening: {
        dataset_r: datasetR,
        dataset_r_rule: `mean over traits (${traits.join(', ')}) of Pearson r between the dataset-level projection difference and the trait score after finetuning`,
        dataset_r_min: rs.length ? Math.min(...rs) : null,
        dataset_r_by_trait: byTrait,
        auroc: flat,
        auroc_details: aurocs,
        thresholds: { dataset_r: 0.7, 'auroc.evil_II': 0.95, 'auroc.evil_I': 0.75 },
      },
    },
    figures,
  };
}

const fmt = (x: number) => String(Math.round(x * 1000) / 1000);

/** Dataset-level r per trait and the AUROCs of `summary.screening`, for printing with formatTable. */
export function screeningTable(screening: { dataset_r_by_trait: Record<string, { r: number | null; null_p975: number | null; layer: number }>; auroc: Record<string, number | null> }): TableRow[] {
  return Object.entries(screening.dataset_r_by_trait).map(([trait, s]) => ({
    trait,
    layer: s.layer,
    'dataset r': s.r,
    'null p97.5': s.null_p975,
    'AUROC II': screening.auroc[`${trait}_II`] ?? null,
    'AUROC I': screening.auroc[`${trait}_I`] ?? null,
  }));
}
