/**
 * Read and write single-tensor PyTorch `.pt` files (the format of the paper's persona vectors).
 *
 * torch.save (zip format, PyTorch >= 1.6) writes a stored (uncompressed) zip whose entries all live under
 * one directory `<archive>/`:
 *   data.pkl                pickle (protocol 2): _rebuild_tensor_v2(storage, offset, size, stride,
 *                           requires_grad, OrderedDict()), where `storage` is a persistent id
 *                           ('storage', torch.<Type>Storage, key, location, numel)
 *   byteorder               "little"
 *   data/<key>              raw storage bytes
 *   version                 "3\n"
 *   .data/serialization_id  40 decimal digits
 * Every entry's data starts on a 64-byte boundary (padding in a local-header extra field "FB"), sizes
 * come in a data descriptor after the data, and the archive ends with zip64 end-of-directory records.
 *
 * The reader interprets only the pickle opcodes such files contain and refuses anything else by name:
 * a general unpickler would also run arbitrary globals, which a data file must not be able to do.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { unzipSync } from 'fflate';
import { PersonaError } from '../errors';
import { writeFileAtomic } from './atomic';
import { decodeBf16, decodeF16 } from './safetensors';

export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

export interface TorchTensor {
  dtype: TorchDtype;
  shape: number[];
  /** Values converted to float32, row-major. */
  data: Float32Array;
}

const STORAGE_DTYPES: Record<string, { dtype: TorchDtype; bytes: number }> = {
  FloatStorage: { dtype: 'float32', bytes: 4 },
  HalfStorage: { dtype: 'float16', bytes: 2 },
  BFloat16Storage: { dtype: 'bfloat16', bytes: 2 },
};

// ---------------------------------------------------------------------------------------------------
// Reading

export function readTorchPt(file: string): TorchTensor {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new PersonaError(`cannot read .pt file: ${(e as Error).message}`, { file });
  }
  return parseTorchPt(bytes, file);
}

/** Parse the bytes of a .pt file; `file` is only used to name it in errors. */
export function parseTorchPt(bytes: Uint8Array, file: string): TorchTensor {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new PersonaError(`not a readable torch.save zip archive (truncated or corrupt?): ${(e as Error).message}`, { file });
  }
  const pklName = Object.keys(entries).find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pklName === undefined) {
    const kind = Object.keys(entries).length === 0 ? 'an empty zip' : `a zip without data.pkl (entries: ${Object.keys(entries).slice(0, 5).join(', ')})`;
    throw new PersonaError(`is ${kind}; expected a torch.save archive`, { file });
  }
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const byteorder = entries[`${prefix}byteorder`];
  // Archives from before PyTorch 2.1 have no byteorder record; they were written little-endian.
  if (byteorder !== undefined && Buffer.from(byteorder).toString('latin1') !== 'little') {
    throw new PersonaError(`byteorder is '${Buffer.from(byteorder).toString('latin1')}'; only little-endian archives are supported`, { file, field: `${prefix}byteorder` });
  }
  const root = unpickle(entries[pklName], `${file}:${pklName}`);
  if (!(root instanceof TensorRef)) {
    throw new PersonaError(`data.pkl holds ${describe(root)}, not a single tensor`, { file });
  }
  return materialize(root, entries, prefix, file);
}

class Global {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
class StorageRef {
  constructor(readonly storageType: string, readonly key: string, readonly location: string, readonly numel: number) {}
}
class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly size: number[], readonly stride: number[]) {}
}
class Mark {}
const MARK = new Mark();
/** OrderedDict() — the (always empty) backward-hooks argument. */
const EMPTY_ORDERED_DICT = Object.freeze({ kind: 'OrderedDict' as const });

type PyValue = string | number | boolean | null | PyValue[] | Global | StorageRef | TensorRef | typeof EMPTY_ORDERED_DICT;

function describe(v: unknown): string {
  if (v instanceof Global) return `global ${v.qualified}`;
  if (v instanceof StorageRef) return 'a bare storage';
  if (Array.isArray(v)) return `a tuple of ${v.length}`;
  if (v === EMPTY_ORDERED_DICT) return 'an OrderedDict';
  return `${typeof v} ${JSON.stringify(v)}`;
}

