/**
 * Study "monitoring" (paper Fig. 4, Table 2): does the projection of the last prompt token's activation
 * onto the persona vector predict the trait score of the answer that follows? One cell = (trait, prompt
 * family): eight system prompts graded from discouraging to encouraging the trait, or many-shot prompts
 * with K example turns (the trait's artifacts supply both). Rollouts are judged by the cell's judge.
 *
 * The monitor layer is chosen by monitoring quality (shared/monitor-data chooseMonitorLayer: per-sample r on
 * half of the questions under the graded system prompts), not by steering quality; both prompt families
 * of a trait use that layer. Reported at it: per-sample r with a bootstrap CI and ≥ 20 norm-matched
 * random directions (random_mean_abs_r, null_p975), per-prompt-mean r, per-question-mean r and the
 * within-condition r (projections and scores centred on their condition's means), plus r at every layer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { writeFileAtomic } from '../../io/atomic';
import { readModelConfig } from '../../model/config';
import { FigureSpec, Row, lineChart, rowsToCsv, scatterWithFit } from '../../plot';
import { CellResult, registerStudy } from '../study';
import { cachedVector } from './shared/cached';
import { StudyCell, STUDY_PATH_FIELDS, cellArtifacts, cellJudges, judgedBy, loadModel, studyFields, validateCellInputs, checkJudge } from './shared/cell';
import { TableRow } from './shared/format';
import {
  MonitorStats,
  defaultShots,
  finite,
  gradedSystemConditions,
  manyShotConditions,
  monitorData,
  monitorLayer,
  monitorStats,
  promptProjections,
  sampleR,
  traitManyShotExamples,
} from './shared/monitor-data';

export const monitoringSchema = z
  .object({
    ...studyFields,
    prompts: z.enum(['system', 'many_shot']).default('system').describe("Prompt family: the artifacts' graded system prompts (8, discouraging → encouraging) or many-shot prompts"),
    samples: z.number().int().min(1).default(4).describe('Answers per (prompt, question)'),
    shots: z
      .array(z.object({ k: z.number().int().min(0), level: z.number().int().min(0).optional() }).strict())
      .optional()
      .describe("Many-shot conditions: k example turns (the first k of the artifacts' many_shot_examples, of strength `level` when the examples carry levels, as the organism's do: 0..4); default: the organism's 7 (k, level) pairs for levelled examples, else k = 0, 1, 2, 4, 8, 12, 16, 20 up to the examples there are. Without many_shot_examples in the artifacts: the extraction's positive answers with score ≥ 50 and coherence ≥ 50"),
    layer: z.number().int().min(1).optional().describe('Monitor layer; default: chosen by monitoring quality (max per-sample r on even-indexed questions)'),
    layer_by_trait: z.record(z.string(), z.number().int().min(1)).optional().describe("Monitor layer per trait (e.g. the paper's {evil: 20, sycophantic: 20, hallucinating: 16} for Qwen2.5-7B); overrides layer"),
    layer_samples: z.number().int().min(1).default(4).describe('Answers per (system prompt, question) used to choose the monitor layer (same rollouts as prompts: system with this many samples)'),
    null_directions: z.number().int().min(20).default(20).describe('Norm-matched random directions in the null of r'),
    bootstrap_reps: z.number().int().min(10).default(1000).describe('Bootstrap resamples of each confidence interval'),
  })
  .strict();

export type MonitoringCell = z.infer<typeof monitoringSchema> & StudyCell;

export interface MonitoringResult extends MonitorStats, Record<string, unknown> {
  prompts: string;
  layer_rule: string;
  /** Per-sample r on the odd-indexed questions, which the layer choice never saw (system prompts). */
  r_heldout: number | null;
  r_by_layer: { layer: number; r: number | null }[];
  extraction_kept: number;
  extraction_total: number;
  /** Identity of the judge that scored the trait. */
  judged_by?: string;
}

