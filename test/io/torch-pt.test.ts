import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { zipSync, unzipSync } from 'fflate';
import { encodeTorchPt, parseTorchPt, readTorchPt, writeTorchPt } from '../../lib/io/torch-pt';
import { PersonaError } from '../../lib/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-pt-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function sample(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 43758.5453 % 3;
  // Values a lossy path would change: -0, a subnormal, extremes.
  if (n > 4) { a[0] = -0; a[1] = 1e-45; a[2] = 3.4028234663852886e38; a[3] = -1.1754943508222875e-38; }
  return a;
}

describe('write then read round-trips bit-exactly', () => {
  test.each([[[3, 5]], [[7]], [[2, 3, 4]], [[2, 2, 2, 2]], [[]], [[0, 4]], [[1, 70000]]])('shape %j', (shape) => {
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const data = sample(numel);
    const f = path.join(tmp, `v${(shape as number[]).join('x')}.pt`);
    writeTorchPt(f, { shape: shape as number[], data });
    const back = readTorchPt(f);
    expect(back.dtype).toBe('float32');
    expect(back.shape).toEqual(shape);
    expect(bytesOf(back.data).equals(bytesOf(data))).toBe(true);
  });
});

describe('archive layout matches torch.save', () => {
  const bytes = encodeTorchPt({ shape: [4, 8], data: sample(32) }, 'myvec');
  test('records, order and contents', () => {
    const entries = unzipSync(bytes);
    expect(Object.keys(entries)).toEqual(['myvec/data.pkl', 'myvec/byteorder', 'myvec/data/0', 'myvec/version', 'myvec/.data/serialization_id']);
    expect(Buffer.from(entries['myvec/byteorder']).toString()).toBe('little');
    expect(Buffer.from(entries['myvec/version']).toString()).toBe('3\n');
    expect(Buffer.from(entries['myvec/.data/serialization_id']).toString()).toMatch(/^\d{40}$/);
  });
  test('every record starts on a 64-byte boundary, sizes in data descriptors', () => {
    const b = Buffer.from(bytes);
    let off = 0;
    let count = 0;
    while (b.readUInt32LE(off) === 0x04034b50) {
      expect(b.readUInt16LE(off + 6)).toBe(0x0808);
      const nameLen = b.readUInt16LE(off + 26);
      const extraLen = b.readUInt16LE(off + 28);
      expect(b.toString('latin1', off + 30 + nameLen, off + 32 + nameLen)).toBe('FB');
      const dataStart = off + 30 + nameLen + extraLen;
      expect(dataStart % 64).toBe(0);
      const name = b.toString('utf8', off + 30, off + 30 + nameLen);
      const size = unzipSync(bytes)[name].length;
      expect(b.readUInt32LE(dataStart + size)).toBe(0x08074b50);
      expect(b.readUInt32LE(dataStart + size + 8)).toBe(size);
      off = dataStart + size + 16;
      count++;
    }
    expect(count).toBe(5);
    expect(b.readUInt32LE(off)).toBe(0x02014b50); // central directory follows
    expect(b.readUInt32LE(b.length - 22 - 20 - 56)).toBe(0x06064b50); // zip64 end record, as PyTorch writes
  });
  test('file name gives the archive directory', () => {
    const f = path.join(tmp, 'Model_trait_response_avg_diff.pt');
    writeTorchPt(f, { shape: [2], data: new Float32Array([1, 2]) });
    expect(Object.keys(unzipSync(fs.readFileSync(f)))[0]).toBe('Model_trait_response_avg_diff/data.pkl');
  });
});

// Pickles assembled opcode by opcode here (independently of the writer) to cover what the writer never emits.
function pickle(storageType: string, numel: number, offset: number, size: number[], stride: number[], extra: number[] = []): Uint8Array {
  const out: number[] = [];
  const s = (t: string) => out.push(...Buffer.from(t, 'latin1'));
  const uni = (t: string) => { out.push(0x58, t.length, 0, 0, 0); s(t); };
  const int = (n: number) => { out.push(0x4a); const b = Buffer.alloc(4); b.writeInt32LE(n); out.push(...b); };
  out.push(0x80, 2);
  s('ctorch._utils\n_rebuild_tensor_v2\n');
  out.push(0x28, 0x28);
  uni('storage'); s(`ctorch\n${storageType}\n`); uni('0'); uni('cpu'); int(numel);
  out.push(0x74, 0x51);
  int(offset);
  out.push(0x28); size.forEach(int); out.push(0x74);
  out.push(0x28); stride.forEach(int); out.push(0x74);
  out.push(0x89);
  out.push(...extra);
  s('ccollections\nOrderedDict\n'); out.push(0x29, 0x52);
  out.push(0x74, 0x52, 0x2e);
  return Uint8Array.from(out);
}
function archive(pkl: Uint8Array, storage: Uint8Array): Uint8Array {
  // fflate's own zip layout (no alignment, sizes in local headers): the reader must not depend on torch's.
  return zipSync({ 'arch/data.pkl': pkl, 'arch/data/0': storage, 'arch/version': Buffer.from('3\n') }, { level: 0 });
}
function u16(...v: number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(v).buffer);
}

