/**
 * kill -9 mid-run, then resume: the final weights equal an uninterrupted run's with the same seed.
 * Also: a stale temp directory of an interrupted save is ignored and removed.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { SafetensorsFile } from '../../lib/io/safetensors';
import { readTrainConfig } from '../../lib/train/config';
import { latestCheckpoint } from '../../lib/train/checkpoints';
import { LOG_FILE, runTraining } from '../../lib/train/trainer';
import { chatExamples, makeTinyModel, tmpDir, writeJsonl } from './support/tiny';

const readAll = (file: string) => {
  const st = SafetensorsFile.open(file);
  const out = Object.fromEntries(st.names().map((n) => [n, Array.from(st.read(n))]));
  st.close();
  return out;
};

test('interrupted (SIGKILL) + resumed run ends with the same adapter as an uninterrupted run', async () => {
  const root = tmpDir('resume');
  makeTinyModel(path.join(root, 'model'));
  writeJsonl(path.join(root, 'data.jsonl'), chatExamples());
  const cfg = (out: string) => {
    const f = path.join(root, `${out}.json`);
    fs.writeFileSync(
      f,
      JSON.stringify({
        model: 'model',
        training_file: 'data.jsonl',
        output_dir: out,
        learning_rate: 1e-2,
        r: 4,
        lora_alpha: 8,
        lora_dropout: 0.1, // dropout masks must replay exactly too
        per_device_train_batch_size: 2,
        gradient_accumulation_steps: 2,
        warmup_steps: 2,
        epochs: 3, // 3 micro-batches per epoch → 2 steps per epoch → 6 steps, crossing epochs
        save_steps: 2,
        seed: 7,
        lr_scheduler_type: 'cosine',
      }),
    );
    return f;
  };
  const child = spawnSync(process.execPath, [path.join(__dirname, 'support/child-train.js'), cfg('killed'), '3'], { cwd: path.resolve(__dirname, '../..'), encoding: 'utf8' });
  expect(child.signal).toBe('SIGKILL');
  const killedDir = path.join(root, 'killed');
  expect(latestCheckpoint(killedDir)!.step).toBe(2);
  expect(fs.existsSync(path.join(killedDir, 'adapter_model.safetensors'))).toBe(false);
  // A save that died half-way leaves only a temp directory, which resume ignores and removes.
  fs.mkdirSync(path.join(killedDir, '.tmp-checkpoint-4-99999'));
  fs.writeFileSync(path.join(killedDir, '.tmp-checkpoint-4-99999', 'trainable.safetensors'), 'garbage');

  const resumed = await runTraining(readTrainConfig(cfg('killed')).config);
  expect(resumed.resumedFrom).toBe(2);
  expect(fs.readdirSync(killedDir).some((n) => n.startsWith('.tmp-'))).toBe(false);
  const straight = await runTraining(readTrainConfig(cfg('straight')).config);
  expect(straight.resumedFrom).toBeNull();
  expect(straight.steps).toBe(6);

  const a = readAll(path.join(killedDir, 'adapter_model.safetensors'));
  const b = readAll(path.join(root, 'straight', 'adapter_model.safetensors'));
  expect(Object.keys(a).length).toBeGreaterThan(0);
  expect(a).toEqual(b); // bit-identical
  // The log of the resumed run has each step exactly once.
  const steps = fs.readFileSync(path.join(killedDir, LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
  expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
});
