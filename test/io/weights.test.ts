import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SafetensorsFile, writeSafetensors, f16BitsToF32, f32ToF16Bits } from '../../lib/io/safetensors';
import { openWeights, WeightSource } from '../../lib/io/weights';
import { writeTfjsWeights } from '../../lib/io/tfjs-weights';
import { expectPersonaError, tempDir } from './helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'hf-parity', 'llama-tiny');

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Split the fixture into two safetensors shards plus a Hugging Face index, as save_pretrained does. */
function writeSharded(out: string): void {
  const st = SafetensorsFile.open(path.join(FIXTURE, 'model.safetensors'));
  const names = st.names().sort();
  const half = Math.ceil(names.length / 2);
  const weightMap: Record<string, string> = {};
  [names.slice(0, half), names.slice(half)].forEach((group, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const n of group) {
      tensors[n] = { shape: st.info(n).shape, data: st.read(n) };
      weightMap[n] = file;
    }
    writeSafetensors(path.join(out, file), tensors, { format: 'pt' });
  });
  st.close();
  fs.writeFileSync(path.join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

/** All shard bytes of a TF.js manifest group concatenated, for tf.io's own decoder. */
function groupBytes(out: string): ArrayBuffer {
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
  const all = Buffer.concat(manifest.weightsManifest[0].paths.map((p: string) => fs.readFileSync(path.join(out, p))));
  return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
}

describe('openWeights', () => {
  it('opens a single model.safetensors', () => {
    const w = openWeights(FIXTURE);
    try {
      expect(w.dir).toBe(FIXTURE);
      expect(w.shape('model.embed_tokens.weight')).toEqual([256, 64]);
      expect(w.has('lm_head.weight')).toBe(true);
      expect(w.has('nope')).toBe(false);
      expect(w.read('model.norm.weight')).toHaveLength(64);
    } finally {
      w.close();
    }
  });

  it('gives identical values across single, sharded and TF.js-manifest layouts', () => {
    const sharded = path.join(dir, 'sharded');
    const converted = path.join(dir, 'tfjs');
    fs.mkdirSync(sharded);
    writeSharded(sharded);
    const single = openWeights(FIXTURE);
    writeTfjsWeights(converted, single, { shardBytes: 100_000 });
    const others = [openWeights(sharded), openWeights(converted)];
    try {
      expect(fs.readdirSync(sharded).sort()).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
      for (const o of others) {
        expect(o.names().sort()).toEqual(single.names().sort());
        for (const n of single.names()) {
          expect(o.shape(n)).toEqual(single.shape(n));
          expect(bytesOf(o.read(n)).equals(bytesOf(single.read(n)))).toBe(true);
        }
      }
    } finally {
      single.close();
      others.forEach((o) => o.close());
    }
  });

  it('rejects a directory with no weights, naming it', () => {
    expectPersonaError(() => openWeights(dir), dir, 'model.safetensors', 'model.json');
    expectPersonaError(() => openWeights(path.join(dir, 'missing')), 'missing', 'does not exist');
  });

  it.each(['single', 'sharded', 'tfjs'])('%s layout: reading a missing tensor names the file and tensor', (layout) => {
    let d = FIXTURE;
    if (layout === 'sharded') writeSharded((d = dir));
    if (layout === 'tfjs') {
      const src = openWeights(FIXTURE);
      writeTfjsWeights((d = dir), src);
      src.close();
    }
    const w = openWeights(d);
    try {
      expectPersonaError(() => w.read('model.layers.99.mlp.up_proj.weight'), d, "tensor 'model.layers.99.mlp.up_proj.weight'");
      expectPersonaError(() => w.shape('x'), d, "tensor 'x'");
    } finally {
      w.close();
    }
  });
});

describe('sharded safetensors index errors', () => {
  const index = () => path.join(dir, 'model.safetensors.index.json');

  it('index naming a missing shard file', () => {
    writeSharded(dir);
    fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
    expectPersonaError(() => openWeights(dir), index(), 'model-00002-of-00002.safetensors', 'does not exist', "tensor '");
  });

  it('index that is not JSON', () => {
    fs.writeFileSync(index(), '{"weight_map": {');
    expectPersonaError(() => openWeights(dir), index(), 'not valid JSON');
  });

  it('index without weight_map', () => {
    fs.writeFileSync(index(), JSON.stringify({ metadata: {} }));
    expectPersonaError(() => openWeights(dir), index(), "field 'weight_map'");
  });

  it('index placing a tensor in a shard that lacks it', () => {
    writeSafetensors(path.join(dir, 'a.safetensors'), { x: { shape: [1], data: new Float32Array([1]) } });
    fs.writeFileSync(index(), JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'a.safetensors' } }));
    expectPersonaError(() => openWeights(dir), 'a.safetensors', "tensor 'y'");
  });

  it('index pointing outside the directory', () => {
    fs.writeFileSync(index(), JSON.stringify({ weight_map: { x: '../elsewhere.safetensors' } }));
    expectPersonaError(() => openWeights(dir), index(), "tensor 'x'");
  });
});

