import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { writeFileAtomic, writeFileAtomicChunks } from './atomic';
import { decodeF16, encodeF16, numElements, readFully } from './safetensors';
import type { WeightSource } from './weights';

/**
 * "Converted TF.js weights": TensorFlow.js's weights-manifest layout (tf.io WeightsManifestConfig).
 * model.json holds {"weightsManifest": [{paths, weights}]}; within a group the weights' bytes are
 * concatenated in manifest order and cut into the group's shard files, so one weight may span shards.
 */

export const TFJS_FORMAT = 'persona-weights';
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

type TfjsDtype = 'float32' | 'int32' | 'bool';
type QuantDtype = 'float16' | 'uint8' | 'uint16';

export interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: TfjsDtype;
  quantization?: { dtype: QuantDtype; original_dtype?: string; scale?: number; min?: number };
}

export interface ManifestGroup {
  paths: string[];
  weights: ManifestEntry[];
}

const VALUE_BYTES: Record<TfjsDtype | QuantDtype, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, uint16: 2 };

function entryBytes(e: ManifestEntry): number {
  return numElements(e.shape) * VALUE_BYTES[e.quantization ? e.quantization.dtype : e.dtype];
}

/**
 * Write every tensor of `source` as float32 (or float16 via tfjs's quantization field) into
 * outDir/group1-shardKofN.bin plus outDir/model.json. Tensors are read and encoded one at a time;
 * shards are written atomically and model.json last, so a complete model.json implies complete shards.
 */
export function writeTfjsWeights(outDir: string, source: WeightSource, opts: { float16?: boolean; shardBytes?: number } = {}): void {
  const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isSafeInteger(shardBytes) || shardBytes <= 0) {
    throw new PersonaError(`shardBytes must be a positive integer, got ${shardBytes}`, { field: 'shardBytes' });
  }
  fs.mkdirSync(outDir, { recursive: true });
  // An old model.json must not outlive the shards it describes being overwritten below.
  fs.rmSync(path.join(outDir, 'model.json'), { force: true });
  const names = source.names();
  const weights: ManifestEntry[] = names.map((name) => {
    const e: ManifestEntry = { name, shape: source.shape(name), dtype: 'float32' };
    if (opts.float16) e.quantization = { dtype: 'float16', original_dtype: 'float32' };
    return e;
  });
  const total = weights.reduce((s, e) => s + entryBytes(e), 0);
  const numShards = Math.max(1, Math.ceil(total / shardBytes));
  const paths = Array.from({ length: numShards }, (_, i) => `group1-shard${i + 1}of${numShards}.bin`);

  // One stream of encoded tensors, cut into shard-sized pieces; only one tensor is held at a time.
  const tensorBytes = (function* () {
    for (const e of weights) {
      const values = source.read(e.name);
      if (values.length !== numElements(e.shape)) {
        throw new PersonaError(`read ${values.length} values but shape [${e.shape.join(', ')}] needs ${numElements(e.shape)}`, { file: source.dir, tensor: e.name });
      }
      yield opts.float16 ? new Uint8Array(encodeF16(values).buffer) : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    }
  })();
  let pending: Uint8Array | undefined;
  function* nextShard(limit: number): Generator<Uint8Array> {
    let left = limit;
    while (left > 0) {
      if (!pending || pending.byteLength === 0) {
        const r = tensorBytes.next();
        if (r.done) return;
        pending = r.value;
        continue;
      }
      const take = Math.min(left, pending.byteLength);
      yield pending.subarray(0, take);
      pending = pending.subarray(take);
      left -= take;
    }
  }
  for (const p of paths) writeFileAtomicChunks(path.join(outDir, p), nextShard(shardBytes));
  // Drain: an all-empty source still runs the reader once per tensor (validating shapes).
  for (const rest of nextShard(Number.MAX_SAFE_INTEGER)) {
    if (rest.byteLength > 0) throw new Error('internal: weight bytes left over after the last shard');
  }
  const manifest = { format: TFJS_FORMAT, generatedBy: 'persona', weightsManifest: [{ paths, weights }] satisfies ManifestGroup[] };
  writeFileAtomic(path.join(outDir, 'model.json'), JSON.stringify(manifest, null, 1) + '\n');
}

interface Located {
  entry: ManifestEntry;
  group: number;
  /** Byte offset within the group's concatenated shards. */
  offset: number;
  bytes: number;
}

class TfjsWeights implements WeightSource {
  private readonly fds = new Map<string, number>();
  constructor(
    readonly dir: string,
    private readonly manifestPath: string,
    private readonly located: Map<string, Located>,
    /** Per group: shard files with their sizes, in order. */
    private readonly shards: { file: string; size: number }[][],
  ) {}

  names(): string[] { return [...this.located.keys()]; }
  has(name: string): boolean { return this.located.has(name); }
  private locate(name: string): Located {
    const l = this.located.get(name);
    if (!l) throw new PersonaError('no such weight in weightsManifest', { file: this.manifestPath, tensor: name });
    return l;
  }
  shape(name: string): number[] { return [...this.locate(name).entry.shape]; }

