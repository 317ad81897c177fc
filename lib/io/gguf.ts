/**
 * llama.cpp control vectors in GGUF (v3), written the way llama.cpp's cvector-generator and repeng's
 * export_gguf write them, plus a reader for any GGUF holding float32 tensors (used for round trips).
 *
 * GGUF v3 layout (little-endian): "GGUF", u32 version=3, u64 tensor_count, u64 kv_count; kv pairs
 * (string key, u32 type, value); tensor infos (string name, u32 n_dims, u64 dims[n_dims] innermost first,
 * u32 ggml type, u64 offset into the data section); zero padding to `general.alignment` (default 32);
 * the data section, each tensor starting at a multiple of the alignment. Strings are u64 length + UTF-8.
 *
 * Control vector keys: general.architecture = "controlvector" (both writers above use this literal, not
 * the model family; the family goes in controlvector.model_hint, e.g. "llama", "qwen2"),
 * controlvector.layer_count = number of direction tensors; tensors "direction.<k>" float32 [n_embd].
 *
 * Layer index mapping. llama.cpp adds direction.<k> to the output of decoder block k (0-based, the
 * `l_out` of layer k: build_cvec(cur, il) at the end of block il); direction.0 is rejected by its loader,
 * so block 0 cannot be steered. repeng uses the same index: its layer k is model.layers[k], whose hidden
 * state it reads as hidden_states[k + 1]. In this project's convention a vector row L is Hugging Face
 * hidden_states[L] = output of decoder layer L-1, hence
 *     direction.<k>  <->  row k + 1,   k = 1 .. numLayers-1   (rows 2 .. numLayers)
 * Rows 0 (embeddings) and 1 (block 0) have no GGUF slot. One caveat: HF's last hidden state
 * (row numLayers) is taken after the final norm, while direction.<numLayers-1> is added before it.
 */
import * as fs from 'node:fs';
import { PersonaError } from '../errors';
import { writeFileAtomic } from './atomic';
import { decodeF16 } from './safetensors';

export const CONTROL_VECTOR_ARCH = 'controlvector';
const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types. */
export enum GgufType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
  ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}
/** ggml tensor type ids this module understands (F32 for writing; F16 also decoded on read). */
const GGML_F32 = 0;
const GGML_F16 = 1;

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  name: string;
  /** Dimensions as GGUF stores them (innermost first; a 1-D tensor is [n]). */
  dims: number[];
  data: Float32Array;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, { type: GgufType; value: GgufValue }>;
  tensors: GgufTensor[];
}

// ---------------------------------------------------------------------------------------------------
// Layer mapping

/** Our row index (HF hidden_states index) for llama.cpp's direction.<k>. */
export function rowForDirection(k: number): number {
  return k + 1;
}
/** llama.cpp's direction.<k> index for our row L (HF hidden_states[L]); rows 0 and 1 have none. */
export function directionForRow(row: number): number {
  return row - 1;
}

/** "2..5, 7" for sorted integers: runs of 2+ consecutive values collapse to a range. */
function formatRuns(xs: number[], prefix = ''): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(j > i ? `${prefix}${xs[i]}..${prefix}${xs[j]}` : `${prefix}${xs[i]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/**
 * One line saying which vector rows an export wrote to which direction.<k>, and why rows are missing.
 * `numRows` is the vector's row count (N+1), or undefined for a single-layer vector. The export itself
 * is silent about rows 0 and 1, so users would otherwise not know they were dropped.
 */
export function describeRowExport(rows: number[], numRows?: number): string {
  const sorted = [...rows].sort((a, b) => a - b);
  let line = `wrote ${sorted.length === 1 ? 'row' : 'rows'} ${formatRuns(sorted)} (hidden_states index) as llama.cpp control-vector ${formatRuns(sorted.map(directionForRow), 'direction.')}`;
  if (numRows !== undefined) {
    const skipped = Array.from({ length: numRows }, (_, i) => i).filter((L) => !sorted.includes(L));
    const early = skipped.filter((L) => L < 2);
    const other = skipped.filter((L) => L >= 2);
    const why: string[] = [];
    if (early.length) {
      const names = early.map((L) => (L === 0 ? 'row 0 (embedding output)' : 'row 1 (block 0 output)')).join(' and ');
      why.push(`skipped ${names}: llama.cpp steers only the outputs of decoder blocks 1.. (its loader rejects direction.0)`);
    }
    if (other.length) why.push(`skipped ${other.length === 1 ? 'row' : 'rows'} ${formatRuns(other)}: not requested`);
    if (why.length) line += `; ${why.join('; ')}`;
    const last = numRows - 1;
    // HF's last hidden state is taken after the final norm; llama.cpp adds the direction before it.
    if (sorted.includes(last) && last >= 2) line += `; row ${last} (HF's last hidden state, after the final norm) is added before the final norm in llama.cpp`;
  }
  return line;
}

// ---------------------------------------------------------------------------------------------------
// Writing

