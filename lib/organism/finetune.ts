/**
 * LoRA finetunes of the organism on its finetuning datasets (datasets.ts finetuneDataset), run with the
 * project's trainer and cached on disk: a finetune is keyed by the base checkpoint's bytes, the dataset
 * (kind, version, size, seed) and the training config, so a rerun of the report finds it and does not
 * retrain. The result is a PEFT adapter directory, loaded back with lib/train/peft.ts loadAdapter.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { checkpointFingerprint } from '../io/fingerprint';
import type { Model } from '../model/checkpoint';
import { parseTrainConfig } from '../train/config';
import { LoraAdapters } from '../train/lora';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter } from '../train/peft';
import { runTraining } from '../train/trainer';
import { FinetuneKind, FinetuneVersion, finetuneDataset } from './datasets';

/**
 * Training-config fields of an organism finetune (the paper's LoRA recipe — rsLoRA on every linear
 * module, 1 epoch, effective batch 16, linear schedule — sized for a 1M-parameter model: r 16, alpha 32,
 * lr 1e-3 instead of the paper's r 32, alpha 64, lr 1e-5 for 7B models).
 */
export interface OrganismFinetuneConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  use_rslora: boolean;
  target_modules: string[];
  learning_rate: number;
  epochs: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  warmup_steps: number;
  weight_decay: number;
  lr_scheduler_type: string;
  max_grad_norm: number;
  max_seq_length: number;
  seed: number;
  /** Conversations in each finetuning dataset. */
  samples: number;
  /** Seed of the dataset generator (finetuneDataset's seed). */
  data_seed: number;
}

export const DEFAULT_FINETUNE: OrganismFinetuneConfig = {
  r: 16,
  lora_alpha: 32,
  lora_dropout: 0,
  use_rslora: true,
  target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  learning_rate: 1e-3,
  epochs: 1,
  per_device_train_batch_size: 16,
  gradient_accumulation_steps: 1,
  warmup_steps: 5,
  weight_decay: 0.01,
  lr_scheduler_type: 'linear',
  max_grad_norm: 1.0,
  max_seq_length: 256,
  seed: 0,
  samples: 1000,
  data_seed: 0,
};

const FINETUNE_FIELDS = Object.keys(DEFAULT_FINETUNE) as (keyof OrganismFinetuneConfig)[];

