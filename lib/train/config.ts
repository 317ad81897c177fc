/**
 * `persona train CONFIG`: the paper's training-config fields (JSON or YAML), validated with zod.
 * Fields that only make sense for the Python stack are accepted and reported as ignored; any other
 * unknown field is an error naming it. Relative paths are resolved against the config file's directory.
 */
import * as fs from 'fs';
import * as path from 'path';
import YAML from 'yaml';
import { z } from 'zod';
import { PersonaError } from '../errors';
import { closestKey, pickIssue, shapeKeysAt } from '../experiment/config';
import { LORA_TARGETS } from './lora';
import { SCHEDULERS } from './optimizer';

/** Python-only fields (unsloth / bitsandbytes / hub upload / trainer logging): accepted, ignored. */
export const IGNORED_FIELDS = [
  'load_in_4bit',
  'optim',
  'merge_before_push',
  'push_to_private',
  'push_to_hub',
  'finetuned_model_id',
  'logging_steps',
  'report_to',
  'beta',
] as const;

const positiveInt = z.number().int().positive();
const steeringSchema = z
  .object({
    steering_vector_path: z.string().min(1),
    type: z.enum(['steer', 'ablate']),
    steering_coef: z.number().default(0),
    layers: z.union([z.array(z.number().int().nonnegative()).min(1), z.literal('all')]),
  })
  .strict();

export const trainConfigSchema = z
  .object({
    model: z.string().min(1),
    training_file: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    test_file: z.string().min(1).nullable().default(null),
    /** Fraction of the training examples held out for evaluation when no test_file is given. */
    held_out_fraction: z.number().min(0).lt(1).default(0),
    max_seq_length: positiveInt.default(2048),
    loss: z.literal('sft').default('sft'),
    is_peft: z.boolean().default(true),
    target_modules: z.array(z.enum(LORA_TARGETS)).min(1).default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
    lora_bias: z.literal('none').default('none'),
    r: positiveInt.default(32),
    lora_alpha: z.number().positive().default(64),
    lora_dropout: z.number().min(0).lt(1).default(0),
    use_rslora: z.boolean().default(true),
    epochs: positiveInt.default(1),
    max_steps: z.number().int().nullable().default(null),
    per_device_train_batch_size: positiveInt.default(2),
    /** Hugging Face's group_by_length: micro-batches of similar lengths (less padding). */
    group_by_length: z.boolean().default(false),
    gradient_accumulation_steps: positiveInt.default(8),
    warmup_steps: z.number().int().nonnegative().default(5),
    learning_rate: z.number().positive(),
    weight_decay: z.number().min(0).default(0.01),
    lr_scheduler_type: z.enum(SCHEDULERS as unknown as [string, ...string[]]).default('linear'),
    max_grad_norm: z.number().min(0).default(1.0),
    seed: z.number().int().default(0),
    save_steps: positiveInt.default(5000),
    output_dir: z.string().min(1),
    train_on_responses_only: z.boolean().default(true),
    enable_steering_during_training: z.boolean().default(false),
    steering_config: steeringSchema.nullable().default(null),
    projection_regularization: z
      .object({ vector_path: z.string().min(1), layer: z.number().int().nonnegative(), weight: z.number().min(0) })
      .strict()
      .nullable()
      .default(null),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;

/** Validates a parsed config object; `file` is used in errors and to resolve relative paths. */
export function parseTrainConfig(raw: unknown, file: string): { config: TrainConfig; ignored: string[] } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new PersonaError('a training config must be an object', { file });
  const obj = { ...(raw as Record<string, unknown>) };
  const ignored: string[] = [];
  for (const f of IGNORED_FIELDS)
    if (f in obj) {
      ignored.push(f);
      delete obj[f];
    }
  const r = trainConfigSchema.safeParse(obj);
  if (!r.success) {
    const issue = pickIssue(r.error.issues); // a misspelled required field is unknown, not missing
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0];
      const where = [...issue.path, key].join('.');
      const near = closestKey(key, shapeKeysAt(trainConfigSchema, issue.path));
      throw new PersonaError(`unknown field (not a training-config field${near ? `; did you mean '${near}'?` : ''})`, { file, field: where });
    }
    const field = issue.path.join('.');
    const got = issue.path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)?.[k as string], obj);
    const msg = issue.code === 'invalid_type' && got === undefined ? 'missing required field' : `${issue.message} (got ${JSON.stringify(got)})`;
    throw new PersonaError(msg, { file, field });
  }
  const config = r.data;
  if (config.enable_steering_during_training && !config.steering_config)
    throw new PersonaError('enable_steering_during_training is true but there is no steering_config', { file, field: 'steering_config' });
  const dir = path.dirname(path.resolve(file));
  const abs = (p: string) => path.resolve(dir, p);
  config.model = abs(config.model);
  config.training_file = (Array.isArray(config.training_file) ? config.training_file : [config.training_file]).map(abs);
  if (config.test_file) config.test_file = abs(config.test_file);
  config.output_dir = abs(config.output_dir);
  if (config.steering_config) config.steering_config.steering_vector_path = abs(config.steering_config.steering_vector_path);
  if (config.projection_regularization) config.projection_regularization.vector_path = abs(config.projection_regularization.vector_path);
  return { config, ignored };
}

/** Reads CONFIG (.json, .yaml or .yml). */
export function readTrainConfig(file: string): { config: TrainConfig; ignored: string[] } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PersonaError(`cannot read config: ${(e as Error).message}`, { file });
  }
  let raw: unknown;
  const ext = path.extname(file).toLowerCase();
  try {
    raw = ext === '.yaml' || ext === '.yml' ? YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new PersonaError(`not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`, { file });
  }
  return parseTrainConfig(raw, file);
}
