/**
 * Steering evaluation (paper §3): eval questions × n samples under each intervention setting, judged for
 * the trait and coherence; mean and standard error per setting. Each setting's rollouts go to their own
 * resumable CSV, so an interrupted evaluation continues where it stopped.
 */
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { requireScores } from '../judge/judge';
import type { Model } from '../model/checkpoint';
import { Intervention, Positions, steer } from '../model/interventions';
import type { Tokenizer } from '../tokenizer';
import type { TraitArtifacts } from './artifacts';
import { RolloutItem, RolloutJudges, runRollouts } from './rollouts';
import type { RolloutRow } from './rollouts-csv';
import { mean, stderr } from './stats';

export interface SteeringSetting {
  /** File-name-safe label, e.g. "L20_c1.5_response" or "base". */
  label: string;
  layer?: number;
  coef?: number;
  positions?: Positions;
  interventions: Intervention[];
}

/** Settings for a coefficient sweep at one layer (coef 0 is the unsteered baseline). */
export function steeringSettings(vector: Float32Array, layer: number, coefs: readonly number[], positions: Positions, numLayers: number): SteeringSetting[] {
  return coefs.map((coef) => ({
    label: coef === 0 ? 'unsteered' : `L${layer}_coef${coef}_${positions}`,
    layer,
    coef,
    positions,
    interventions: coef === 0 ? [] : [steer(vector, layer, coef, positions, numLayers)],
  }));
}

export interface ScoreSummary {
  rows: number;
  /** Rows with a trait / coherence score (the judge may refuse). */
  traitN: number;
  traitMean: number;
  traitStderr: number;
  coherenceN: number;
  coherenceMean: number;
  coherenceStderr: number;
}

/** Mean and standard error of the trait and coherence scores over rows that have them (NaN when none). */
export function summarizeScores(rows: readonly RolloutRow[]): ScoreSummary {
  const t = rows.map((r) => r.score).filter((v): v is number => v !== null);
  const c = rows.map((r) => r.coherence).filter((v): v is number => v !== null);
  return {
    rows: rows.length,
    traitN: t.length,
    traitMean: t.length ? mean(t) : NaN,
    traitStderr: t.length ? stderr(t) : NaN,
    coherenceN: c.length,
    coherenceMean: c.length ? mean(c) : NaN,
    coherenceStderr: c.length ? stderr(c) : NaN,
  };
}

export interface EvaluateOptions {
  model: Model;
  tokenizer: Tokenizer;
  artifacts: TraitArtifacts;
  trait: string;
  judges: RolloutJudges;
  settings: readonly SteeringSetting[];
  outDir: string;
  samples?: number;
  /** Optional system prompt for every rollout (the paper's steering evaluation uses none). */
  system?: string;
  maxNewTokens?: number;
  temperature?: number;
  seed?: string;
  batchSize?: number;
  onProgress?: (setting: string, done: number, total: number) => void;
}

export interface SettingResult extends ScoreSummary {
  label: string;
  layer?: number;
  coef?: number;
  positions?: Positions;
  file: string;
  resumed: number;
}

export function evaluationItems(a: TraitArtifacts, trait: string, samples: number, system?: string): RolloutItem[] {
  if (!Number.isInteger(samples) || samples < 1) throw new PersonaError(`samples per question must be a positive integer, got ${samples}`, { field: 'samples' });
  const items: RolloutItem[] = [];
  a.questions.forEach((question, i) => {
    for (let s = 0; s < samples; s++) items.push({ question, questionId: `${trait}_${i}`, system });
  });
  return items;
}

export async function evaluateSteering(o: EvaluateOptions): Promise<SettingResult[]> {
  const labels = new Set<string>();
  for (const s of o.settings) {
    if (!/^[A-Za-z0-9_.+-]+$/.test(s.label)) throw new PersonaError(`setting label '${s.label}' is not usable as a file name`, { field: 'label' });
    if (labels.has(s.label)) throw new PersonaError(`two settings share the label '${s.label}'`, { field: 'label' });
    labels.add(s.label);
  }
  const items = evaluationItems(o.artifacts, o.trait, o.samples ?? 1, o.system);
  const out: SettingResult[] = [];
  for (const s of o.settings) {
    const file = path.join(o.outDir, `${o.trait}_${s.label}.csv`);
    const r = await runRollouts({
      model: o.model,
      tokenizer: o.tokenizer,
      items,
      csvFile: file,
      trait: o.trait,
      judges: o.judges,
      maxNewTokens: o.maxNewTokens ?? 64,
      temperature: o.temperature ?? 1,
      seed: `${o.seed ?? '0'}/${s.label}`,
      batchSize: o.batchSize,
      interventions: s.interventions,
      onProgress: (d, t) => o.onProgress?.(s.label, d, t),
    });
    // A judge that scored none of the setting's answers (fewer than its own failAfterUnscored) would give a NaN mean.
    for (const [judge, scores] of [[o.judges.trait, r.rows.map((x) => x.score)], [o.judges.coherence, r.rows.map((x) => x.coherence)]] as const) {
      try {
        requireScores(judge.id, scores);
      } catch (e) {
        throw new PersonaError(`setting '${s.label}': ${(e as Error).message}; the unscored rows are kept in this file: delete it to judge them again`, { file });
      }
    }
    out.push({ label: s.label, layer: s.layer, coef: s.coef, positions: s.positions, file, resumed: r.resumed, ...summarizeScores(r.rows) });
  }
  return out;
}
