/** `persona plan --slurm`: a Slurm job-array script, one shard of the sweep per array task. */
import * as path from 'node:path';
import { PersonaError } from '../errors';
import type { LoadedExperiment } from './runner';

/** Single-quoted for bash. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface SlurmOptions {
  /** Number of array tasks (default: slurm.shards of the config, at most the number of cells). */
  shards?: number;
  /** Directory the tasks run in (default: the working directory). */
  workdir?: string;
}

export function slurmScript(exp: LoadedExperiment, opts: SlurmOptions = {}): { script: string; shards: number } {
  const { config, cells } = exp;
  const s = config.slurm;
  const requested = opts.shards ?? s.shards;
  if (!Number.isInteger(requested) || requested < 1) throw new PersonaError(`shards must be a positive integer, got ${requested}`, { field: 'shards' });
  const n = Math.max(1, Math.min(requested, cells.length)); // an empty array task would only waste a slot
  const workdir = path.resolve(opts.workdir ?? process.cwd());
  const q = shellQuote;
  const lines = [
    '#!/bin/bash',
    `# Slurm job array for experiment '${config.experiment}' (${cells.length} cells in ${n} shards), written by \`persona plan --slurm\`.`,
    `# Submit: sbatch ${q(path.join(config.runDir, 'slurm.sh'))}`,
    `# When every task has finished: ${s.command} collect ${q(config.file)} --output-dir ${q(path.dirname(config.runDir))}`,
    `#   (or chain it: sbatch --dependency=afterok:<jobid> --wrap "${s.command} collect ${config.file}")`,
    `#SBATCH --job-name=${q(s.job_name ?? config.experiment)}`,
    `#SBATCH --array=0-${n - 1}`,
    `#SBATCH --time=${q(s.time)}`,
    `#SBATCH --cpus-per-task=${s.cpus_per_task}`,
    `#SBATCH --mem=${q(s.mem)}`,
    ...(s.partition ? [`#SBATCH --partition=${q(s.partition)}`] : []),
    ...(s.gpus > 0 ? [`#SBATCH --gpus=${s.gpus}`] : []),
    `#SBATCH --chdir=${q(workdir)}`,
    `#SBATCH --output=${q(path.join(config.runDir, 'slurm', '%A_%a.out'))}`,
    ...s.sbatch.map((o) => `#SBATCH ${o}`),
    'set -euo pipefail',
    ...s.setup,
    `${s.command} run ${q(config.file)} --shard "\${SLURM_ARRAY_TASK_ID}/${n}" --output-dir ${q(path.dirname(config.runDir))} --cache-dir ${q(config.cacheDir)}`,
    '',
  ];
  return { script: lines.join('\n'), shards: n };
}
