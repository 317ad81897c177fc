import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  SafetensorsFile, writeSafetensors, f32ToF16Bits, f16BitsToF32, f32ToBf16Bits, bf16BitsToF32,
} from '../../lib/io/safetensors';
import { expectPersonaError, f32Bytes, rawSafetensors, randomValues, tempDir, u16Bytes } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

function writeRaw(name: string, bytes: Uint8Array): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('half-precision bit patterns (IEEE 754 binary16 / bfloat16 definitions)', () => {
  // [bits, value] pairs taken from the format definitions, not from this code.
  const f16: [number, number][] = [
    [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0400, 2 ** -14], [0x03ff, 1023 * 2 ** -24],
    [0x0001, 2 ** -24], [0x3555, 0.333251953125], [0x0000, 0], [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  const bf16: [number, number][] = [
    [0x3f80, 1], [0xc000, -2], [0x4049, 3.140625], [0x0001, 2 ** -133], [0x0080, 2 ** -126],
    [0x7f7f, 0xff * 2 ** 120], [0x0000, 0], [0x7f80, Infinity], [0xff80, -Infinity],
  ];

  it('decodes and encodes known F16 values', () => {
    for (const [bits, v] of f16) {
      expect(f16BitsToF32(bits)).toBe(v);
      expect(f32ToF16Bits(v)).toBe(bits);
    }
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f32ToF16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(f32ToF16Bits(NaN) & 0x3ff).not.toBe(0);
  });

  it('rounds F16 to nearest, ties to even, including subnormals and overflow', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (down)
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // tie at the top rounds to inf
    expect(f32ToF16Bits(1e10)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal -> 0
    expect(f32ToF16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie 1.5 ulp -> even
    expect(f32ToF16Bits(-(2 ** -30))).toBe(0x8000);
    expect(f32ToF16Bits(1023.5 * 2 ** -24)).toBe(0x0400); // largest subnormal rounds up into the normals
  });

  it('decodes and encodes known BF16 values, rounding ties to even', () => {
    for (const [bits, v] of bf16) {
      expect(bf16BitsToF32(bits)).toBe(v);
      expect(f32ToBf16Bits(v)).toBe(bits);
    }
    expect(Object.is(bf16BitsToF32(0x8000), -0)).toBe(true);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
    expect(bf16BitsToF32(f32ToBf16Bits(NaN))).toBeNaN();
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even (down)
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // above the largest bf16 by more than half an ulp
  });
});

describe('SafetensorsFile reading hand-built files', () => {
  it('reads every dtype as float32, with absolute offsets', () => {
    const parts: [string, string, number[], Uint8Array, number[]][] = [
      ['a', 'F32', [2], f32Bytes([1.5, -2.25]), [1.5, -2.25]],
      ['b', 'F16', [4], u16Bytes([0x3c00, 0x8000, 0x0001, 0xfc00]), [1, -0, 2 ** -24, -Infinity]],
      ['c', 'BF16', [2, 1], u16Bytes([0x3f80, 0xc000]), [1, -2]],
      ['d', 'F64', [1], new Uint8Array(new Float64Array([0.1]).buffer), [Math.fround(0.1)]],
      ['e', 'I64', [2], new Uint8Array(new BigInt64Array([-7n, 1234567n]).buffer), [-7, 1234567]],
      ['f', 'I32', [1], new Uint8Array(new Int32Array([-40000]).buffer), [-40000]],
      ['g', 'I16', [1], new Uint8Array(new Int16Array([-300]).buffer), [-300]],
      ['h', 'I8', [2], new Uint8Array(new Int8Array([-128, 127]).buffer), [-128, 127]],
      ['i', 'U8', [1], new Uint8Array([255]), [255]],
      ['j', 'BOOL', [2], new Uint8Array([0, 1]), [0, 1]],
      ['k', 'F32', [0, 3], new Uint8Array(0), []],
    ];
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let off = 0;
    for (const [name, dtype, shape, bytes] of parts) {
      header[name] = { dtype, shape, data_offsets: [off, off + bytes.byteLength] };
      off += bytes.byteLength;
    }
    const file = writeRaw('all.safetensors', rawSafetensors(header, Buffer.concat(parts.map((p) => p[3]))));
    const st = SafetensorsFile.open(file);
    try {
      expect(st.metadata).toEqual({ format: 'pt' });
      expect(st.names().sort()).toEqual(parts.map((p) => p[0]).sort());
      const headerLen = Buffer.byteLength(JSON.stringify(header));
      expect(st.info('b')).toEqual({ name: 'b', dtype: 'F16', shape: [4], begin: 8 + headerLen + 8, end: 8 + headerLen + 16 });
      for (const [name, , , , expected] of parts) {
        const got = Array.from(st.read(name));
        expect(got).toHaveLength(expected.length);
        got.forEach((v, i) => expect(Object.is(v, expected[i])).toBe(true));
      }
    } finally {
      st.close();
    }
  });

  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data = f32Bytes([1, 2]);
  // [case, file bytes, what the message must mention besides the file]
  const corrupt: [string, () => Uint8Array, string[]][] = [
    ['truncated file (data range beyond end of file)', () => rawSafetensors(ok, data.subarray(0, 6)), ["tensor 'w'", 'beyond the end']],
    ['header length (first 8 bytes) beyond the file', () => rawSafetensors(ok, data, 1n << 40n), ['header length']],
    ['file shorter than the 8-byte length', () => new Uint8Array([1, 2, 3]), ['too short']],
    ['header that is not JSON', () => rawSafetensors('{"w": {"dtype": "F32",', data), ['not valid JSON']],
    ['header that is JSON but not an object', () => rawSafetensors('[1, 2]', data), ['not a JSON object']],
    ['unknown dtype', () => rawSafetensors({ w: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, data), ["tensor 'w'", 'F8_E4M3']],
    ['byte length inconsistent with shape x dtype', () => rawSafetensors({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), ["tensor 'w'", 'needs 12']],
    ['data range out of bounds', () => rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data), ["tensor 'w'", 'beyond the end']],
    ['begin after end', () => rawSafetensors({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, data), ["tensor 'w'", 'data_offsets']],
    ['overlapping tensors', () => rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data), ["tensor 'b'", 'overlaps']],
    ['non-string metadata', () => rawSafetensors({ __metadata__: { n: 3 }, ...ok }, data), ["field '__metadata__'"]],
    ['negative shape', () => rawSafetensors({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data), ["tensor 'w'", 'shape']],
  ];
  it.each(corrupt)('rejects %s with one PersonaError naming the file', (_case, bytes, mentions) => {
    const f = writeRaw('bad.safetensors', bytes());
    expectPersonaError(() => SafetensorsFile.open(f), f, ...mentions);
  });

  it('rejects a missing file with a PersonaError naming it', () => {
    expectPersonaError(() => SafetensorsFile.open(path.join(dir, 'none.safetensors')), 'none.safetensors', 'cannot open');
  });

  it('names the tensor when reading a missing name, or a file truncated after opening', () => {
    const f = writeRaw('ok.safetensors', rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32Bytes([1, 2])));
    const st = SafetensorsFile.open(f);
    try {
      expectPersonaError(() => st.read('nope'), f, "tensor 'nope'");
      fs.truncateSync(f, fs.statSync(f).size - 2);
      expectPersonaError(() => st.read('w'), f, "tensor 'w'", 'truncated');
    } finally {
      st.close();
    }
  });
});

describe('writeSafetensors', () => {
  it('writes the reference layout: aligned header, F32 then BF16 then F16, names sorted within a dtype', () => {
    const f = path.join(dir, 'w.safetensors');
    writeSafetensors(f, {
      'z.f16': { shape: [1], data: new Float32Array([1]), dtype: 'F16' },
      'b.f32': { shape: [1], data: new Float32Array([2]) },
      'a.bf16': { shape: [1], data: new Float32Array([1]), dtype: 'BF16' },
      'a.f32': { shape: [2], data: new Float32Array([3, 4]), dtype: 'F32' },
    }, { format: 'pt' });
    const bytes = fs.readFileSync(f);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header['a.f32'].data_offsets).toEqual([0, 8]);
    expect(header['b.f32'].data_offsets).toEqual([8, 12]);
    expect(header['a.bf16']).toEqual({ dtype: 'BF16', shape: [1], data_offsets: [12, 14] });
    expect(header['z.f16']).toEqual({ dtype: 'F16', shape: [1], data_offsets: [14, 16] });
    const data = bytes.subarray(8 + n);
    expect(data.byteLength).toBe(16);
    expect([data.readFloatLE(0), data.readFloatLE(4), data.readFloatLE(8)]).toEqual([3, 4, 2]);
    expect(data.readUInt16LE(12)).toBe(0x3f80);
    expect(data.readUInt16LE(14)).toBe(0x3c00);
    expect(fs.readdirSync(dir)).toEqual(['w.safetensors']); // no temp file left behind
  });

  it('round-trips F32 exactly and F16/BF16 within half an ulp', () => {
    const f = path.join(dir, 'rt.safetensors');
    const values = randomValues(3000);
    values.set([0, -0, Infinity, -Infinity, 65504, 2 ** -24, 1e-30], 0);
    writeSafetensors(f, {
      f32: { shape: [3, 1000], data: values },
      f16: { shape: [3000], data: values, dtype: 'F16' },
      bf16: { shape: [30, 100], data: values, dtype: 'BF16' },
      empty: { shape: [0], data: new Float32Array(0) },
    });
    const st = SafetensorsFile.open(f);
    try {
      expect(st.info('f32').shape).toEqual([3, 1000]);
      expect(Buffer.from(st.read('f32').buffer).equals(Buffer.from(values.buffer))).toBe(true);
      expect(st.read('empty')).toHaveLength(0);
      const f16 = st.read('f16');
      const bf16 = st.read('bf16');
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (!Number.isFinite(v)) {
          expect(f16[i]).toBe(v);
          expect(bf16[i]).toBe(v);
          continue;
        }
        expect(Object.is(Math.sign(f16[i]), Math.sign(v)) || Math.abs(v) < 2 ** -24).toBe(true);
        // binary16: 11 significant bits (relative half-ulp 2^-11), absolute 2^-25 in the subnormal range.
        expect(Math.abs(f16[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
        // bfloat16: 8 significant bits.
        expect(Math.abs(bf16[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8);
      }
    } finally {
      st.close();
    }
  });

  it('rejects data whose length disagrees with the shape, naming the tensor, and writes nothing', () => {
    const f = path.join(dir, 'bad.safetensors');
    expectPersonaError(() => writeSafetensors(f, { w: { shape: [2, 2], data: new Float32Array(3) } }), f, "tensor 'w'");
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('real checkpoints written by transformers save_pretrained', () => {
  const root = path.join(__dirname, '..', 'fixtures', 'hf-parity');
  for (const fixture of ['llama-tiny', 'qwen2-tiny-tied', 'qwen2-tiny-untied']) {
    it(`${fixture}: names and shapes follow config.json`, () => {
      const cfg = JSON.parse(fs.readFileSync(path.join(root, fixture, 'config.json'), 'utf8'));
      const h: number = cfg.hidden_size;
      const headDim: number = cfg.head_dim ?? h / cfg.num_attention_heads;
      const q = cfg.num_attention_heads * headDim;
      const kv = cfg.num_key_value_heads * headDim;
      const bias = cfg.model_type === 'qwen2';
      const expected: Record<string, number[]> = { 'model.embed_tokens.weight': [cfg.vocab_size, h], 'model.norm.weight': [h] };
      if (!cfg.tie_word_embeddings) expected['lm_head.weight'] = [cfg.vocab_size, h];
      for (let l = 0; l < cfg.num_hidden_layers; l++) {
        const p = `model.layers.${l}.`;
        Object.assign(expected, {
          [p + 'input_layernorm.weight']: [h], [p + 'post_attention_layernorm.weight']: [h],
          [p + 'self_attn.q_proj.weight']: [q, h], [p + 'self_attn.k_proj.weight']: [kv, h],
          [p + 'self_attn.v_proj.weight']: [kv, h], [p + 'self_attn.o_proj.weight']: [h, q],
          [p + 'mlp.gate_proj.weight']: [cfg.intermediate_size, h], [p + 'mlp.up_proj.weight']: [cfg.intermediate_size, h],
          [p + 'mlp.down_proj.weight']: [h, cfg.intermediate_size],
        });
        if (bias) Object.assign(expected, { [p + 'self_attn.q_proj.bias']: [q], [p + 'self_attn.k_proj.bias']: [kv], [p + 'self_attn.v_proj.bias']: [kv] });
      }
      const st = SafetensorsFile.open(path.join(root, fixture, 'model.safetensors'));
      try {
        expect(st.metadata).toEqual({ format: 'pt' });
        expect(st.names().sort()).toEqual(Object.keys(expected).sort());
        for (const [name, shape] of Object.entries(expected)) {
          expect(st.info(name).shape).toEqual(shape);
          const v = st.read(name);
          expect(v).toHaveLength(shape.reduce((a, b) => a * b, 1));
          expect(v.every(Number.isFinite)).toBe(true);
        }
      } finally {
        st.close();
      }
    });
  }

  it('llama-tiny values match an independent decode (Python struct.unpack of the same bytes)', () => {
    const st = SafetensorsFile.open(path.join(root, 'llama-tiny', 'model.safetensors'));
    try {
      // First four floats of model.embed_tokens.weight as printed by Python's struct module.
      expect(Array.from(st.read('model.embed_tokens.weight').subarray(0, 4))).toEqual(
        [2.117779016494751, -0.7303165793418884, 0.1667594611644745, -0.09839983284473419]);
    } finally {
      st.close();
    }
  });
});