describe('TF.js weights manifest', () => {
  it('writes tf.io manifest conventions and tf.io.decodeWeights reads them back (float32, bit-exact)', () => {
    const src = openWeights(FIXTURE);
    try {
      writeTfjsWeights(dir, src, { shardBytes: 200_000 });
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      expect(manifest.format).toBe('persona-weights');
      const total = src.names().reduce((s, n) => s + 4 * src.read(n).length, 0);
      const shards = Math.ceil(total / 200_000);
      expect(manifest.weightsManifest).toHaveLength(1);
      expect(manifest.weightsManifest[0].paths).toEqual(Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}.bin`));
      for (const p of manifest.weightsManifest[0].paths.slice(0, -1)) expect(fs.statSync(path.join(dir, p)).size).toBe(200_000);
      expect(manifest.weightsManifest[0].weights.every((w: { dtype: string; quantization?: unknown }) => w.dtype === 'float32' && w.quantization === undefined)).toBe(true);
      const before = tf.memory().numTensors;
      const decoded = tf.io.decodeWeights(groupBytes(dir), manifest.weightsManifest[0].weights);
      for (const n of src.names()) {
        expect(decoded[n].shape).toEqual(src.shape(n));
        expect(bytesOf(decoded[n].dataSync() as Float32Array).equals(bytesOf(src.read(n)))).toBe(true);
      }
      tf.dispose(Object.values(decoded));
      expect(tf.memory().numTensors).toBe(before);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      src.close();
    }
  });

  it('float16 via quantization {dtype: float16}: half the bytes, values within f16 precision, same as tf.io', () => {
    const src = openWeights(FIXTURE);
    try {
      writeTfjsWeights(dir, src, { float16: true });
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const entry = manifest.weightsManifest[0].weights[0];
      expect(entry.dtype).toBe('float32');
      expect(entry.quantization).toEqual({ dtype: 'float16', original_dtype: 'float32' });
      expect(manifest.weightsManifest[0].paths).toEqual(['group1-shard1of1.bin']);
      const total = src.names().reduce((s, n) => s + 2 * src.read(n).length, 0);
      expect(fs.statSync(path.join(dir, 'group1-shard1of1.bin')).size).toBe(total);
      const back = openWeights(dir);
      const decoded = tf.io.decodeWeights(groupBytes(dir), manifest.weightsManifest[0].weights);
      try {
        for (const n of src.names()) {
          const orig = src.read(n);
          const half = back.read(n);
          expect(bytesOf(decoded[n].dataSync() as Float32Array).equals(bytesOf(half))).toBe(true);
          for (let i = 0; i < orig.length; i += 7) {
            expect(Math.abs(half[i] - orig[i])).toBeLessThanOrEqual(Math.max(Math.abs(orig[i]) * 2 ** -11, 2 ** -25));
            expect(half[i]).toBe(f16BitsToF32(f32ToF16Bits(orig[i])));
          }
        }
      } finally {
        back.close();
        tf.dispose(Object.values(decoded));
      }
    } finally {
      src.close();
    }
  });

  it('reads a manifest encoded by tf.io.encodeWeights (float32, int32, bool) and uint8 affine quantization', async () => {
    const before = tf.memory().numTensors;
    const tensors = {
      'a/kernel': tf.tensor2d([[1.5, -2], [3.25, 0]]),
      'b/ids': tf.tensor1d([-3, 7, 100000], 'int32'),
      'c/mask': tf.tensor1d([true, false, true], 'bool'),
    };
    const { data, specs } = await tf.io.encodeWeights(tensors);
    tf.dispose(Object.values(tensors));
    expect(tf.memory().numTensors).toBe(before);
    const q = Buffer.from([0, 10, 255]);
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(data as ArrayBuffer));
    fs.writeFileSync(path.join(dir, 'q.bin'), q);
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
      format: 'layers-model',
      weightsManifest: [
        { paths: ['w.bin'], weights: specs },
        { paths: ['q.bin'], weights: [{ name: 'd/q', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } }] },
      ],
    }));
    const w = openWeights(dir);
    try {
      expect(w.names()).toEqual(['a/kernel', 'b/ids', 'c/mask', 'd/q']);
      expect(w.shape('a/kernel')).toEqual([2, 2]);
      expect(Array.from(w.read('a/kernel'))).toEqual([1.5, -2, 3.25, 0]);
      expect(Array.from(w.read('b/ids'))).toEqual([-3, 7, 100000]);
      expect(Array.from(w.read('c/mask'))).toEqual([1, 0, 1]);
      expect(Array.from(w.read('d/q'))).toEqual([-1, 4, 126.5]);
    } finally {
      w.close();
    }
  });

  it('reads each tensor once while writing, one at a time', () => {
    const real = openWeights(FIXTURE);
    const reads: string[] = [];
    const counting: WeightSource = {
      dir: real.dir, names: () => real.names(), has: (n) => real.has(n), shape: (n) => real.shape(n),
      read: (n) => (reads.push(n), real.read(n)), close: () => real.close(),
    };
    try {
      writeTfjsWeights(dir, counting, { shardBytes: 50_000 });
      expect(reads).toEqual(real.names());
    } finally {
      counting.close();
    }
  });

  function writeSmallManifest(weights: object[], shardSizes: number[]): string {
    const paths = shardSizes.map((n, i) => {
      fs.writeFileSync(path.join(dir, `s${i}.bin`), Buffer.alloc(n));
      return `s${i}.bin`;
    });
    const file = path.join(dir, 'model.json');
    fs.writeFileSync(file, JSON.stringify({ weightsManifest: [{ paths, weights }] }));
    return file;
  }

  it('weights whose byte total disagrees with the shards', () => {
    const f = writeSmallManifest([{ name: 'w', shape: [3], dtype: 'float32' }], [8]);
    expectPersonaError(() => openWeights(dir), f, "field 'weightsManifest[0]'", 'need 12 bytes', 'hold 8');
  });

  it('a weight spanning shards reads across the boundary', () => {
    fs.writeFileSync(path.join(dir, 'a.bin'), Buffer.from(new Float32Array([1, 2, 3]).buffer).subarray(0, 6));
    fs.writeFileSync(path.join(dir, 'b.bin'), Buffer.from(new Float32Array([1, 2, 3]).buffer).subarray(6));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ weightsManifest: [{ paths: ['a.bin', 'b.bin'], weights: [{ name: 'x', shape: [1], dtype: 'float32' }, { name: 'y', shape: [2], dtype: 'float32' }] }] }));
    const w = openWeights(dir);
    try {
      expect(Array.from(w.read('x'))).toEqual([1]);
      expect(Array.from(w.read('y'))).toEqual([2, 3]);
    } finally {
      w.close();
    }
  });

  it('manifest naming a missing shard', () => {
    const f = path.join(dir, 'model.json');
    fs.writeFileSync(f, JSON.stringify({ weightsManifest: [{ paths: ['gone.bin'], weights: [] }] }));
    expectPersonaError(() => openWeights(dir), f, "field 'weightsManifest[0].paths[0]'", 'gone.bin');
  });

  it('manifest that is not JSON or lacks weightsManifest', () => {
    const f = path.join(dir, 'model.json');
    fs.writeFileSync(f, '{"weightsManifest": [');
    expectPersonaError(() => openWeights(dir), f, 'not valid JSON');
    fs.writeFileSync(f, JSON.stringify({ modelTopology: {} }));
    expectPersonaError(() => openWeights(dir), f, "field 'weightsManifest'");
  });

  it('manifest entry with an unsupported dtype or quantization', () => {
    let f = writeSmallManifest([{ name: 's', shape: [1], dtype: 'string' }], [4]);
    expectPersonaError(() => openWeights(dir), f, "tensor 's'", 'string');
    f = writeSmallManifest([{ name: 'q', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8' } }], [1]);
    expectPersonaError(() => openWeights(dir), f, "tensor 'q'", 'scale and min');
  });

  it('rewriting into the same directory replaces the manifest consistently', () => {
    const src = openWeights(FIXTURE);
    try {
      writeTfjsWeights(dir, src, { shardBytes: 100_000 });
      writeTfjsWeights(dir, src, { float16: true, shardBytes: 100_000 });
      const w = openWeights(dir);
      expect(w.read('lm_head.weight')[0]).toBe(f16BitsToF32(f32ToF16Bits(src.read('lm_head.weight')[0])));
      w.close();
    } finally {
      src.close();
    }
  });
});