const ALLOWED_GLOBALS = new Set([
  'torch._utils._rebuild_tensor_v2',
  'collections.OrderedDict',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

const OPCODE_NAMES: Record<number, string> = {
  0x80: 'PROTO', 0x63: 'GLOBAL', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT', 0x68: 'BINGET', 0x6a: 'LONG_BINGET',
  0x28: 'MARK', 0x58: 'BINUNICODE', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x4a: 'BININT', 0x4b: 'BININT1', 0x4d: 'BININT2', 0x51: 'BINPERSID', 0x88: 'NEWTRUE',
  0x89: 'NEWFALSE', 0x52: 'REDUCE', 0x2e: 'STOP',
  // Names of common opcodes we refuse, so the error message says what was found.
  0x7d: 'EMPTY_DICT', 0x5d: 'EMPTY_LIST', 0x75: 'SETITEMS', 0x73: 'SETITEM', 0x65: 'APPENDS', 0x61: 'APPEND',
  0x4e: 'NONE', 0x62: 'BUILD', 0x81: 'NEWOBJ', 0x95: 'FRAME', 0x8c: 'SHORT_BINUNICODE', 0x94: 'MEMOIZE',
  0x93: 'STACK_GLOBAL', 0x8a: 'LONG1', 0x47: 'BINFLOAT', 0x55: 'SHORT_BINSTRING', 0x54: 'BINSTRING',
  0x69: 'INST', 0x6f: 'OBJ', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x50: 'PERSID', 0x49: 'INT',
  0x4c: 'LONG', 0x56: 'UNICODE', 0x53: 'STRING', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8e: 'BINBYTES8',
  0x8d: 'BINUNICODE8', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x67: 'GET', 0x70: 'PUT', 0x82: 'EXT1',
  0x83: 'EXT2', 0x84: 'EXT4', 0x8b: 'LONG4', 0x64: 'DICT', 0x6c: 'LIST',
};

/**
 * A pickle VM restricted to the opcodes of a torch.save'd single tensor (protocol 2). Any other opcode
 * or global is an error naming the file, the opcode and its byte position.
 */
function unpickle(pkl: Uint8Array, where: string): PyValue {
  const dv = new DataView(pkl.buffer, pkl.byteOffset, pkl.byteLength);
  const stack: (PyValue | Mark)[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;
  const fail = (msg: string, at = pos): never => {
    throw new PersonaError(`pickle byte ${at}: ${msg}`, { file: where });
  };
  const need = (n: number, at: number, op: string) => {
    if (pos + n > pkl.length) fail(`${op} runs past the end of the ${pkl.length}-byte pickle`, at);
  };
  const pop = (at: number, op: string): PyValue => {
    const v = stack.pop();
    if (v === undefined || v instanceof Mark) fail(`${op} found ${v === undefined ? 'an empty stack' : 'a MARK'}`, at);
    return v as PyValue;
  };
  const popToMark = (at: number, op: string): PyValue[] => {
    let i = stack.length - 1;
    while (i >= 0 && !(stack[i] instanceof Mark)) i--;
    if (i < 0) fail(`${op} without a MARK`, at);
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const readLine = (at: number, op: string): string => {
    const end = pkl.indexOf(0x0a, pos);
    if (end < 0) fail(`${op} argument is not newline-terminated`, at);
    const s = Buffer.from(pkl.subarray(pos, end)).toString('utf8');
    pos = end + 1;
    return s;
  };

  while (pos < pkl.length) {
    const at = pos;
    const op = pkl[pos++];
    const name = OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
    switch (op) {
      case 0x80: { // PROTO
        need(1, at, name);
        const proto = pkl[pos++];
        if (proto > 2) fail(`pickle protocol ${proto}; torch.save writes protocol 2`, at);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const g = new Global(readLine(at, name), readLine(at, name));
        if (!ALLOWED_GLOBALS.has(g.qualified)) fail(`unsupported global ${g.qualified} (only a saved float32/float16/bfloat16 tensor is supported)`, at);
        stack.push(g);
        break;
      }
      case 0x71: // BINPUT
        need(1, at, name);
        if (stack.length === 0) fail('BINPUT on an empty stack', at);
        memo.set(pkl[pos++], stack[stack.length - 1] as PyValue);
        break;
      case 0x72: // LONG_BINPUT
        need(4, at, name);
        if (stack.length === 0) fail('LONG_BINPUT on an empty stack', at);
        memo.set(dv.getUint32(pos, true), stack[stack.length - 1] as PyValue);
        pos += 4;
        break;
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const wide = op === 0x6a;
        need(wide ? 4 : 1, at, name);
        const idx = wide ? dv.getUint32(pos, true) : pkl[pos];
        pos += wide ? 4 : 1;
        if (!memo.has(idx)) fail(`${name} of memo slot ${idx}, which was never stored`, at);
        stack.push(memo.get(idx) as PyValue);
        break;
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x58: { // BINUNICODE
        need(4, at, name);
        const n = dv.getUint32(pos, true);
        pos += 4;
        need(n, at, name);
        stack.push(Buffer.from(pkl.subarray(pos, pos + n)).toString('utf8'));
        pos += n;
        break;
      }
      case 0x74: stack.push(popToMark(at, name)); break; // TUPLE
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x85: case 0x86: case 0x87: { // TUPLE1..3
        const n = op - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop(at, name));
        stack.push(items);
        break;
      }
      case 0x4a: need(4, at, name); stack.push(dv.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: need(1, at, name); stack.push(pkl[pos]); pos += 1; break; // BININT1
      case 0x4d: need(2, at, name); stack.push(dv.getUint16(pos, true)); pos += 2; break; // BININT2
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x51: { // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = pop(at, name);
        if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage' || !(pid[1] instanceof Global)
          || typeof pid[2] !== 'string' || typeof pid[3] !== 'string' || typeof pid[4] !== 'number') {
          fail(`persistent id is ${describe(pid)}, expected ('storage', torch.<Type>Storage, key, location, numel)`, at);
        }
        const p = pid as [string, Global, string, string, number];
        if (p[1].module !== 'torch' || !(p[1].name in STORAGE_DTYPES)) fail(`unsupported storage type ${p[1].qualified}`, at);
        stack.push(new StorageRef(p[1].name, p[2], p[3], p[4]));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(at, name);
        const fn = pop(at, name);
        if (!(fn instanceof Global) || !Array.isArray(args)) fail(`REDUCE of ${describe(fn)} with ${describe(args)}`, at);
        stack.push(reduce(fn as Global, args as PyValue[], (m) => fail(m, at)));
        break;
      }
      case 0x2e: { // STOP
        const result = pop(at, name);
        if (stack.length !== 0) fail(`STOP with ${stack.length} extra item(s) on the stack`, at);
        return result;
      }
      default:
        fail(`unsupported pickle opcode ${name} (0x${op.toString(16).padStart(2, '0')}); this reader handles only the opcodes torch.save emits for one tensor`, at);
    }
  }
  return fail('pickle ends without STOP');
}

function isIntList(v: PyValue): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0);
}

function reduce(fn: Global, args: PyValue[], fail: (msg: string) => never): PyValue {
  switch (fn.qualified) {
    case 'collections.OrderedDict':
      if (args.length !== 0) fail('OrderedDict with items (tensor backward hooks) is not supported');
      return EMPTY_ORDERED_DICT;
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.length < 6 || args.length > 7) fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
      const [storage, offset, size, stride] = args;
      if (!(storage instanceof StorageRef)) fail(`_rebuild_tensor_v2 storage argument is ${describe(storage)}`);
      if (typeof offset !== 'number') fail(`_rebuild_tensor_v2 storage offset is ${describe(offset)}`);
      if (!isIntList(size) || !isIntList(stride) || size.length !== stride.length) {
        fail(`_rebuild_tensor_v2 size ${describe(size)} / stride ${describe(stride)} are not matching integer tuples`);
      }
      return new TensorRef(storage as StorageRef, offset as number, size as number[], stride as number[]);
    }
    default:
      return fail(`cannot call ${fn.qualified}`);
  }
}

