/**
 * Judged rollouts and persona vectors of any model, cached on disk keyed by everything that determines them
 * (the model's bytes, judges, prompts, sampling settings, seeds, interventions), so every study and cell
 * that asks for the same rollouts or vector gets the stored one, and a killed run resumes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../../../errors';
import type { Intervention } from '../../../model/interventions';
import type { LinearAdapter } from '../../../model/transformer';
import type { TraitArtifacts } from '../../../persona/artifacts';
import { extractPersonaVector, vectorsFromRollouts } from '../../../persona/extract';
import { RolloutItem, RolloutJudges, runRollouts } from '../../../persona/rollouts';
import { RolloutRow, readRolloutsCsv } from '../../../persona/rollouts-csv';
import { PersonaVector } from '../../../persona/vector';

/** The methods one extraction computes together (the paper's generate_vec); others are derived from its rollouts. */
const MEAN_DIFF_METHODS = ['response_avg_diff', 'prompt_avg_diff', 'prompt_last_diff'] as const;
import { sha256Hex } from '../../hash';
import type { LoadedModel, StudyEnv, StudyCell } from './cell';

/** Interventions as cache-key data (vectors by hash). */
export function interventionKey(ivs: readonly Intervention[]): unknown[] {
  return ivs.map((iv) => ({ ...iv, vector: sha256Hex(new Uint8Array(iv.vector.buffer, iv.vector.byteOffset, iv.vector.byteLength)) }));
}

export interface RolloutSpec {
  trait: string;
  judges: RolloutJudges;
  items: readonly RolloutItem[];
  maxNewTokens: number;
  temperature: number;
  batchSize: number;
  seed: string;
  interventions?: readonly Intervention[];
  /** LoRA adapters (finetuned model); `adaptersKey` must identify them (e.g. the finetune's cache key). */
  adapters?: ReadonlyMap<string, LinearAdapter>;
  adaptersKey?: string;
}

/**
 * Judged rollouts (paper CSV columns), computed once per key and stored in the cache as rollouts.csv:
 * the key holds the model's bytes, judges, items (prompts), sampling settings, seed and interventions.
 */
export async function cachedRollouts(env: StudyEnv, org: LoadedModel, s: RolloutSpec): Promise<{ rows: RolloutRow[]; csv: string }> {
  if (s.adapters && !s.adaptersKey) throw new PersonaError('rollouts with adapters need an adaptersKey (what identifies the finetune) for the cache', { field: 'adapters' });
  const judges = s.judges;
  const key = {
    model: org.fingerprint,
    adapters: s.adaptersKey ?? null,
    judges: [judges.trait.id, judges.coherence.id],
    items: s.items.map((it) => ({ q: it.question, id: it.questionId, system: it.system ?? null, history: it.history ?? null })),
    maxNewTokens: s.maxNewTokens,
    temperature: s.temperature,
    batchSize: s.batchSize,
    seed: s.seed,
    interventions: interventionKey(s.interventions ?? []),
  };
  const dir = await env.cache.getOrComputeDir('rollouts', key, async (tmp) => {
    await runRollouts({
      model: org.model,
      tokenizer: org.tokenizer,
      items: s.items,
      csvFile: path.join(tmp, 'rollouts.csv'),
      trait: s.trait,
      judges,
      maxNewTokens: s.maxNewTokens,
      temperature: s.temperature,
      seed: s.seed,
      batchSize: s.batchSize,
      interventions: s.interventions,
      adapters: s.adapters,
    });
  });
  const csv = path.join(dir, 'rollouts.csv');
  return { rows: readRolloutsCsv(csv, s.trait).rows, csv };
}

export interface VectorInfo {
  vector: PersonaVector;
  /** Pairs kept by the extraction filter, of all pairs. */
  kept: number;
  total: number;
  /** Cache directory with the pos/neg rollouts and all three vectors. */
  dir: string;
}

/** The persona vector of a cell's settings, extracted once (the paper's pipeline, the cell's judges) and cached. */
export async function cachedVector(env: StudyEnv, org: LoadedModel, cell: StudyCell, artifacts: TraitArtifacts, seed: number, judges: RolloutJudges): Promise<VectorInfo> {
  const key = {
    model: org.fingerprint,
    trait: cell.trait,
    artifacts: { instruction: artifacts.instruction, questions: artifacts.questions },
    judges: [judges.trait.id, judges.coherence.id],
    samples: cell.extract_samples,
    threshold: cell.extract_threshold,
    coherenceMin: cell.extract_coherence_min,
    maxNewTokens: cell.max_new_tokens,
    temperature: cell.temperature,
    batchSize: cell.batch_size,
    seed,
  };
  const dir = await env.cache.getOrComputeDir('persona-vector', key, async (tmp) => {
    env.log?.(`extracting the ${cell.trait} persona vector`);
    const r = await extractPersonaVector({
      model: org.model,
      tokenizer: org.tokenizer,
      artifacts,
      trait: cell.trait,
      judges,
      outDir: tmp,
      samples: cell.extract_samples,
      threshold: cell.extract_threshold,
      coherenceMin: cell.extract_coherence_min,
      maxNewTokens: cell.max_new_tokens,
      temperature: cell.temperature,
      seed: String(seed),
      batchSize: cell.batch_size,
      modelName: path.basename(org.dir),
    });
    fs.writeFileSync(path.join(tmp, 'extraction.json'), JSON.stringify({ kept: r.kept, total: r.total, emptyAnswers: r.emptyAnswers }) + '\n');
  });
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'extraction.json'), 'utf8')) as { kept: number; total: number };
  if ((MEAN_DIFF_METHODS as readonly string[]).includes(cell.extract_method))
    return { vector: PersonaVector.load(path.join(dir, `${cell.trait}_${cell.extract_method}.safetensors`)), kept: info.kept, total: info.total, dir };
  // PCA and probe directions: from the same judged rollouts (read from the mean-difference entry), cached by method.
  const mdir = await env.cache.getOrComputeDir('persona-vector-method', { ...key, method: cell.extract_method }, async (tmp) => {
    env.log?.(`${cell.extract_method} direction of ${cell.trait}`);
    const rows = (side: 'pos' | 'neg') => readRolloutsCsv(path.join(dir, `${cell.trait}_${side}_instruct.csv`), cell.trait).rows;
    const ex = await vectorsFromRollouts({
      model: org.model,
      tokenizer: org.tokenizer,
      pos: rows('pos'),
      neg: rows('neg'),
      trait: cell.trait,
      threshold: cell.extract_threshold,
      coherenceMin: cell.extract_coherence_min,
      batchSize: cell.batch_size,
      modelName: path.basename(org.dir),
      method: [cell.extract_method],
    });
    ex.vectors[cell.extract_method]!.save(path.join(tmp, `${cell.trait}_${cell.extract_method}.safetensors`));
  });
  return { vector: PersonaVector.load(path.join(mdir, `${cell.trait}_${cell.extract_method}.safetensors`)), kept: info.kept, total: info.total, dir };
}