class Writer {
  private chunks: Buffer[] = [];
  length = 0;
  private push(b: Buffer) {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v: number | bigint) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  bytes(b: ArrayBufferView) { this.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength)); }
  pad(align: number) { const n = (align - (this.length % align)) % align; if (n) this.push(Buffer.alloc(n)); }
  concat(): Buffer { return Buffer.concat(this.chunks); }
}

export interface ControlVectorOptions {
  /** Model family (Hugging Face config model_type), e.g. "llama", "qwen2", "qwen3". */
  modelHint: string;
}

/**
 * Encode a control vector: `directions` maps llama.cpp layer index k (>= 1) to a float32 [n_embd]
 * direction. Tensors are written in increasing k.
 */
export function encodeControlVector(directions: Map<number, Float32Array>, opts: ControlVectorOptions, file?: string): Uint8Array {
  if (typeof opts.modelHint !== 'string' || opts.modelHint === '') throw new PersonaError('control vector needs a model hint (model family, e.g. "llama")', { file, field: 'controlvector.model_hint' });
  const layers = [...directions.keys()].sort((a, b) => a - b);
  if (layers.length === 0) throw new PersonaError('control vector has no directions', { file });
  let hidden = -1;
  for (const k of layers) {
    if (!Number.isInteger(k) || k < 1) {
      throw new PersonaError(`llama.cpp layer index ${k} is invalid: direction.<k> needs k >= 1 (block 0 cannot be steered)`, { file, tensor: `direction.${k}` });
    }
    const d = directions.get(k) as Float32Array;
    if (!(d instanceof Float32Array) || d.length === 0) throw new PersonaError('direction must be a non-empty Float32Array', { file, tensor: `direction.${k}` });
    if (hidden === -1) hidden = d.length;
    else if (d.length !== hidden) throw new PersonaError(`direction has ${d.length} values, others have ${hidden}`, { file, tensor: `direction.${k}` });
  }
  const w = new Writer();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(layers.length); // tensors
  w.u64(3); // kv pairs
  w.str('general.architecture'); w.u32(GgufType.STRING); w.str(CONTROL_VECTOR_ARCH);
  w.str(`${CONTROL_VECTOR_ARCH}.model_hint`); w.u32(GgufType.STRING); w.str(opts.modelHint);
  // int32, as llama.cpp's cvector-generator writes it (repeng writes uint32; readers accept either).
  w.str(`${CONTROL_VECTOR_ARCH}.layer_count`); w.u32(GgufType.INT32); w.i32(layers.length);
  const tensorBytes = hidden * 4;
  const stride = Math.ceil(tensorBytes / DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
  layers.forEach((k, i) => {
    w.str(`direction.${k}`);
    w.u32(1);
    w.u64(hidden);
    w.u32(GGML_F32);
    w.u64(i * stride);
  });
  w.pad(DEFAULT_ALIGNMENT);
  for (const k of layers) {
    w.bytes(directions.get(k) as Float32Array);
    w.pad(DEFAULT_ALIGNMENT);
  }
  return w.concat();
}

export function writeControlVector(file: string, directions: Map<number, Float32Array>, opts: ControlVectorOptions): void {
  writeFileAtomic(file, encodeControlVector(directions, opts, file));
}

// ---------------------------------------------------------------------------------------------------
// Reading

/** Parse a GGUF (v2 or v3) whose tensors are F32 or F16. */
export function parseGguf(buf: Uint8Array, file: string): GgufFile {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const fail = (msg: string, place: { field?: string; tensor?: string } = {}): never => {
    throw new PersonaError(msg, { file, ...place });
  };
  const need = (n: number, what: string) => {
    if (pos + n > buf.length) fail(`file ends at byte ${buf.length} while reading ${what} at byte ${pos} (truncated?)`);
  };
  const u32 = (what: string) => { need(4, what); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const u64 = (what: string) => {
    need(8, what);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is implausibly large`);
    return Number(v);
  };
  const str = (what: string) => {
    const n = u64(`${what} length`);
    need(n, what);
    const s = Buffer.from(buf.subarray(pos, pos + n)).toString('utf8');
    pos += n;
    return s;
  };
  const value = (type: number, key: string): GgufValue => {
    const what = `value of ${key}`;
    switch (type) {
      case GgufType.UINT8: need(1, what); return dv.getUint8(pos++);
      case GgufType.INT8: need(1, what); return dv.getInt8(pos++);
      case GgufType.UINT16: { need(2, what); const v = dv.getUint16(pos, true); pos += 2; return v; }
      case GgufType.INT16: { need(2, what); const v = dv.getInt16(pos, true); pos += 2; return v; }
      case GgufType.UINT32: return u32(what);
      case GgufType.INT32: { need(4, what); const v = dv.getInt32(pos, true); pos += 4; return v; }
      case GgufType.FLOAT32: { need(4, what); const v = dv.getFloat32(pos, true); pos += 4; return v; }
      case GgufType.BOOL: need(1, what); return dv.getUint8(pos++) !== 0;
      case GgufType.STRING: return str(what);
      case GgufType.UINT64: { need(8, what); const v = dv.getBigUint64(pos, true); pos += 8; return v; }
      case GgufType.INT64: { need(8, what); const v = dv.getBigInt64(pos, true); pos += 8; return v; }
      case GgufType.FLOAT64: { need(8, what); const v = dv.getFloat64(pos, true); pos += 8; return v; }
      case GgufType.ARRAY: {
        const itemType = u32(`${what} item type`);
        const n = u64(`${what} item count`);
        const out: GgufValue[] = [];
        for (let i = 0; i < n; i++) out.push(value(itemType, key));
        return out;
      }
      default:
        return fail(`unknown GGUF value type ${type}`, { field: key });
    }
  };

  need(8, 'header');
  if (dv.getUint32(0, true) !== GGUF_MAGIC) fail(`not a GGUF file (magic ${Buffer.from(buf.subarray(0, 4)).toString('hex')})`);
  pos = 4;
  const version = u32('version');
  if (version !== 2 && version !== 3) fail(`GGUF version ${version} is not supported (2 or 3)`);
  const tensorCount = u64('tensor count');
  const kvCount = u64('metadata count');
  const metadata = new Map<string, { type: GgufType; value: GgufValue }>();
  for (let i = 0; i < kvCount; i++) {
    const key = str('metadata key');
    const type = u32(`type of ${key}`);
    metadata.set(key, { type, value: value(type, key) });
  }
  const alignEntry = metadata.get('general.alignment');
  const alignment = alignEntry ? Number(alignEntry.value) : DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0) fail(`general.alignment is ${alignEntry?.value}`, { field: 'general.alignment' });
  const infos: { name: string; dims: number[]; type: number; offset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str('tensor name');
    const nDims = u32(`dimension count of ${name}`);
    if (nDims > 4) fail(`tensor has ${nDims} dimensions (GGUF allows at most 4)`, { tensor: name });
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(u64(`dimension of ${name}`));
    const type = u32(`type of ${name}`);
    const offset = u64(`offset of ${name}`);
    infos.push({ name, dims, type, offset });
  }
  const dataStart = Math.ceil(pos / alignment) * alignment;
  const tensors: GgufTensor[] = infos.map(({ name, dims, type, offset }) => {
    const numel = dims.reduce((a, b) => a * b, 1);
    if (type !== GGML_F32 && type !== GGML_F16) fail(`ggml type ${type} is not supported (F32 or F16 only)`, { tensor: name });
    const itemBytes = type === GGML_F32 ? 4 : 2;
    const begin = dataStart + offset;
    const end = begin + numel * itemBytes;
    if (offset % alignment !== 0) fail(`data offset ${offset} is not a multiple of the alignment ${alignment}`, { tensor: name });
    if (end > buf.length) fail(`data [${begin}, ${end}) runs past the end of the ${buf.length}-byte file (truncated?)`, { tensor: name });
    const bytes = new Uint8Array(end - begin); // an aligned copy (Buffer#slice would be a view)
    bytes.set(buf.subarray(begin, end));
    const data = type === GGML_F32 ? new Float32Array(bytes.buffer, 0, numel) : decodeF16(new Uint16Array(bytes.buffer, 0, numel));
    return { name, dims, data };
  });
  return { version, metadata, tensors };
}

export function readGguf(file: string): GgufFile {
  let buf: Uint8Array;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new PersonaError(`cannot read GGUF file: ${(e as Error).message}`, { file });
  }
  return parseGguf(buf, file);
}

export interface ControlVector {
  architecture: string | undefined;
  modelHint: string | undefined;
  layerCount: number | undefined;
  hidden: number;
  /** llama.cpp layer index k -> direction.<k>. */
  directions: Map<number, Float32Array>;
}

/** Read a control vector GGUF: every "direction.<k>" tensor (1-D, one hidden size, k >= 1). */
export function readControlVector(file: string): ControlVector {
  const g = readGguf(file);
  const str = (key: string) => { const e = g.metadata.get(key); return e && typeof e.value === 'string' ? e.value : undefined; };
  const lc = g.metadata.get(`${CONTROL_VECTOR_ARCH}.layer_count`);
  const directions = new Map<number, Float32Array>();
  let hidden = -1;
  for (const t of g.tensors) {
    const m = /^direction\.(\d+)$/.exec(t.name);
    if (!m) continue;
    const k = Number(m[1]);
    if (k < 1) throw new PersonaError('direction.0 is invalid (llama.cpp cannot steer block 0)', { file, tensor: t.name });
    if (t.dims.length !== 1) throw new PersonaError(`direction has dims [${t.dims.join(', ')}], expected 1-D`, { file, tensor: t.name });
    if (hidden === -1) hidden = t.dims[0];
    else if (t.dims[0] !== hidden) throw new PersonaError(`direction has ${t.dims[0]} values, others have ${hidden}`, { file, tensor: t.name });
    directions.set(k, t.data);
  }
  if (directions.size === 0) throw new PersonaError('no direction.<k> tensors: not a control vector', { file });
  return {
    architecture: str('general.architecture'),
    modelHint: str(`${CONTROL_VECTOR_ARCH}.model_hint`),
    layerCount: lc ? Number(lc.value) : undefined,
    hidden,
    directions,
  };
}
