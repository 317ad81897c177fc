/**
 * Training checkpoints: <output_dir>/checkpoint-<step>/ with the trainable tensors, the optimizer moments
 * and trainer_state.json (step and config fingerprint; data order and dropout seeds are functions of the
 * seed and the step, so nothing else is needed to resume exactly). A checkpoint is written into a temp
 * directory and renamed into place, so a crash while saving never leaves a partial checkpoint-<step>.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { readValues } from '../backend/read';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../io/safetensors';
import { AdamW } from './optimizer';

export const TRAINER_STATE = 'trainer_state.json';
const PARAMS_FILE = 'trainable.safetensors';
const OPTIM_FILE = 'optimizer.safetensors';

export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  totalSteps: number;
  fingerprint: string;
  [extra: string]: unknown;
}

export function checkpointDir(outputDir: string, step: number): string {
  return path.join(outputDir, `checkpoint-${step}`);
}

/** Newest complete checkpoint (temp directories are never named checkpoint-<n>). */
export function latestCheckpoint(outputDir: string): { dir: string; step: number } | null {
  if (!fs.existsSync(outputDir)) return null;
  let best: { dir: string; step: number } | null = null;
  for (const name of fs.readdirSync(outputDir)) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (!m) continue;
    const dir = path.join(outputDir, name);
    if (!fs.existsSync(path.join(dir, TRAINER_STATE))) continue;
    const step = Number(m[1]);
    if (!best || step > best.step) best = { dir, step };
  }
  return best;
}

/** Leftovers of an interrupted save. */
export function removeStaleTemps(outputDir: string): void {
  if (!fs.existsSync(outputDir)) return;
  for (const name of fs.readdirSync(outputDir)) if (/^\.tmp-checkpoint-/.test(name)) fs.rmSync(path.join(outputDir, name), { recursive: true, force: true });
}

export async function saveCheckpoint(
  outputDir: string,
  state: TrainerState,
  trainable: Map<string, tf.Variable>,
  optimizer: AdamW,
  extra?: (dir: string) => Promise<void> | void,
): Promise<string> {
  fs.mkdirSync(outputDir, { recursive: true });
  const tmp = path.join(outputDir, `.tmp-checkpoint-${state.step}-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  const params: Record<string, TensorToWrite> = {};
  for (const [n, v] of trainable) params[n] = { shape: [...v.shape], data: await readValues(v) };
  writeSafetensors(path.join(tmp, PARAMS_FILE), params);
  const { m, v } = await optimizer.stateArrays();
  const moments: Record<string, TensorToWrite> = {};
  for (const [n, t] of trainable) {
    moments[`m/${n}`] = { shape: [...t.shape], data: m.get(n)! };
    moments[`v/${n}`] = { shape: [...t.shape], data: v.get(n)! };
  }
  writeSafetensors(path.join(tmp, OPTIM_FILE), moments, { optimizer_step: String(optimizer.step) });
  await extra?.(tmp);
  writeFileAtomic(path.join(tmp, TRAINER_STATE), JSON.stringify(state, null, 2) + '\n');
  const final = checkpointDir(outputDir, state.step);
  if (fs.existsSync(final)) {
    const old = `${tmp}-old`;
    fs.renameSync(final, old);
    fs.renameSync(tmp, final);
    fs.rmSync(old, { recursive: true, force: true });
  } else fs.renameSync(tmp, final);
  return final;
}

/** Restores trainable tensors and optimizer moments in place; returns the trainer state. */
export function loadCheckpoint(dir: string, trainable: Map<string, tf.Variable>, optimizer: AdamW, fingerprint: string): TrainerState {
  const stateFile = path.join(dir, TRAINER_STATE);
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as TrainerState;
  if (state.fingerprint !== fingerprint)
    throw new PersonaError('this checkpoint was written by a run with a different configuration; use another output_dir or delete it', { file: stateFile, field: 'fingerprint' });
  const pf = path.join(dir, PARAMS_FILE);
  const st = SafetensorsFile.open(pf);
  try {
    for (const [n, v] of trainable) {
      if (!st.has(n)) throw new PersonaError('missing trainable tensor', { file: pf, tensor: n });
      const data = st.read(n);
      if (data.length !== v.size) throw new PersonaError(`size ${data.length}, expected ${v.size}`, { file: pf, tensor: n });
      tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
    }
  } finally {
    st.close();
  }
  const of = path.join(dir, OPTIM_FILE);
  const os = SafetensorsFile.open(of);
  try {
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const n of trainable.keys()) {
      if (os.has(`m/${n}`)) m.set(n, os.read(`m/${n}`));
      if (os.has(`v/${n}`)) v.set(n, os.read(`v/${n}`));
    }
    optimizer.loadState(Number(os.metadata.optimizer_step ?? state.step), m, v, of);
  } finally {
    os.close();
  }
  return state;
}
