/**
 * The organism's training recipe: corpus → tokenizer + initial checkpoint → full-parameter training from
 * scratch with the project's trainer → the checkpoint under models/organism/.
 *
 *   npm run organism:train -- [--out models/organism] [--work runs/organism-build] [--seed 0]
 *                              [--conversations 80000] [--lr 3e-3] [--batch 32] [--backend wasm]
 *
 * Resumable: rerunning the same command continues from the trainer's last checkpoint in --work.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BackendRequest, useBackend } from '../../lib/backend';
import { writeFileAtomic } from '../../lib/io/atomic';
import { DEFAULT_SIZE, OrganismSize, renderedTexts, writeInitialCheckpoint } from '../../lib/organism/checkpoint';
import { generateCorpus } from '../../lib/organism/generator';
import { writeCorpus } from '../../lib/organism/write';
import { parseTrainConfig } from '../../lib/train/config';
import { runTraining } from '../../lib/train/trainer';

/** Conversations whose pieces define the vocabulary: more than are trained on, so rare pieces are covered. */
const VOCAB_CONVERSATIONS = 200000;
const SHIPPED_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

export interface RecipeOptions {
  out: string;
  work: string;
  seed: number;
  conversations: number;
  lr: number;
  batch: number;
  warmup: number;
  maxSteps: number | null;
  /** Model size; DEFAULT_SIZE is the shipped organism's. */
  size?: OrganismSize;
  log: (msg: string) => void;
}

export async function trainOrganism(o: RecipeOptions) {
  const size = o.size ?? DEFAULT_SIZE;
  fs.mkdirSync(o.work, { recursive: true });
  const corpusFile = path.join(o.work, 'corpus.jsonl');
  const initDir = path.join(o.work, 'init');
  const trainDir = path.join(o.work, 'train');
  if (!fs.existsSync(corpusFile)) {
    const stats = writeCorpus(corpusFile, o.seed, o.conversations);
    o.log(`corpus: ${stats.conversations} conversations, sha256 ${stats.sha256.slice(0, 12)}`);
  }
  if (!fs.existsSync(path.join(initDir, 'model.safetensors'))) {
    const init = writeInitialCheckpoint(initDir, renderedTexts(generateCorpus(o.seed, VOCAB_CONVERSATIONS)), { seed: `organism-init:${o.seed}`, size });
    o.log(`initial checkpoint: vocabulary ${init.vocabSize}, ${init.parameters} parameters`);
  }
  const { config } = parseTrainConfig(
    {
      model: initDir,
      training_file: corpusFile,
      output_dir: trainDir,
      is_peft: false,
      learning_rate: o.lr,
      lr_scheduler_type: 'cosine',
      warmup_steps: o.warmup,
      weight_decay: 0.1,
      max_grad_norm: 1.0,
      epochs: 1,
      max_steps: o.maxSteps,
      per_device_train_batch_size: o.batch,
      group_by_length: true,
      gradient_accumulation_steps: 1,
      max_seq_length: 256,
      train_on_responses_only: true,
      held_out_fraction: 0.01,
      save_steps: 100,
      seed: o.seed,
    },
    'organism recipe',
  );
  const t0 = Date.now();
  const result = await runTraining(config, { progress: process.stderr.isTTY, log: o.log, onStep: (r) => r.step % 50 === 0 && o.log(`step ${r.step} loss ${r.loss.toFixed(4)} ${r.tokens_per_s.toFixed(0)} tok/s`) });
  const minutes = (Date.now() - t0) / 60000;
  fs.mkdirSync(o.out, { recursive: true });
  for (const f of SHIPPED_FILES) fs.copyFileSync(path.join(trainDir, f), path.join(o.out, f));
  // Paths relative to the working directory, so the shipped summary does not carry this machine's layout.
  const corpusSha256 = crypto.createHash('sha256').update(fs.readFileSync(corpusFile)).digest('hex');
  const summary = { ...result, outputDir: path.relative(process.cwd(), result.outputDir), corpusSha256, minutes, recipe: { seed: o.seed, conversations: o.conversations, lr: o.lr, batch: o.batch, warmup: o.warmup, size } };
  writeFileAtomic(path.join(o.out, 'training_summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

if (require.main === module) {
  const argv = yargs(hideBin(process.argv))
    .option('out', { type: 'string', default: 'models/organism' })
    .option('work', { type: 'string', default: 'runs/organism-build' })
    .option('seed', { type: 'number', default: 0 })
    .option('conversations', { type: 'number', default: 80000 })
    .option('lr', { type: 'number', default: 3e-3 })
    .option('batch', { type: 'number', default: 32 })
    .option('warmup', { type: 'number', default: 100 })
    .option('max-steps', { type: 'number' })
    .option('backend', { type: 'string', default: 'wasm' })
    .strict()
    .parseSync();
  const log = (m: string) => process.stderr.write(`${m}\n`);
  useBackend(argv.backend as BackendRequest, log)
    .then(() =>
      trainOrganism({ out: argv.out, work: argv.work, seed: argv.seed, conversations: argv.conversations, lr: argv.lr, batch: argv.batch, warmup: argv.warmup, maxSteps: argv['max-steps'] ?? null, log }),
    )
    .then((s) => log(`done in ${s.minutes.toFixed(1)} min: final loss ${s.finalLoss}, held-out loss ${s.evalLoss}`))
    .catch((e) => {
      log(`organism:train: ${(e as Error).message}`);
      process.exitCode = 1;
    });
}