function materialize(t: TensorRef, entries: Record<string, Uint8Array>, prefix: string, file: string): TorchTensor {
  const entryName = `${prefix}data/${t.storage.key}`;
  const raw = entries[entryName];
  if (raw === undefined) throw new PersonaError(`storage record ${entryName} is missing from the archive`, { file });
  const { dtype, bytes: itemBytes } = STORAGE_DTYPES[t.storage.storageType];
  if (raw.byteLength !== t.storage.numel * itemBytes) {
    throw new PersonaError(`storage holds ${raw.byteLength} bytes but data.pkl declares ${t.storage.numel} ${dtype} elements`, { file, tensor: entryName });
  }
  const numel = t.size.reduce((a, b) => a * b, 1);
  // Only row-major contiguous tensors (what torch.save writes for a plain .contiguous() tensor); a strided
  // view would need a gather, and no file of the paper uses one. Size-1 dims may carry any stride.
  let expected = 1;
  for (let i = t.size.length - 1; i >= 0; i--) {
    if (t.size[i] !== 1 && t.stride[i] !== expected) {
      throw new PersonaError(`tensor with size [${t.size.join(', ')}] has stride [${t.stride.join(', ')}]; only contiguous tensors are supported`, { file });
    }
    expected *= t.size[i];
  }
  if (t.offset < 0 || t.offset + numel > t.storage.numel) {
    throw new PersonaError(`tensor [${t.size.join(', ')}] at storage offset ${t.offset} runs past the ${t.storage.numel}-element storage`, { file, tensor: entryName });
  }
  // Copy into fresh aligned memory: zip entries may start at any byte offset.
  const slice = new Uint8Array(numel * itemBytes);
  slice.set(raw.subarray(t.offset * itemBytes, (t.offset + numel) * itemBytes));
  const data = dtype === 'float32' ? new Float32Array(slice.buffer, 0, numel)
    : dtype === 'float16' ? decodeF16(new Uint16Array(slice.buffer, 0, numel))
      : decodeBf16(new Uint16Array(slice.buffer, 0, numel));
  return { dtype, shape: [...t.size], data };
}