registerStudy<MonitoringCell, MonitoringResult>('monitoring', {
  description: 'Last-prompt-token projection onto the persona vector vs trait score under graded system prompts and many-shot prompts (paper Fig. 4, Table 2)',
  schema: monitoringSchema,
  pathFields: STUDY_PATH_FIELDS,
  validate(config, ctx) {
    // The monitor layer is chosen under the graded system prompts, whichever the prompt family.
    validateCellInputs(ctx, { layerFields: ['layer'], needs: ['graded_system_prompts'] });
    for (const { value, keyPath } of ctx.valuesOf('layer_by_trait'))
      for (const [k, l] of Object.entries((value as Record<string, number> | undefined) ?? {}))
        for (const m of new Set(config.product.map((c) => c.model))) {
          const n = readModelConfig(ctx.resolvePath(m)).numLayers;
          if (l > n) ctx.fail([...keyPath, k], `layer ${l} is outside the model (${m} has ${n} decoder layers: persona-vector layers 1..${n})`);
        }
  },
  async runCell(cell, ctx) {
    const arts = cellArtifacts(cell, ctx.resolvePath);
    const judges = cellJudges(ctx, cell, arts.eval, ctx.resolvePath);
    await checkJudge(ctx, cell.judge); // a judge without logprobs stops the run before any model is loaded
    const org = await loadModel(ctx, ctx.resolvePath(cell.model));
    const seed = ctx.config.seed;
    const vec = await cachedVector(ctx, org, cell, arts.extract, seed, judges);
    const { choice, data: systemData } = await monitorLayer(ctx, org, cell, arts, vec.vector, seed, { samples: cell.layer_samples, layer: cell.layer_by_trait?.[cell.trait] ?? cell.layer, judges });
    const manyShot = () => {
      const examples = traitManyShotExamples(arts.eval, vec, cell.trait);
      return manyShotConditions(examples, cell.shots ?? defaultShots(examples));
    };
    const data =
      cell.prompts === 'system' && cell.samples === cell.layer_samples
        ? systemData
        : await monitorData(ctx, org, {
            trait: cell.trait,
            questions: arts.eval.questions,
            conditions: cell.prompts === 'system' ? gradedSystemConditions(arts.eval, cell.trait) : manyShot(),
            samples: cell.samples,
            maxNewTokens: cell.max_new_tokens,
            temperature: cell.temperature,
            batchSize: cell.batch_size,
            seed: `${seed}/monitor-${cell.prompts === 'system' ? 'system' : 'many-shot'}`,
            judges,
          });
    const L = choice.layer;
    const stats = monitorStats(data, vec.vector, L, { nullCount: cell.null_directions, bootstrapReps: cell.bootstrap_reps, seed: `${seed}/monitoring/${cell.trait}/${cell.prompts}` });
    // Every sample with its projection at the monitor layer: the figure's points (and a file to inspect).
    const proj = promptProjections(data, L, vec.vector.unit(L));
    const sampleRows: Row[] = data.samples.map((s) => {
      const p = data.prompts[s.prompt];
      return { condition: data.conditions[p.condition].label, grade: data.conditions[p.condition].grade, question: p.question, projection: proj[s.prompt], trait_score: s.score, coherence: finite(s.coherence) };
    });
    writeFileAtomic(path.join(ctx.dir, 'samples.csv'), rowsToCsv(sampleRows));
    const heldout = choice.byLayer.find((b) => b.layer === L)?.r_heldout ?? null;
    return {
      ...stats,
      prompts: cell.prompts,
      layer_rule: choice.rule,
      r_heldout: cell.prompts === 'system' ? heldout : null,
      r_by_layer: data.layers.filter((l) => l >= 1).map((l) => ({ layer: l, r: finite(sampleR(data, vec.vector, l)) })),
      extraction_kept: vec.kept,
      extraction_total: vec.total,
      judged_by: judgedBy(judges),
    };
  },
  async summarize(results, ctx) {
    const summary: Record<string, Record<string, unknown>> = {};
    const figures: FigureSpec[] = [];
    const layerRows: Row[] = [];
    const order = (r: CellResult<MonitoringCell, MonitoringResult>) => (r.settings.prompts === 'system' ? 0 : 1);
    for (const r of [...results].sort((a, b) => order(a) - order(b))) {
      const t = r.settings.trait;
      const s = r.result;
      const keys = {
        layer: s.layer,
        layer_rule: s.layer_rule,
        n: s.n,
        r: s.r,
        r_ci: s.r_ci,
        random_mean_abs_r: s.random_mean_abs_r,
        null_p975: s.null_p975,
        null_directions: s.null_directions,
        beats_null: s.beats_null,
        prompt_mean_r: s.prompt_mean_r,
        prompt_mean_ci: s.prompt_mean_ci,
        question_mean_r: s.question_mean_r,
        within_condition_r: s.within_condition_r,
        within_condition_by_condition: s.within_condition_by_condition,
        ...(s.prompts === 'system' ? { r_heldout: s.r_heldout } : {}),
        r_by_layer: s.r_by_layer,
        conditions: s.conditions,
      };
      // System prompts give the trait's top-level keys (Acceptance); many-shot sits beside them.
      summary[t] = s.prompts === 'system' ? { ...keys, ...(summary[t] ?? {}) } : { ...(summary[t] ?? {}), many_shot: keys };
      for (const b of s.r_by_layer) layerRows.push({ trait: t, prompts: s.prompts, series: `${t} (${s.prompts.replace('_', '-')})`, layer: b.layer, r: b.r });
      const points = readSamples(path.join(ctx.runDir, 'cells', r.id, 'samples.csv'));
      if (points.length && s.r !== null) {
        const spec = scatterWithFit(points, {
          title: `${t}: last-prompt projection vs trait score (${s.prompts === 'system' ? 'graded system prompts' : 'many-shot prompts'})`,
          x: 'projection',
          y: 'trait_score',
          color: 'condition',
          xTitle: `projection onto the unit ${t} vector, layer ${s.layer}`,
          yTitle: `${t} score of the answer`,
          colorTitle: 'prompt',
          caption: {
            statistic: 'r (per sample)',
            value: s.r,
            ...(s.r_ci ? { ci: { ...s.r_ci, level: 0.95, reps: r.settings.bootstrap_reps } } : {}),
            ...(s.random_mean_abs_r !== null && s.null_p975 !== null ? { null: { meanAbs: s.random_mean_abs_r, p975: s.null_p975, count: s.null_directions } } : {}),
            note: `per-prompt-mean r ${fmt(s.prompt_mean_r)}, within-condition r ${fmt(s.within_condition_r)}; n = ${s.n} answers; layer ${s.layer} chosen by monitoring quality`,
          },
        });
        // Scores live in 0..100: fix the y axis there and clip the fit line to it.
        for (const l of spec.layer as { mark: Record<string, unknown>; encoding: Record<string, Record<string, unknown>> }[]) {
          l.encoding.y = { ...l.encoding.y, scale: { domain: [0, 100] } };
          l.mark = { ...l.mark, clip: true };
        }
        figures.push({ name: `monitoring_${t}_${s.prompts}`, rows: points, spec });
      }
    }
    const withR = layerRows.filter((r) => r.r !== null);
    if (withR.length) {
      const spec = lineChart(withR, {
        title: 'Monitoring quality by layer (per-sample r)',
        x: 'layer',
        xType: 'ordinal',
        y: 'r',
        series: 'series',
        xTitle: 'Layer L (hidden_states index)',
        yTitle: 'Pearson r: projection vs trait score',
        seriesTitle: 'trait (prompts)',
        caption: nullCaption(results),
      });
      for (const l of spec.layer as { encoding: Record<string, Record<string, unknown>> }[]) {
        l.encoding.color = { ...l.encoding.color, legend: { labelLimit: 320 } };
        l.encoding.x = { ...l.encoding.x, axis: { labelAngle: 0 } };
      }
      figures.push({ name: 'monitoring_by_layer', rows: withR, spec });
    }
    return { summary: { monitoring: summary }, figures };
  },
});

