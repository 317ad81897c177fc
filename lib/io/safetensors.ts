import * as fs from 'node:fs';
import { PersonaError } from '../errors';
import { writeFileAtomicChunks } from './atomic';

/**
 * The safetensors format (https://huggingface.co/docs/safetensors): u64 little-endian header length N,
 * N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}},
 * then the data buffer; offsets are relative to the start of the data buffer. All data little-endian.
 */

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element. */
export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Order of the dtypes in the reference (Rust) library's enum; it writes larger-alignment dtypes first. */
const DTYPE_RANK: Record<SafetensorsDtype, number> = {
  BOOL: 0, U8: 1, I8: 2, I16: 3, F16: 4, BF16: 5, I32: 6, F32: 7, F64: 8, I64: 9,
};

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

/** The reference library refuses headers over 100 MB; so do we, before allocating for one. */
const MAX_HEADER_BYTES = 100_000_000;

export function numElements(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

function isShape(s: unknown): s is number[] {
  return Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Read exactly `length` bytes at `position` into `dest`, or return how many were available. */
export function readFully(fd: number, dest: Uint8Array, position: number): number {
  let got = 0;
  while (got < dest.byteLength) {
    const n = fs.readSync(fd, dest, got, dest.byteLength - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  /** Byte offset of the data buffer (8 + header length). */
  readonly dataStart: number;
  private readonly tensors: Map<string, TensorInfo>;
  private fd: number | undefined;

  private constructor(path: string, fd: number, metadata: Record<string, string>, tensors: Map<string, TensorInfo>, dataStart: number) {
    this.path = path;
    this.fd = fd;
    this.metadata = metadata;
    this.tensors = tensors;
    this.dataStart = dataStart;
  }

  /** Reads and validates only the header; tensor data is read on demand by read(). */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw new PersonaError(`cannot open safetensors file: ${(e as Error).message}`, { file: path });
    }
    try {
      const { metadata, tensors, dataStart } = parseHeader(path, fd);
      return new SafetensorsFile(path, fd, metadata, tensors, dataStart);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new PersonaError('no such tensor in file', { file: this.path, tensor: name });
    return t;
  }

  /** Raw little-endian bytes of one tensor, read from its byte range only. */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    if (this.fd === undefined) throw new PersonaError('file is closed', { file: this.path, tensor: name });
    // A fresh ArrayBuffer is 8-byte aligned, so typed-array views of any dtype work without copying.
    const bytes = new Uint8Array(new ArrayBuffer(t.end - t.begin));
    const got = readFully(this.fd, bytes, t.begin);
    if (got !== bytes.byteLength) {
      throw new PersonaError(`file ended after ${got} of ${bytes.byteLength} data bytes (was it truncated after opening?)`, { file: this.path, tensor: name });
    }
    return bytes;
  }

  /** One tensor as float32, whatever its stored dtype (integers and bools are converted by value). */
  read(name: string): Float32Array {
    const t = this.info(name);
    return decodeToF32(this.readBytes(name), t.dtype);
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }
}

function parseHeader(path: string, fd: number): { metadata: Record<string, string>; tensors: Map<string, TensorInfo>; dataStart: number } {
  const fileSize = fs.fstatSync(fd).size;
  const lenBytes = new Uint8Array(8);
  if (readFully(fd, lenBytes, 0) < 8) {
    throw new PersonaError(`file is ${fileSize} bytes, too short for the 8-byte header length`, { file: path });
  }
  const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (headerLen > BigInt(fileSize - 8)) {
    throw new PersonaError(`header length ${headerLen} (first 8 bytes) runs beyond the end of the ${fileSize}-byte file`, { file: path });
  }
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new PersonaError(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`, { file: path });
  }
  const n = Number(headerLen);
  const headerBytes = new Uint8Array(n);
  readFully(fd, headerBytes, 8);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(headerBytes).toString('utf8'));
  } catch (e) {
    throw new PersonaError(`header is not valid JSON: ${(e as Error).message}`, { file: path });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new PersonaError('header is not a JSON object', { file: path });
  }
  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
        throw new PersonaError('__metadata__ must be an object of string values', { file: path, field: '__metadata__' });
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const place = { file: path, tensor: name };
    if (entry === null || typeof entry !== 'object') throw new PersonaError('header entry is not an object', place);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (!isDtype(dtype)) {
      throw new PersonaError(`unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`, place);
    }
    if (!isShape(shape)) throw new PersonaError(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`, place);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new PersonaError(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`, place);
    }
    const [b, e] = offsets as [number, number];
    const expected = numElements(shape) * DTYPE_BYTES[dtype];
    if (e - b !== expected) {
      throw new PersonaError(`data_offsets [${b}, ${e}] span ${e - b} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${expected}`, place);
    }
    if (e > dataLen) {
      throw new PersonaError(`data range [${b}, ${e}) runs beyond the end of the data (${dataLen} bytes; file truncated?)`, place);
    }
    tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  // Overlapping ranges mean a corrupt header (the reference library also requires this).
  const byOffset = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byOffset.length; i++) {
    if (byOffset[i].begin < byOffset[i - 1].end) {
      throw new PersonaError(`data range overlaps tensor '${byOffset[i - 1].name}'`, { file: path, tensor: byOffset[i].name });
    }
  }
  return { metadata, tensors, dataStart };
}

/** Convert little-endian bytes of `dtype` to float32 (assumes a little-endian host, as is every Node target). */
export function decodeToF32(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const buf = bytes.buffer;
  const off = bytes.byteOffset;
  const count = bytes.byteLength / DTYPE_BYTES[dtype];
  // Unaligned views throw; copy once if the caller handed an unaligned slice.
  if (off % DTYPE_BYTES[dtype] !== 0) return decodeToF32(bytes.slice(), dtype);
  switch (dtype) {
    case 'F32': return new Float32Array(buf, off, count);
    case 'F16': return decodeF16(new Uint16Array(buf, off, count));
    case 'BF16': return decodeBf16(new Uint16Array(buf, off, count));
    case 'F64': return Float32Array.from(new Float64Array(buf, off, count));
    case 'I64': {
      const src = new BigInt64Array(buf, off, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      return out;
    }
    case 'I32': return Float32Array.from(new Int32Array(buf, off, count));
    case 'I16': return Float32Array.from(new Int16Array(buf, off, count));
    case 'I8': return Float32Array.from(new Int8Array(buf, off, count));
    case 'U8': return Float32Array.from(new Uint8Array(buf, off, count));
    case 'BOOL': return Float32Array.from(new Uint8Array(buf, off, count), (v) => (v ? 1 : 0));
  }
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** Integer values (token ids): I64 is what torch and Hugging Face use for input_ids. */
export interface IntTensorToWrite {
  shape: number[];
  data: Int32Array;
  dtype: 'I32' | 'I64';
}

function encodeInt(data: Int32Array, dtype: 'I32' | 'I64'): Uint8Array {
  if (dtype === 'I32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const wide = BigInt64Array.from(data, (x) => BigInt(x));
  return new Uint8Array(wide.buffer);
}

/** float32 values encoded as `dtype`, as the bytes to put in the file. */
export function encodeFromF32(data: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bits = dtype === 'F16' ? encodeF16(data) : encodeBf16(data);
  return new Uint8Array(bits.buffer);
}

/**
 * Write a safetensors file atomically. Layout as the reference library writes it: tensors ordered by
 * dtype (larger alignment first) then name, header padded with spaces to a multiple of 8 bytes so every
 * tensor's data stays aligned. Each tensor is encoded only while it is written.
 */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite | IntTensorToWrite>, metadata?: Record<string, string>): void {
  const entries = Object.entries(tensors).map(([name, t]) => {
    const dtype = t.dtype ?? 'F32';
    if (!isDtype(dtype) || !['F32', 'F16', 'BF16', 'I32', 'I64'].includes(dtype)) {
      throw new PersonaError(`cannot write dtype ${JSON.stringify(dtype)} (F32, F16, BF16, I32 or I64)`, { file: path, tensor: name });
    }
    if (!isShape(t.shape)) throw new PersonaError(`shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`, { file: path, tensor: name });
    const int = dtype === 'I32' || dtype === 'I64';
    if (int ? !(t.data instanceof Int32Array) : !(t.data instanceof Float32Array)) throw new PersonaError(`data must be ${int ? 'an Int32Array' : 'a Float32Array'} for ${dtype}`, { file: path, tensor: name });
    if (t.data.length !== numElements(t.shape)) {
      throw new PersonaError(`data has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${numElements(t.shape)}`, { file: path, tensor: name });
    }
    return { name, dtype, shape: t.shape, data: t.data };
  });
  entries.sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new PersonaError('metadata values must be strings', { file: path, field: `__metadata__.${k}` });
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const e of entries) {
    const bytes = numElements(e.shape) * DTYPE_BYTES[e.dtype];
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBuf = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.byteLength));
  writeFileAtomicChunks(path, (function* () {
    yield lenBuf;
    yield headerBuf;
    for (const e of entries) yield e.dtype === 'I32' || e.dtype === 'I64' ? encodeInt(e.data as Int32Array, e.dtype) : encodeFromF32(e.data as Float32Array, e.dtype);
  })());
}

// Bit-level conversions between float32 and the 16-bit float formats; hand-written because Node 20 has no Float16Array and each is a few lines.


const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

let f16Table: Float32Array | undefined;

/** All 65536 half values as float32; a table lookup is the fastest decode in JS. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  f16Table = t;
  return t;
}

export function f16BitsToF32(bits: number): number {
  return halfTable()[bits & 0xffff];
}

/** IEEE binary16 bits of v, rounding to nearest even; overflow gives ±inf, NaN stays NaN. */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = m * 2^-24 with m = mant24 >> (14 - e).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rem > half || (rem === half && m & 1)) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is the correct rounding (up to inf)
  return h;
}

export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** bfloat16 bits of v, rounding to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function decodeF16(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const t = halfTable();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

export function decodeBf16(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const o32 = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) o32[i] = src[i] << 16;
  return out;
}

export function encodeF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}

export function encodeBf16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]);
  return out;
}