// ---------------------------------------------------------------------------------------------------
// Writing

/** Pickle bytes for one contiguous float32 tensor, in the opcode sequence torch.save (protocol 2) emits. */
function tensorPickle(shape: number[], numel: number): Uint8Array {
  const out: number[] = [];
  const bytes = (...b: number[]) => out.push(...b);
  const ascii = (s: string) => { for (const c of Buffer.from(s, 'utf8')) out.push(c); };
  let memoNext = 0;
  const put = () => bytes(0x71, memoNext++); // BINPUT: torch memoizes every object it pickles
  const global = (mod: string, name: string) => { bytes(0x63); ascii(`${mod}\n${name}\n`); put(); };
  const unicode = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    bytes(0x58, b.length & 0xff, (b.length >>> 8) & 0xff, (b.length >>> 16) & 0xff, b.length >>> 24);
    ascii(s);
    put();
  };
  const int = (n: number) => {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new PersonaError(`cannot pickle size value ${n} (0 .. 2^31-1)`);
    if (n <= 0xff) bytes(0x4b, n);
    else if (n <= 0xffff) bytes(0x4d, n & 0xff, n >>> 8);
    else bytes(0x4a, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  };
  const tuple = (items: number[]) => {
    if (items.length === 0) bytes(0x29); // EMPTY_TUPLE (not memoized by pickle)
    else {
      if (items.length > 3) bytes(0x28);
      items.forEach(int);
      bytes(items.length <= 3 ? 0x84 + items.length : 0x74);
      put();
    }
  };
  const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));

  bytes(0x80, 2); // PROTO 2
  global('torch._utils', '_rebuild_tensor_v2');
  bytes(0x28); // MARK: arguments of _rebuild_tensor_v2
  bytes(0x28); // MARK: persistent id tuple
  unicode('storage');
  global('torch', 'FloatStorage');
  unicode('0');
  unicode('cpu');
  int(numel);
  bytes(0x74); put(); // TUPLE
  bytes(0x51); // BINPERSID
  int(0); // storage offset
  tuple(shape);
  tuple(stride);
  bytes(0x89); // NEWFALSE: requires_grad
  global('collections', 'OrderedDict');
  bytes(0x29, 0x52); put(); // EMPTY_TUPLE, REDUCE -> OrderedDict()
  bytes(0x74); put(); // TUPLE of the arguments
  bytes(0x52); put(); // REDUCE -> tensor
  bytes(0x2e); // STOP
  return Uint8Array.from(out);
}

function crc32(data: Uint8Array): number {
  if (typeof zlib.crc32 !== 'function') throw new PersonaError('writing .pt files needs Node >= 20.15 (zlib.crc32)');
  return zlib.crc32(data) >>> 0;
}

/**
 * A stored zip laid out as PyTorch's writer lays it out (fflate cannot put PyTorch's 64-byte alignment
 * padding in the local header only, so the few fixed-size records are written by hand).
 */
