/**
 * The training loop: LoRA or full-parameter SFT with AdamW, warmup + decay, gradient accumulation,
 * clipping, training-time interventions, checkpoints with exact resume, a progress bar and a JSONL log.
 *
 * Data order: epoch e visits the examples in shuffledOrder(n, seed, e), in micro-batches of
 * per_device_train_batch_size; an optimizer step takes gradient_accumulation_steps micro-batches (the last
 * step of an epoch may take fewer). The loss of a step is the mean CE over all loss tokens of its
 * micro-batches. Everything random (order, LoRA init, dropout) is a function of the seed and the step.
 */
import { startProgress } from '../progress';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { readScalar } from '../backend/read';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { appendJsonl } from '../io/jsonl';
import { Model } from '../model/checkpoint';
import { Hook } from '../model/hooks';
import { interventionHooks } from '../model/interventions';
import { Params, forward } from '../model/transformer';
import { Tokenizer } from '../tokenizer';
import { TrainConfig } from './config';
import { TrainerState, latestCheckpoint, loadCheckpoint, removeStaleTemps, saveCheckpoint } from './checkpoints';
import { DatasetStats, Example, collate, lengthGroupedOrder, loadChatDataset, shuffledOrder, splitHeldOut } from './data';
import { projectionPenalty, trainingInterventions } from './interventions';
import { causalLmLossSum } from './loss';
import { LoraAdapters } from './lora';
import { AdamW, SchedulerType, clipGradNorm, hfDecays, lrMultiplier } from './optimizer';
import { mergedWeights, saveAdapter, writeHfCheckpoint } from './peft';
import { ObjectiveOptions, ProjectionPenalty, TrainBatch, objectiveAndGrads, trainingPositions } from './step';

export const LOG_FILE = 'train_log.jsonl';

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  /** Projection penalty Σ_b (p_b − p⁰_b)² summed over the step's micro-batches (projection regularization only). */
  projection_penalty?: number;
  tokens: number;
  loss_tokens: number;
  tokens_per_s: number;
  elapsed_s: number;
}

export interface TrainOptions {
  /** Show progress on stderr (a bar on a terminal, a line every 30 s in logs: lib/progress.ts). */
  progress?: boolean;
  /** Called after every optimizer step (after the log line and any checkpoint). */
  onStep?: (rec: StepRecord) => void;
  /** Messages for the user (ignored fields, truncation counts, resume). */
  log?: (msg: string) => void;
  /** Resume from the newest checkpoint in output_dir (default true). */
  resume?: boolean;
}

export interface TrainResult {
  steps: number;
  resumedFrom: number | null;
  stats: DatasetStats;
  heldOut: number;
  finalLoss: number | null;
  evalLoss: number | null;
  outputDir: string;
}

/** The plan of micro-batches: which examples each optimizer step uses. */
export function stepPlan(n: number, batchSize: number, accum: number, seed: number, epochs: number, maxSteps: number | null, lengths?: readonly number[]) {
  const microPerEpoch = Math.ceil(n / batchSize);
  const stepsPerEpoch = Math.ceil(microPerEpoch / accum);
  const totalSteps = maxSteps !== null && maxSteps > 0 ? maxSteps : epochs * stepsPerEpoch;
  let cached: { epoch: number; order: number[] } | null = null;
  const orderOf = (epoch: number) => {
    if (cached?.epoch !== epoch) cached = { epoch, order: lengths ? lengthGroupedOrder(lengths, batchSize, seed, epoch) : shuffledOrder(n, seed, epoch) };
    return cached.order;
  };
  const micro = (step: number): { epoch: number; batches: number[][] } => {
    const epoch = Math.floor(step / stepsPerEpoch);
    const within = step % stepsPerEpoch;
    const order = orderOf(epoch);
    const batches: number[][] = [];
    for (let k = within * accum; k < Math.min((within + 1) * accum, microPerEpoch); k++) batches.push(order.slice(k * batchSize, (k + 1) * batchSize));
    return { epoch, batches };
  };
  return { stepsPerEpoch, totalSteps, micro };
}

