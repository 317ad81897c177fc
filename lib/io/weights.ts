import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { SafetensorsFile } from './safetensors';
import { openTfjsWeights } from './tfjs-weights';

/** One interface over every on-disk layout of a checkpoint's weights; tensors are read one at a time. */
export interface WeightSource {
  readonly dir: string;
  names(): string[];
  has(name: string): boolean;
  shape(name: string): number[];
  /** float32 values; throws PersonaError naming file + tensor if missing/corrupt. */
  read(name: string): Float32Array;
  close(): void;
}

export const SINGLE_SAFETENSORS = 'model.safetensors';
export const SHARDED_INDEX = 'model.safetensors.index.json';
export const TFJS_MANIFEST = 'model.json';

/**
 * Open a checkpoint directory: model.safetensors, else model.safetensors.index.json (sharded,
 * Hugging Face `weight_map`), else model.json (TF.js weights manifest). Only headers are read here.
 */
export function openWeights(dir: string): WeightSource {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new PersonaError('checkpoint directory does not exist', { file: dir });
  }
  const single = path.join(dir, SINGLE_SAFETENSORS);
  if (fs.existsSync(single)) return new SingleSafetensors(dir, SafetensorsFile.open(single));
  const index = path.join(dir, SHARDED_INDEX);
  if (fs.existsSync(index)) return ShardedSafetensors.open(dir, index);
  const manifest = path.join(dir, TFJS_MANIFEST);
  if (fs.existsSync(manifest)) return openTfjsWeights(dir);
  throw new PersonaError(`no weights found: expected ${SINGLE_SAFETENSORS}, ${SHARDED_INDEX} or ${TFJS_MANIFEST}`, { file: dir });
}

class SingleSafetensors implements WeightSource {
  constructor(readonly dir: string, private readonly file: SafetensorsFile) {}
  names(): string[] { return this.file.names(); }
  has(name: string): boolean { return this.file.has(name); }
  shape(name: string): number[] { return [...this.file.info(name).shape]; }
  read(name: string): Float32Array { return this.file.read(name); }
  close(): void { this.file.close(); }
}

class ShardedSafetensors implements WeightSource {
  private constructor(
    readonly dir: string,
    private readonly indexPath: string,
    private readonly shardOf: Map<string, SafetensorsFile>,
    private readonly files: SafetensorsFile[],
  ) {}

  static open(dir: string, indexPath: string): ShardedSafetensors {
    let index: unknown;
    try {
      index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new PersonaError(`sharded index is not valid JSON: ${(e as Error).message}`, { file: indexPath });
    }
    const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
    if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
      throw new PersonaError('sharded index lacks a weight_map object', { file: indexPath, field: 'weight_map' });
    }
    const byShard = new Map<string, string[]>();
    for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
      if (typeof shard !== 'string' || shard === '' || path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
        throw new PersonaError(`weight_map entry ${JSON.stringify(shard)} is not a shard file name in this directory`, { file: indexPath, tensor: name });
      }
      if (!byShard.has(shard)) byShard.set(shard, []);
      byShard.get(shard)!.push(name);
    }
    const files: SafetensorsFile[] = [];
    const shardOf = new Map<string, SafetensorsFile>();
    try {
      for (const [shard, names] of byShard) {
        const shardPath = path.join(dir, shard);
        if (!fs.existsSync(shardPath)) {
          throw new PersonaError(`shard file '${shard}' named in weight_map does not exist (needed for ${names.length} tensors)`, { file: indexPath, tensor: names[0] });
        }
        const f = SafetensorsFile.open(shardPath);
        files.push(f);
        for (const name of names) {
          if (!f.has(name)) throw new PersonaError(`weight_map places this tensor in '${shard}' but that shard has no such tensor`, { file: shardPath, tensor: name });
          shardOf.set(name, f);
        }
      }
    } catch (e) {
      for (const f of files) f.close();
      throw e;
    }
    return new ShardedSafetensors(dir, indexPath, shardOf, files);
  }

  names(): string[] { return [...this.shardOf.keys()]; }
  has(name: string): boolean { return this.shardOf.has(name); }
  private fileFor(name: string): SafetensorsFile {
    const f = this.shardOf.get(name);
    if (!f) throw new PersonaError('no such tensor in weight_map', { file: this.indexPath, tensor: name });
    return f;
  }
  shape(name: string): number[] { return [...this.fileFor(name).info(name).shape]; }
  read(name: string): Float32Array { return this.fileFor(name).read(name); }
  close(): void { for (const f of this.files) f.close(); }
}