const fmt = (x: number | null) => (x === null ? 'undefined' : String(Math.round(x * 1000) / 1000));

function nullCaption(results: CellResult<MonitoringCell, MonitoringResult>[]): string[] {
  const lines = results
    .filter((r) => r.result.r !== null)
    .map((r) => `${r.settings.trait} (${r.settings.prompts}): layer ${r.result.layer}, r = ${fmt(r.result.r)}${r.result.r_ci ? ` [${fmt(r.result.r_ci.lo)}, ${fmt(r.result.r_ci.hi)}]` : ''}, random-direction null (${r.result.null_directions}) mean |r| ${fmt(r.result.random_mean_abs_r)}, 97.5th pct ${fmt(r.result.null_p975)}`);
  return lines.length ? lines.slice(0, 8) : ['no defined correlation'];
}

function readSamples(file: string): Row[] {
  if (!fs.existsSync(file)) return [];
  return parse(fs.readFileSync(file, 'utf8'), { columns: true, cast: true }) as Row[]; // our own rowsToCsv output: numbers cast back
}

/** One row per (trait, prompt family) of a monitoring summary (`summary.monitoring`), for formatTable. */
export function monitoringTable(monitoring: Record<string, Record<string, unknown>>): TableRow[] {
  const rows: TableRow[] = [];
  const ci = (c: unknown) => (c && typeof c === 'object' ? `[${fmt((c as { lo: number }).lo)}, ${fmt((c as { hi: number }).hi)}]` : null);
  for (const [trait, s] of Object.entries(monitoring)) {
    const families: [string, Record<string, unknown>][] = [];
    if ('r' in s) families.push(['system', s]);
    if (s.many_shot) families.push(['many-shot', s.many_shot as Record<string, unknown>]);
    for (const [prompts, m] of families)
      rows.push({
        trait,
        prompts,
        'monitor layer': m.layer as number,
        r: m.r as number | null,
        'r 95% CI': ci(m.r_ci),
        'null mean|r|': m.random_mean_abs_r as number | null,
        'null p97.5': m.null_p975 as number | null,
        'prompt-mean r': m.prompt_mean_r as number | null,
        'within-cond r': m.within_condition_r as number | null,
        'held-out r': (m.r_heldout as number | null | undefined) ?? null,
      });
  }
  return rows;
}
