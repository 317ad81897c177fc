import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gguf } from '@huggingface/gguf';
import {
  CONTROL_VECTOR_ARCH, GgufType, directionForRow, encodeControlVector, parseGguf, readControlVector, rowForDirection, writeControlVector,
} from '../../lib/io/gguf';
import { PersonaError } from '../../lib/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const hidden = 13; // 52 bytes: not a multiple of the 32-byte alignment, so padding is exercised
function dirs(layers: number[]): Map<number, Float32Array> {
  return new Map(layers.map((k) => [k, Float32Array.from({ length: hidden }, (_, i) => (k * 100 + i) / 7 - 3)]));
}

test('layer mapping: direction.k is added after block k = HF hidden_states[k+1]', () => {
  expect(rowForDirection(1)).toBe(2);
  expect(directionForRow(36)).toBe(35);
  expect(directionForRow(rowForDirection(17))).toBe(17);
});

test('write then read round-trips bit-exactly with the control-vector keys', () => {
  const f = path.join(tmp, 'cv.gguf');
  const d = dirs([1, 2, 5, 10]);
  writeControlVector(f, d, { modelHint: 'qwen2' });
  const cv = readControlVector(f);
  expect(cv.architecture).toBe('controlvector');
  expect(cv.modelHint).toBe('qwen2');
  expect(cv.layerCount).toBe(4);
  expect(cv.hidden).toBe(hidden);
  expect([...cv.directions.keys()]).toEqual([1, 2, 5, 10]);
  for (const [k, v] of d) expect(Buffer.from(cv.directions.get(k)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
});

test('header bytes follow GGUF v3', () => {
  const b = Buffer.from(encodeControlVector(dirs([3]), { modelHint: 'llama' }));
  expect(b.toString('latin1', 0, 4)).toBe('GGUF');
  expect(b.readUInt32LE(4)).toBe(3);
  expect(b.readBigUInt64LE(8)).toBe(1n); // tensors
  expect(b.readBigUInt64LE(16)).toBe(3n); // kv pairs
  expect(b.readBigUInt64LE(24)).toBe(BigInt('general.architecture'.length));
  expect(b.toString('utf8', 32, 32 + 20)).toBe('general.architecture');
  expect(b.readUInt32LE(52)).toBe(GgufType.STRING);
  expect(b.length % 32).toBe(0);
});

test('an independent parser (@huggingface/gguf) reads the same keys, tensor infos and data', async () => {
  const f = path.join(tmp, 'hf.gguf');
  const d = dirs([1, 4, 7]);
  writeControlVector(f, d, { modelHint: 'llama' });
  const parsed = await gguf(f, { allowLocalFile: true, typedMetadata: true });
  expect(parsed.metadata.version).toBe(3);
  expect(parsed.typedMetadata['general.architecture']).toEqual({ value: 'controlvector', type: 8 });
  expect(parsed.typedMetadata[`${CONTROL_VECTOR_ARCH}.model_hint` as 'general.architecture']).toEqual({ value: 'llama', type: 8 });
  expect(parsed.typedMetadata[`${CONTROL_VECTOR_ARCH}.layer_count` as 'general.architecture']).toEqual({ value: 3, type: 5 });
  expect(parsed.tensorInfos.map((t) => t.name)).toEqual(['direction.1', 'direction.4', 'direction.7']);
  const file = fs.readFileSync(f);
  for (const t of parsed.tensorInfos) {
    expect(t.shape).toEqual([BigInt(hidden)]);
    expect(t.dtype).toBe(0); // F32
    const start = Number(parsed.tensorDataOffset + t.offset);
    const values = Array.from({ length: hidden }, (_, i) => file.readFloatLE(start + 4 * i));
    expect(Float32Array.from(values)).toEqual(d.get(Number(t.name.split('.')[1])));
  }
});

describe('bad input', () => {
  test('direction.0 (block 0) and mixed hidden sizes are refused on write', () => {
    expect(() => writeControlVector(path.join(tmp, 'z.gguf'), dirs([0, 1]), { modelHint: 'llama' })).toThrow(/z\.gguf, tensor 'direction\.0'.*k >= 1/);
    const mixed = dirs([1]);
    mixed.set(2, new Float32Array(hidden + 1));
    expect(() => encodeControlVector(mixed, { modelHint: 'llama' })).toThrow(/direction has 14 values, others have 13/);
    expect(() => encodeControlVector(dirs([1]), { modelHint: '' })).toThrow(/model hint/);
  });
  test('truncated file names the file and tensor', () => {
    const b = encodeControlVector(dirs([1, 2]), { modelHint: 'llama' });
    let err: unknown;
    try { parseGguf(b.subarray(0, b.length - 40), 'cut.gguf'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(PersonaError);
    expect((err as Error).message).toMatch(/cut\.gguf, tensor 'direction\.2': data .* runs past the end/);
    expect(() => parseGguf(b.subarray(0, 30), 'cut.gguf')).toThrow(/cut\.gguf: file ends at byte 30/);
  });
  test('not a GGUF, no directions', () => {
    expect(() => parseGguf(Buffer.from('PK\x03\x04 not gguf at all'), 'x.gguf')).toThrow(/not a GGUF file/);
    const f = path.join(tmp, 'none.gguf');
    const b = Buffer.from(encodeControlVector(dirs([1]), { modelHint: 'llama' }));
    // rename the only tensor so that no direction.<k> remains ("direction.1" -> "xirection.1")
    b.write('x', b.indexOf('direction.1'), 'latin1');
    fs.writeFileSync(f, b);
    expect(() => readControlVector(f)).toThrow(/none\.gguf: no direction\.<k> tensors/);
  });
});
