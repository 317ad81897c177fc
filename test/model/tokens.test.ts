/**
 * Per-token capture (lib/model/tokens.ts) and per-token projections (lib/persona/token-projections.ts):
 * activations equal Hugging Face's hidden_states on the tiny reference checkpoint, sites by name, steering
 * applied before the capture, one file readable without our reader, projections equal a·v/|v|, no tensor leaks.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backend';
import { Model } from '../../lib/model/checkpoint';
import { steer } from '../../lib/model/interventions';
import { captureTokenActivations, writeTokenCapture } from '../../lib/model/tokens';
import { tokenProjections } from '../../lib/persona/token-projections';
import { PersonaVector } from '../../lib/persona/vector';
import { FIXTURE_ROOT, maxAbsDiff, readExpected } from '../support/hf-parity';

const LLAMA = path.join(FIXTURE_ROOT, 'llama-tiny');
const exp = readExpected(LLAMA);
let model: Model;
let tmp: string;
beforeAll(async () => {
  await useBackend('cpu', () => undefined);
  model = await Model.load(LLAMA);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-tokens-'));
});
afterAll(() => {
  model.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const rows = (v: Float32Array, T: number, H: number) => Array.from({ length: T }, (_, t) => Array.from(v.subarray(t * H, (t + 1) * H)));

/** A safetensors file read as a Python user's reader does: 8-byte header length, JSON header, raw little-endian data. */
function readRaw(file: string): { header: Record<string, any>; tensor(name: string): Float32Array | BigInt64Array } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  return {
    header,
    tensor(name) {
      const [a, b] = header[name].data_offsets;
      const bytes = Uint8Array.from(buf.subarray(base + a, base + b));
      return header[name].dtype === 'I64' ? new BigInt64Array(bytes.buffer) : new Float32Array(bytes.buffer);
    },
  };
}

test('every hidden_states layer per token equals Hugging Face; sites by name; the file reads without our reader', async () => {
  const N = exp.num_hidden_layers;
  const H = exp.hidden_size;
  const ids: number[] = exp.single.input_ids;
  const T = ids.length;
  const cap = await captureTokenActivations(model, ids, { layers: Array.from({ length: N + 1 }, (_, i) => i), sites: ['blocks.0.resid_post', 'blocks.1.mlp_out'] });
  for (let L = 0; L <= N; L++) {
    const t = cap.tensors.find((x) => x.name === `hidden_states.${L}`)!;
    expect(maxAbsDiff(rows(t.values, T, H), exp.single.hidden_states[L])).toBeLessThan(1e-4);
  }
  // blocks.0.resid_post is hidden_states[1] by the layer convention.
  expect(cap.tensors.find((x) => x.name === 'blocks.0.resid_post')!.values).toEqual(cap.tensors.find((x) => x.name === 'hidden_states.1')!.values);
  const file = path.join(tmp, 'cap.safetensors');
  writeTokenCapture(file, cap, { promptLength: 5, model: 'llama-tiny' });
  const raw = readRaw(file);
  expect(raw.header.__metadata__).toMatchObject({ prompt_length: '5', layer_convention: 'hf_hidden_states', model: 'llama-tiny' });
  expect(raw.header['hidden_states.2']).toMatchObject({ dtype: 'F32', shape: [T, H] });
  expect(raw.header['blocks.1.mlp_out']).toMatchObject({ dtype: 'F32', shape: [T, H] });
  expect(raw.header.input_ids).toMatchObject({ dtype: 'I64', shape: [T] });
  expect(Array.from(raw.tensor('input_ids') as BigInt64Array, Number)).toEqual(ids);
  expect(maxAbsDiff(rows(raw.tensor('hidden_states.3') as Float32Array, T, H), exp.single.hidden_states[3])).toBeLessThan(1e-4);
});

test('steering applies before the capture at its layer; bad layers and sites are named; memory stays flat', async () => {
  const H = exp.hidden_size;
  const ids = [1, 7, 9, 4];
  const v = Float32Array.from({ length: H }, (_, i) => (i % 3) - 1);
  const plain = await captureTokenActivations(model, ids, { layers: [2] });
  const steered = await captureTokenActivations(model, ids, { layers: [2], interventions: [steer(v, 2, 3, 'all', exp.num_hidden_layers)] });
  const d = steered.tensors[0].values.map((x, i) => x - plain.tensors[0].values[i]);
  for (let t = 0; t < ids.length; t++) for (let h = 0; h < H; h++) expect(d[t * H + h]).toBeCloseTo(3 * v[h], 4);
  await expect(captureTokenActivations(model, ids, { layers: [9] })).rejects.toThrow(/layer 9 is out of range: this model has hidden_states layers 0\.\.4/);
  await expect(captureTokenActivations(model, ids, { sites: ['blocks.7.resid_post'] })).rejects.toThrow(/no hook site 'blocks\.7\.resid_post'/);
  await captureTokenActivations(model, ids, { layers: [0, 1, 4], sites: ['final_norm'] });
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await captureTokenActivations(model, ids, { layers: [0, 1, 4], sites: ['final_norm'] });
  expect(tf.memory().numTensors).toBe(before);
});

test('per-token projections are a·v/|v| at each layer with its own row; roles split at the prompt length', async () => {
  const N = exp.num_hidden_layers;
  const H = exp.hidden_size;
  const ids: number[] = exp.single.input_ids;
  const T = ids.length;
  const data = Float32Array.from({ length: (N + 1) * H }, (_, i) => Math.cos(i * 0.37));
  const vec = new PersonaVector(data, N + 1, H, { layerConvention: 'hf_hidden_states' } as never);
  const cap = await captureTokenActivations(model, ids, { layers: [1, 3] });
  const out = tokenProjections(cap, 4, [{ name: 'v', vector: vec }, { name: 'v3', vector: vec, layer: 3 }], (id) => `t${id}`);
  expect(out).toHaveLength(T * 2 + T);
  for (const r of out) {
    const a = exp.single.hidden_states[r.layer][r.position] as number[];
    const row = Array.from(data.subarray(r.layer * H, (r.layer + 1) * H));
    const dot = a.reduce((s, x, i) => s + x * row[i], 0);
    const norm = Math.sqrt(row.reduce((s, x) => s + x * x, 0));
    expect(r.projection).toBeCloseTo(dot / norm, 3);
    expect(r.role).toBe(r.position < 4 ? 'prompt' : 'response');
    expect(r.token).toBe(`t${ids[r.position]}`);
  }
  expect(() => tokenProjections(cap, 4, [{ name: 'v', vector: vec, layer: 2 }], String)).toThrow(/hidden_states\.2 was not captured \(captured: 1, 3\)/);
});
