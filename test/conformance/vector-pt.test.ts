/**
 * The paper's released vector file (torch.save of a float32 [37, 2560] tensor for Qwen3-4B): our reader
 * against the raw storage bytes located by hand, and our writer against torch.save's own bytes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeTorchPt, readTorchPt } from '../../lib/io/torch-pt';
import { PersonaVector } from '../../lib/persona/vector';

const FILE = path.resolve(__dirname, '../../../shared/paper-data/vectors/Qwen3-4B_evil_response_avg_diff.pt');
const ARCHIVE = 'evil_response_avg_diff'; // the directory torch.save used inside this file
const ROWS = 37;
const HIDDEN = 2560;
const real = fs.readFileSync(FILE);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vector-pt-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Start of a record's data: find its local header by name and skip the header, name and extra field. */
function recordDataStart(buf: Buffer, name: string): number {
  const nameAt = buf.indexOf(Buffer.from(`${ARCHIVE}/${name}`, 'latin1'));
  const header = nameAt - 30;
  expect(buf.readUInt32LE(header)).toBe(0x04034b50);
  return nameAt + buf.readUInt16LE(header + 26) + buf.readUInt16LE(header + 28);
}

test('imports as float32 [37, 2560] with the values stored in data/0', () => {
  const t = readTorchPt(FILE);
  expect(t.dtype).toBe('float32');
  expect(t.shape).toEqual([ROWS, HIDDEN]);
  const storage = recordDataStart(real, 'data/0');
  for (const [r, c] of [[0, 0], [0, 1], [20, 1234], [36, 2559], [17, 0]]) {
    expect(t.data[r * HIDDEN + c]).toBe(real.readFloatLE(storage + 4 * (r * HIDDEN + c)));
  }
  // first entry read by hand from the hex dump: bytes 00 00 5c 3a = 0x3a5c0000 = 1.71875 * 2^-11
  expect(t.data[0]).toBe(1.71875 * 2 ** -11);
  // and every value, bit for bit
  const ours = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  expect(ours.equals(real.subarray(storage, storage + ROWS * HIDDEN * 4))).toBe(true);
});

test('PersonaVector.load reads it with the metadata the file name gives', () => {
  const v = PersonaVector.load(FILE);
  expect(v.numRows).toBe(ROWS);
  expect(v.numLayers).toBe(36); // Qwen3-4B has 36 decoder layers
  expect(v.meta).toMatchObject({ model: 'Qwen3-4B', trait: 'evil', method: 'response_avg_diff', layerConvention: 'hf_hidden_states' });
  v.checkHidden(HIDDEN, 'Qwen3-4B');
  expect(() => v.checkHidden(2048, 'model Qwen2.5-3B')).toThrow(/has hidden size 2560, model Qwen2.5-3B has 2048/);
  expect(v.norm(20)).toBeGreaterThan(0);
});

test('our writer reproduces torch.save byte for byte, except the random serialization id', () => {
  const t = readTorchPt(FILE);
  const ours = Buffer.from(encodeTorchPt({ shape: t.shape, data: t.data }, ARCHIVE));
  expect(ours.length).toBe(real.length);
  const idStart = recordDataStart(real, '.data/serialization_id');
  const idName = Buffer.from(`${ARCHIVE}/.data/serialization_id`, 'latin1');
  const centralName = real.indexOf(idName, idStart); // second occurrence: the central directory entry
  const allowed = (i: number) => (i >= idStart && i < idStart + 40) // the id itself
    || (i >= idStart + 44 && i < idStart + 48) // its CRC in the data descriptor
    || (i >= centralName - 46 + 16 && i < centralName - 46 + 20); // its CRC in the central directory
  const diffs: number[] = [];
  for (let i = 0; i < real.length; i++) if (ours[i] !== real[i] && !allowed(i)) diffs.push(i);
  expect(diffs).toEqual([]);
});

test('export -> import round-trips bit-exactly (.pt and .safetensors)', () => {
  const v = PersonaVector.load(FILE);
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const pt = path.join(tmp, 'Qwen3-4B_evil_response_avg_diff.pt');
  v.savePt(pt);
  expect(bits(PersonaVector.load(pt).data).equals(bits(v.data))).toBe(true);
  const st = path.join(tmp, 'evil.safetensors');
  v.save(st);
  const back = PersonaVector.load(st);
  expect(bits(back.data).equals(bits(v.data))).toBe(true);
  expect(back.meta).toEqual(v.meta);
});