/** DEFAULT_FINETUNE with the fields of a YAML/JSON file (or object) over it; unknown fields are an error naming them. */
export function finetuneConfigFrom(overrides: Record<string, unknown> | string | undefined): OrganismFinetuneConfig {
  if (overrides === undefined) return { ...DEFAULT_FINETUNE };
  let obj: unknown = overrides;
  let file = 'finetune config';
  if (typeof overrides === 'string') {
    file = overrides;
    let text: string;
    try {
      text = fs.readFileSync(overrides, 'utf8');
    } catch (e) {
      throw new PersonaError(`cannot read finetune config: ${(e as Error).message}`, { file });
    }
    try {
      obj = YAML.parse(text) ?? {};
    } catch (e) {
      throw new PersonaError(`not valid YAML: ${(e as Error).message}`, { file });
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new PersonaError('a finetune config must be a mapping of fields', { file });
  const out: Record<string, unknown> = { ...DEFAULT_FINETUNE };
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (!(FINETUNE_FIELDS as string[]).includes(k)) throw new PersonaError(`unknown field (one of ${FINETUNE_FIELDS.join(', ')})`, { file, field: k });
    const want = typeof DEFAULT_FINETUNE[k as keyof OrganismFinetuneConfig];
    const ok = want === 'object' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : typeof v === want;
    if (!ok) throw new PersonaError(`expected ${want === 'object' ? 'a list of module names' : `a ${want}`}, got ${JSON.stringify(v)}`, { file, field: k });
    out[k] = v;
  }
  const c = out as unknown as OrganismFinetuneConfig;
  if (!Number.isInteger(c.samples) || c.samples < 1) throw new PersonaError(`samples must be a positive integer, got ${c.samples}`, { file, field: 'samples' });
  return c;
}

/** Cache key of a finetune: base checkpoint bytes + dataset + every training setting. */
export function finetuneKey(baseHash: string, kind: string, version: FinetuneVersion, cfg: OrganismFinetuneConfig, dataSha256: string): string {
  const fields = Object.fromEntries(FINETUNE_FIELDS.map((k) => [k, cfg[k]]));
  return crypto.createHash('sha256').update(JSON.stringify({ baseHash, kind, version, cfg: fields, data: dataSha256 })).digest('hex').slice(0, 16);
}

/**
 * finetuneDataset(kind, version) for the config's samples and data seed, as JSONL text, and its sha256: the
 * hash goes into every cache key of a finetune, so a changed generator never reuses data or adapters
 * made by an older one. Generating 1000 samples takes milliseconds.
 */
export function finetuneData(kind: FinetuneKind, version: FinetuneVersion, cfg: Pick<OrganismFinetuneConfig, 'samples' | 'data_seed'>): { text: string; sha256: string } {
  const text = finetuneDataset(kind, version, { seed: cfg.data_seed, n: cfg.samples }).map((s) => JSON.stringify(s)).join('\n') + '\n';
  return { text, sha256: crypto.createHash('sha256').update(text).digest('hex') };
}

export interface FinetuneRun {
  kind: string;
  version: FinetuneVersion;
  key: string;
  /** Adapter directory (adapter_config.json + adapter_model.safetensors + training_summary.json). */
  dir: string;
  /** False when the cached adapter was reused. */
  trained: boolean;
  seconds: number;
  steps: number;
  finalLoss: number | null;
}

const DONE_FILE = 'finetune.json';

/** Process-wide count of finetunes actually trained (not served from the cache); tests read it. */
export const finetuneCounter = { trained: 0 };

export interface OrganismFinetuneOptions {
  baseModel: string;
  /** checkpointFingerprint(baseModel), if already computed. */
  baseHash?: string;
  /** Dataset family: an organism kind, or (with `data`) the name of any dataset. */
  kind: string;
  version: FinetuneVersion;
  config: OrganismFinetuneConfig;
  /** The training data (JSONL text and its sha256); default: the organism's finetuneData(kind, version). */
  data?: { text: string; sha256: string };
  /** Finetunes live in <cacheDir>/<kind>_<version>_<key>/, datasets in <cacheDir>/data/. */
  cacheDir: string;
  log?: (msg: string) => void;
}

/**
 * Trains (or finds in the cache) the LoRA finetune of `baseModel` on finetuneDataset(kind, version). A
 * finished finetune is marked by finetune.json, written last; an interrupted one resumes from the trainer's
 * checkpoints in the same directory.
 */
export async function organismFinetune(o: OrganismFinetuneOptions): Promise<FinetuneRun> {
  const baseHash = o.baseHash ?? checkpointFingerprint(o.baseModel);
  const data = o.data ?? finetuneData(o.kind as FinetuneKind, o.version, o.config);
  const key = finetuneKey(baseHash, o.kind, o.version, o.config, data.sha256);
  const dir = path.resolve(o.cacheDir, `${o.kind}_${o.version}_${key}`);
  const done = path.join(dir, DONE_FILE);
  if (fs.existsSync(done) && fs.existsSync(path.join(dir, ADAPTER_WEIGHTS)) && fs.existsSync(path.join(dir, ADAPTER_CONFIG))) {
    const rec = JSON.parse(fs.readFileSync(done, 'utf8')) as FinetuneRun;
    return { ...rec, dir, trained: false };
  }
  const c = o.config;
  const dataDir = path.resolve(o.cacheDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const dataFile = path.join(dataDir, `${o.kind}_${o.version}_n${c.samples}_s${c.data_seed}_${data.sha256.slice(0, 12)}.jsonl`);
  if (!fs.existsSync(dataFile)) writeFileAtomic(dataFile, data.text);
  const { samples: _n, data_seed: _d, ...trainFields } = c;
  const { config } = parseTrainConfig(
    { ...trainFields, model: path.resolve(o.baseModel), training_file: dataFile, output_dir: dir, is_peft: true, train_on_responses_only: true, save_steps: 1000000 },
    `organism finetune ${o.kind}_${o.version}`,
  );
  o.log?.(`finetune ${o.kind} ${o.version}: training (${dir})`);
  const t0 = Date.now();
  const r = await runTraining(config, { log: o.log });
  finetuneCounter.trained++;
  const rec: FinetuneRun = { kind: o.kind, version: o.version, key, dir, trained: true, seconds: (Date.now() - t0) / 1000, steps: r.steps, finalLoss: r.finalLoss };
  writeFileAtomic(done, JSON.stringify({ ...rec, config: c, baseHash, dataFile }, null, 2) + '\n');
  return rec;
}

/** The finetune's LoRA adapters on `model` (the base it was trained from); the caller disposes them. */
export function loadFinetune(run: Pick<FinetuneRun, 'dir'>, model: Model): LoraAdapters {
  return loadAdapter(run.dir, model);
}