  read(name: string): Float32Array {
    const l = this.locate(name);
    const bytes = new Uint8Array(new ArrayBuffer(l.bytes));
    // Copy the weight's byte range out of whichever shards it spans.
    let shardStart = 0;
    let filled = 0;
    for (const s of this.shards[l.group]) {
      const shardEnd = shardStart + s.size;
      const from = Math.max(l.offset + filled, shardStart);
      if (filled < l.bytes && from < shardEnd) {
        const n = Math.min(shardEnd, l.offset + l.bytes) - from;
        const got = readFully(this.fd(s.file), bytes.subarray(filled, filled + n), from - shardStart);
        if (got !== n) throw new PersonaError(`shard ended after ${got} of ${n} bytes (changed since opening?)`, { file: s.file, tensor: name });
        filled += n;
      }
      shardStart = shardEnd;
    }
    if (filled !== l.bytes) throw new PersonaError(`weight data runs past the last shard`, { file: this.manifestPath, tensor: name });
    return decodeEntry(bytes, l.entry);
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = fs.openSync(file, 'r');
      this.fds.set(file, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

function decodeEntry(bytes: Uint8Array, e: ManifestEntry): Float32Array {
  const n = numElements(e.shape);
  const q = e.quantization;
  let out: Float32Array;
  if (!q) {
    if (e.dtype === 'float32') return new Float32Array(bytes.buffer, 0, n);
    out = e.dtype === 'int32' ? Float32Array.from(new Int32Array(bytes.buffer, 0, n)) : Float32Array.from(bytes, (v) => (v ? 1 : 0));
  } else if (q.dtype === 'float16') {
    out = decodeF16(new Uint16Array(bytes.buffer, 0, n));
  } else {
    // Affine quantization as tf.io decodes it: value = q * scale + min (rounded for int32).
    const src = q.dtype === 'uint8' ? bytes : new Uint16Array(bytes.buffer, 0, n);
    const scale = q.scale as number;
    const min = q.min as number;
    out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = src[i] * scale + min;
    if (e.dtype === 'int32') for (let i = 0; i < n; i++) out[i] = Math.round(out[i]);
  }
  return out;
}

function validateEntry(raw: unknown, file: string, field: string): ManifestEntry {
  if (raw === null || typeof raw !== 'object') throw new PersonaError('weight entry is not an object', { file, field });
  const e = raw as Record<string, unknown>;
  if (typeof e.name !== 'string') throw new PersonaError('weight entry has no string name', { file, field: `${field}.name` });
  const place = { file, tensor: e.name };
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new PersonaError(`shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`, place);
  }
  if (e.dtype !== 'float32' && e.dtype !== 'int32' && e.dtype !== 'bool') {
    throw new PersonaError(`unsupported dtype ${JSON.stringify(e.dtype)} (float32, int32 or bool)`, place);
  }
  const q = e.quantization as Record<string, unknown> | undefined;
  if (q !== undefined) {
    if (q === null || typeof q !== 'object') throw new PersonaError('quantization is not an object', place);
    if (q.dtype === 'float16') {
      if (e.dtype !== 'float32') throw new PersonaError(`float16 quantization requires dtype float32, not ${e.dtype}`, place);
    } else if (q.dtype === 'uint8' || q.dtype === 'uint16') {
      if (typeof q.scale !== 'number' || typeof q.min !== 'number') throw new PersonaError(`${q.dtype} quantization needs numeric scale and min`, place);
    } else {
      throw new PersonaError(`unsupported quantization dtype ${JSON.stringify(q.dtype)} (float16, uint8 or uint16)`, place);
    }
  }
  return raw as ManifestEntry;
}

/** Open dir/model.json; validates the manifest and that each group's byte total equals its shards' sizes. */
export function openTfjsWeights(dir: string): WeightSource {
  const manifestPath = path.join(dir, 'model.json');
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch (e) {
    throw new PersonaError(`weights manifest is not valid JSON: ${(e as Error).message}`, { file: manifestPath });
  }
  const groups = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(groups)) throw new PersonaError('model.json lacks a weightsManifest array', { file: manifestPath, field: 'weightsManifest' });
  const located = new Map<string, Located>();
  const shards: { file: string; size: number }[][] = [];
  groups.forEach((g: unknown, gi: number) => {
    const field = `weightsManifest[${gi}]`;
    const grp = g as { paths?: unknown; weights?: unknown } | null;
    if (!grp || !Array.isArray(grp.paths) || !grp.paths.every((p) => typeof p === 'string')) {
      throw new PersonaError('group has no list of shard paths', { file: manifestPath, field: `${field}.paths` });
    }
    if (!Array.isArray(grp.weights)) throw new PersonaError('group has no weights list', { file: manifestPath, field: `${field}.weights` });
    const files = (grp.paths as string[]).map((p, pi) => {
      const file = path.join(dir, p);
      if (path.isAbsolute(p) || p.split(/[\\/]/).includes('..') || !fs.existsSync(file)) {
        throw new PersonaError(`shard '${p}' does not exist in ${dir}`, { file: manifestPath, field: `${field}.paths[${pi}]` });
      }
      return { file, size: fs.statSync(file).size };
    });
    let offset = 0;
    grp.weights.forEach((w: unknown, wi: number) => {
      const entry = validateEntry(w, manifestPath, `${field}.weights[${wi}]`);
      if (located.has(entry.name)) throw new PersonaError('weight name appears twice in the manifest', { file: manifestPath, tensor: entry.name });
      const bytes = entryBytes(entry);
      located.set(entry.name, { entry, group: gi, offset, bytes });
      offset += bytes;
    });
    const shardTotal = files.reduce((s, f) => s + f.size, 0);
    if (shardTotal !== offset) {
      throw new PersonaError(
        `weights need ${offset} bytes by shape and dtype but the ${files.length} shard file(s) hold ${shardTotal}`,
        { file: manifestPath, field },
      );
    }
    shards.push(files);
  });
  return new TfjsWeights(dir, manifestPath, located, shards);
}