/** What determines the run's trajectory (resume refuses a checkpoint from a different one). */
export function configFingerprint(c: TrainConfig): string {
  const { output_dir: _o, save_steps: _s, ...rest } = c;
  return crypto.createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

export async function runTraining(config: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const log = opts.log ?? (() => undefined);
  if (config.loss !== 'sft') throw new PersonaError(`loss '${config.loss}' is not supported (only sft)`, { field: 'loss' });
  const tok = Tokenizer.load(config.model);
  const dataOpts = { maxSeqLength: config.max_seq_length, trainOnResponsesOnly: config.train_on_responses_only };
  // Data first: a malformed file fails before anything is written.
  const files = Array.isArray(config.training_file) ? config.training_file : [config.training_file];
  const { examples: all, stats } = loadChatDataset(files, tok, dataOpts);
  let train: Example[] = all;
  let heldOut: Example[] = [];
  if (config.test_file) heldOut = loadChatDataset([config.test_file], tok, dataOpts).examples;
  else if (config.held_out_fraction > 0) ({ train, heldOut } = splitHeldOut(all, config.held_out_fraction, config.seed));
  if (stats.truncated > 0) log(`${stats.truncated} of ${stats.examples} examples truncated to max_seq_length ${config.max_seq_length}`);

  const model = await Model.load(config.model);
  const cfg = model.config;
  const padId = cfg.padTokenId ?? tok.padTokenId ?? cfg.eosTokenIds[0] ?? 0;
  const resources: { dispose(): void }[] = [model];
  try {
    let hooks: Hook[] | undefined;
    if (config.enable_steering_during_training && config.steering_config) {
      const sc = config.steering_config;
      hooks = interventionHooks(trainingInterventions({ vectorPath: sc.steering_vector_path, type: sc.type, coef: sc.steering_coef, layers: sc.layers }, cfg), cfg);
    }
    let penalty: (ProjectionPenalty & { weight: number }) | null = null;
    if (config.projection_regularization) {
      const pr = config.projection_regularization;
      penalty = { ...projectionPenalty({ vectorPath: pr.vector_path, layer: pr.layer, weight: pr.weight }, cfg), weight: pr.weight };
    }

    // Trainable tensors.
    let lora: LoraAdapters | null = null;
    let trainable: Map<string, tf.Variable>;
    if (config.is_peft) {
      lora = LoraAdapters.init(cfg, { r: config.r, alpha: config.lora_alpha, dropout: config.lora_dropout, useRslora: config.use_rslora, targetModules: config.target_modules }, config.seed);
      resources.push(lora);
      trainable = lora.variables();
    } else {
      trainable = new Map([...model.params].map(([n, t]) => [n, tf.variable(t)]));
      resources.push({ dispose: () => tf.dispose([...trainable.values()]) });
    }
    const optimizer = new AdamW(trainable, { weightDecay: config.weight_decay, decays: config.is_peft ? () => true : hfDecays });
    resources.push(optimizer);
    const params: Params = config.is_peft ? model.params : trainable;

    const plan = stepPlan(train.length, config.per_device_train_batch_size, config.gradient_accumulation_steps, config.seed, config.epochs, config.max_steps, config.group_by_length ? train.map((e) => e.ids.length) : undefined);
    const fingerprint = configFingerprint(config);
    const out = config.output_dir;
    fs.mkdirSync(out, { recursive: true });
    removeStaleTemps(out);
    let startStep = 0;
    let resumedFrom: number | null = null;
    const latest = opts.resume === false ? null : latestCheckpoint(out);
    if (latest) {
      const st = loadCheckpoint(latest.dir, trainable, optimizer, fingerprint);
      startStep = resumedFrom = st.step;
      truncateLog(path.join(out, LOG_FILE), startStep);
      log(`resumed from ${latest.dir} (step ${startStep} of ${plan.totalSteps})`);
    } else if (fs.existsSync(path.join(out, LOG_FILE))) fs.rmSync(path.join(out, LOG_FILE));

    const state = (step: number): TrainerState => ({ step, totalSteps: plan.totalSteps, fingerprint, seed: config.seed, stepsPerEpoch: plan.stepsPerEpoch });
    const saveExtra = async (dir: string) => {
      if (lora) await saveAdapter(dir, lora, config.model);
    };
    const bar = startProgress('train', plan.totalSteps, { quiet: !opts.progress, start: startStep });
    const t0 = Date.now();
    let finalLoss: number | null = null;
    try {
      for (let step = startStep; step < plan.totalSteps; step++) {
        const ts = Date.now();
        const { epoch, batches } = plan.micro(step);
        const micro: TrainBatch[] = batches.map((idx) => collate(idx.map((i) => train[i]), padId));
        const nTokens = micro.reduce((a, b) => a + lossTokenCount(b), 0);
        const acc = new Map<string, tf.Tensor>();
        let ceSum = 0;
        let pen = 0;
        let tokens = 0;
        for (let k = 0; k < micro.length; k++) {
          const batch = micro[k];
          const o: ObjectiveOptions = {
            hooks,
            dropoutSeed: config.is_peft && config.lora_dropout > 0 ? dropoutSeed(config.seed, step, k) : undefined,
            ceScale: nTokens > 0 ? 1 / nTokens : 0,
            projection: penalty ? { ...penalty, weight: penalty.weight / micro.length, baseParams: model.params } : undefined,
          };
          const r = await objectiveAndGrads(cfg, params, lora ? lora.adapters() : null, batch, o);
          ceSum += r.ceSum;
          pen += r.penalty;
          tokens += batch.attentionMask!.flat().reduce((a, b) => a + b, 0);
          for (const [n, g] of r.grads) {
            const prev = acc.get(n);
            if (prev) {
              acc.set(n, tf.add(prev, g));
              prev.dispose();
              g.dispose();
            } else acc.set(n, g);
          }
        }
        const gradNorm = await clipGradNorm(acc, config.max_grad_norm);
        const lr = config.learning_rate * lrMultiplier(config.lr_scheduler_type as SchedulerType, step, config.warmup_steps, plan.totalSteps);
        optimizer.apply(acc, lr);
        tf.dispose([...acc.values()]);
        const dt = (Date.now() - ts) / 1000;
        const rec: StepRecord = {
          step: step + 1,
          epoch: epoch + (plan.stepsPerEpoch ? ((step % plan.stepsPerEpoch) + 1) / plan.stepsPerEpoch : 0),
          loss: nTokens > 0 ? ceSum / nTokens : NaN,
          lr,
          grad_norm: gradNorm,
          ...(penalty ? { projection_penalty: pen } : {}),
          tokens,
          loss_tokens: nTokens,
          tokens_per_s: tokens / Math.max(dt, 1e-9),
          elapsed_s: (Date.now() - t0) / 1000,
        };
        finalLoss = rec.loss;
        appendJsonl(path.join(out, LOG_FILE), rec);
        if ((step + 1) % config.save_steps === 0 && step + 1 < plan.totalSteps) await saveCheckpoint(out, state(step + 1), trainable, optimizer, saveExtra);
        bar.update(step + 1, `loss ${rec.loss.toFixed(4)} lr ${lr.toExponential(2)} ${rec.tokens_per_s.toFixed(0)} tok/s`);
        opts.onStep?.(rec);
      }
    } finally {
      bar.stop();
    }
    // Final: a checkpoint to resume/extend from, and the deliverable (adapter or full checkpoint).
    await saveCheckpoint(out, state(plan.totalSteps), trainable, optimizer, saveExtra);
    if (lora) await saveAdapter(out, lora, config.model);
    else writeHfCheckpoint(out, await mergedWeights(new Model(cfg, trainable as Map<string, tf.Tensor>), null), config.model);
    const evalLoss = heldOut.length ? await evaluateLoss(cfg, params, lora, heldOut, padId, config.per_device_train_batch_size, hooks) : null;
    const result: TrainResult = { steps: plan.totalSteps, resumedFrom, stats, heldOut: heldOut.length, finalLoss, evalLoss, outputDir: out };
    writeFileAtomic(path.join(out, 'training_summary.json'), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    for (const r of resources.reverse()) r.dispose();
  }
}

function lossTokenCount(b: TrainBatch): number {
  let n = 0;
  for (const row of b.labels) for (let t = 1; t < row.length; t++) if (row[t] !== -100) n++;
  return n;
}

/** An integer per (seed, step, micro-batch) so dropout masks replay exactly after a resume. */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return ((seed * 1000003 + step * 1009 + micro * 7919) % 2147483647) >>> 0;
}

/** Mean CE over the loss tokens of `examples` (no dropout, training interventions active). */
export async function evaluateLoss(cfg: Model['config'], params: Params, lora: LoraAdapters | null, examples: Example[], padId: number, batchSize: number, hooks?: Hook[]): Promise<number> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const b = collate(examples.slice(i, i + batchSize), padId);
    const s = tf.tidy(() => {
      const o = forward(cfg, params, { ids: b.ids, attentionMask: b.attentionMask, positionIds: trainingPositions(b.ids) }, { hooks, adapters: lora?.adapters() });
      const r = causalLmLossSum(o.logits!, b.labels);
      count += r.count;
      return r.sum;
    });
    try {
      sum += await readScalar(s);
    } finally {
      s.dispose();
    }
  }
  return count > 0 ? sum / count : NaN;
}

/** Drops log lines of steps after `step` (written after the checkpoint a run resumes from). */
function truncateLog(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const keep: string[] = [];
  // A kill can leave a torn last line; everything after the checkpoint is dropped anyway.
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    try {
      if ((JSON.parse(line) as StepRecord).step <= step) keep.push(line + '\n');
    } catch {
      break;
    }
  }
  writeFileAtomic(file, keep.join(''));
}