describe('reads float16 / bfloat16 storages, with storage offset', () => {
  test('float16, offset 1, shape [2, 2]', () => {
    // half bits: 0x3c00 = 1, 0xc000 = -2, 0x3800 = 0.5, 0x7bff = 65504, 0x0001 = 2^-24
    const storage = u16(0x7777, 0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001);
    const t = parseTorchPt(archive(pickle('HalfStorage', 6, 1, [2, 2], [2, 1]), storage), 'half.pt');
    expect(t.dtype).toBe('float16');
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(t.data)).toEqual([1, -2, 0.5, 65504]);
  });
  test('bfloat16, shape [3]', () => {
    // bf16 bits are the top half of float32: 0x3f80 = 1, 0xc040 = -3, 0x3e00 = 0.125
    const t = parseTorchPt(archive(pickle('BFloat16Storage', 3, 0, [3], [1]), u16(0x3f80, 0xc040, 0x3e00)), 'bf.pt');
    expect(t.dtype).toBe('bfloat16');
    expect(Array.from(t.data)).toEqual([1, -3, 0.125]);
  });
});

describe('bad input', () => {
  const f32 = (n: number) => new Uint8Array(new Float32Array(n).buffer);
  const expectError = (fn: () => unknown, re: RegExp) => {
    let err: unknown;
    try { fn(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(PersonaError);
    expect((err as Error).message).toMatch(re);
  };
  test('unexpected pickle opcode names file and opcode', () => {
    const pkl = pickle('FloatStorage', 2, 0, [2], [1], [0x7d, 0x30]); // EMPTY_DICT, POP
    expectError(() => parseTorchPt(archive(pkl, f32(2)), 'odd.pt'), /odd\.pt:arch\/data\.pkl.*unsupported pickle opcode EMPTY_DICT \(0x7d\)/);
  });
  test('unknown global is refused, not called', () => {
    const pkl = Uint8Array.from([0x80, 2, ...Buffer.from('cos\nsystem\n'), 0x2e]);
    expectError(() => parseTorchPt(archive(pkl, f32(1)), 'evil.pt'), /unsupported global os\.system/);
  });
  test('non-contiguous strides', () => {
    expectError(() => parseTorchPt(archive(pickle('FloatStorage', 6, 0, [2, 3], [1, 2]), f32(6)), 't.pt'), /stride \[1, 2\]; only contiguous/);
  });
  test('storage size disagrees with data.pkl', () => {
    expectError(() => parseTorchPt(archive(pickle('FloatStorage', 6, 0, [2, 3], [3, 1]), f32(5)), 't.pt'), /holds 20 bytes but data\.pkl declares 6/);
  });
  test('view past the end of its storage', () => {
    expectError(() => parseTorchPt(archive(pickle('FloatStorage', 6, 2, [2, 3], [3, 1]), f32(6)), 't.pt'), /runs past the 6-element storage/);
  });
  test('truncated zip names the file', () => {
    const good = encodeTorchPt({ shape: [16, 16], data: sample(256) });
    const f = path.join(tmp, 'truncated.pt');
    fs.writeFileSync(f, good.subarray(0, Math.floor(good.length / 2)));
    expectError(() => readTorchPt(f), /truncated\.pt: not a readable torch\.save zip archive/);
  });
  test('zip without data.pkl, missing file', () => {
    expectError(() => parseTorchPt(zipSync({ 'a.txt': Buffer.from('x') }), 'z.pt'), /without data\.pkl/);
    expectError(() => readTorchPt(path.join(tmp, 'nope.pt')), /nope\.pt: cannot read/);
  });
  test('writer checks shape against data', () => {
    expectError(() => writeTorchPt(path.join(tmp, 'w.pt'), { shape: [2, 2], data: new Float32Array(3) }), /w\.pt: data has 3 values but shape \[2, 2\] needs 4/);
  });
});

// Python's own zipfile (CRC check) and pickle modules, with torch's classes stubbed, read what we write:
// the same machinery torch.load drives. Skipped where python3 is not installed.
const hasPython = (() => { try { execFileSync('python3', ['-c', 'pass']); return true; } catch { return false; } })();
(hasPython ? test : test.skip)('python zipfile + pickle read the written file', () => {
  const f = path.join(tmp, 'py_check.pt');
  const data = sample(3 * 70);
  writeTorchPt(f, { shape: [3, 70], data });
  const script = `
import zipfile, pickle, struct, sys, json, collections
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
prefix = z.namelist()[0].split('/')[0]
class U(pickle.Unpickler):
    def find_class(self, mod, name):
        if (mod, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return lambda st, off, size, stride, rg, hooks: dict(storage=st, offset=off, size=list(size), stride=list(stride), requires_grad=rg, hooks=len(hooks))
        if mod == 'torch' and name.endswith('Storage'):
            return name
        if (mod, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        raise ValueError((mod, name))
    def persistent_load(self, pid):
        return list(pid)
t = U(z.open(prefix + '/data.pkl')).load()
raw = z.read(prefix + '/data/' + t['storage'][2])
t['values'] = list(struct.unpack('<%df' % t['storage'][4], raw))
print(json.dumps(t))
`;
  const out = JSON.parse(execFileSync('python3', ['-c', script, f]).toString());
  expect(out.storage.slice(0, 2)).toEqual(['storage', 'FloatStorage']);
  expect(out.storage[3]).toBe('cpu');
  expect(out.storage[4]).toBe(210);
  expect(out).toMatchObject({ offset: 0, size: [3, 70], stride: [70, 1], requires_grad: false, hooks: 0 });
  expect(Float32Array.from(out.values)).toEqual(data);
});