function torchZip(records: [string, Uint8Array][]): Uint8Array {
  const ALIGN = 64;
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const push = (b: Uint8Array) => { chunks.push(b); offset += b.byteLength; };
  for (const [name, data] of records) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const headerStart = offset;
    // Extra field "FB" + u16 length + 'Z' padding so that the data starts on a 64-byte boundary.
    const beforePad = headerStart + 30 + nameBytes.length + 4;
    const pad = (ALIGN - (beforePad % ALIGN)) % ALIGN;
    const local = Buffer.alloc(30 + nameBytes.length + 4 + pad);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(0, 4); // version needed
    local.writeUInt16LE(0x0808, 6); // flags: sizes in data descriptor (bit 3), UTF-8 names (bit 11)
    local.writeUInt16LE(0, 8); // method: stored
    // time, date, crc, sizes stay 0 (they follow in the data descriptor)
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(4 + pad, 28);
    nameBytes.copy(local, 30);
    local.write('FB', 30 + nameBytes.length, 'latin1');
    local.writeUInt16LE(pad, 30 + nameBytes.length + 2);
    local.fill(0x5a, 30 + nameBytes.length + 4); // 'Z'
    push(local);
    push(data);
    const desc = Buffer.alloc(16);
    desc.writeUInt32LE(0x08074b50, 0);
    desc.writeUInt32LE(crc, 4);
    desc.writeUInt32LE(data.byteLength, 8);
    desc.writeUInt32LE(data.byteLength, 12);
    push(desc);
    const cd = Buffer.alloc(46 + nameBytes.length);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(0, 4); // version made by
    cd.writeUInt16LE(0, 6); // version needed
    cd.writeUInt16LE(0x0808, 8);
    cd.writeUInt16LE(0, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.byteLength, 20);
    cd.writeUInt32LE(data.byteLength, 24);
    cd.writeUInt16LE(nameBytes.length, 28);
    cd.writeUInt32LE(headerStart, 42);
    nameBytes.copy(cd, 46);
    central.push(cd);
  }
  if (offset > 0xffffffff) throw new PersonaError('tensor too large for this .pt writer (4 GiB)');
  const cdStart = offset;
  for (const cd of central) push(cd);
  const cdSize = offset - cdStart;
  const zip64At = offset;
  const z64 = Buffer.alloc(56);
  z64.writeUInt32LE(0x06064b50, 0);
  z64.writeBigUInt64LE(44n, 4); // size of the remaining record
  z64.writeUInt16LE(0x031e, 12); // version made by (as PyTorch's miniz writes)
  z64.writeUInt16LE(0x002d, 14); // version needed: 4.5 (zip64)
  z64.writeBigUInt64LE(BigInt(records.length), 24);
  z64.writeBigUInt64LE(BigInt(records.length), 32);
  z64.writeBigUInt64LE(BigInt(cdSize), 40);
  z64.writeBigUInt64LE(BigInt(cdStart), 48);
  push(z64);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(zip64At), 8);
  loc.writeUInt32LE(1, 16);
  push(loc);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(records.length, 8);
  eocd.writeUInt16LE(records.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(cdStart, 16);
  push(eocd);
  return Buffer.concat(chunks);
}

/** The bytes torch.save(tensor.float().contiguous(), file) would produce for this tensor. */
export function encodeTorchPt(tensor: { shape: number[]; data: Float32Array }, archiveName = 'archive'): Uint8Array {
  const { shape, data } = tensor;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new PersonaError(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== numel) {
    throw new PersonaError(`data has ${data?.length} values but shape [${shape.join(', ')}] needs ${numel}`);
  }
  if (!/^[^/\\]+$/.test(archiveName)) throw new PersonaError(`archive name '${archiveName}' must be a non-empty name without slashes`);
  const storage = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // torch draws serialization_id at random; a content hash keeps our output reproducible.
  const digest = createHash('sha256').update(storage).update(JSON.stringify(shape)).digest();
  let serializationId = '';
  for (let i = 0; i < 40; i++) serializationId += String(digest[i % digest.length] % 10);
  return torchZip([
    [`${archiveName}/data.pkl`, tensorPickle(shape, numel)],
    [`${archiveName}/byteorder`, Buffer.from('little', 'latin1')],
    [`${archiveName}/data/0`, storage],
    [`${archiveName}/version`, Buffer.from('3\n', 'latin1')],
    [`${archiveName}/.data/serialization_id`, Buffer.from(serializationId, 'latin1')],
  ]);
}

/**
 * Write a float32 tensor as a .pt file torch.load reads (atomically). The archive directory is the file
 * name without extension, as torch.save names it.
 */
export function writeTorchPt(file: string, tensor: { shape: number[]; data: Float32Array }): void {
  const stem = path.basename(file).replace(/\.[^.]*$/, '') || 'archive';
  let bytes: Uint8Array;
  try {
    bytes = encodeTorchPt(tensor, stem);
  } catch (e) {
    if (e instanceof PersonaError) throw new PersonaError(e.message, { file });
    throw e;
  }
  writeFileAtomic(file, bytes);
}
