import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersonaError } from '../../lib/errors';

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-io-'));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Build safetensors bytes by hand (independently of writeSafetensors): 8-byte LE header length,
 * header text, data. `headerLen` overrides the declared length to fabricate corrupt files.
 */
export function rawSafetensors(header: object | string, data: Uint8Array, headerLen?: bigint): Buffer {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(text.byteLength));
  return Buffer.concat([len, text, Buffer.from(data)]);
}

/** Little-endian bytes of 16-bit patterns. */
export function u16Bytes(bits: number[]): Uint8Array {
  const b = Buffer.alloc(bits.length * 2);
  bits.forEach((v, i) => b.writeUInt16LE(v, i * 2));
  return b;
}

export function f32Bytes(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
}

/** Deterministic pseudo-random float32 values (LCG), spread over several orders of magnitude. */
export function randomValues(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    out[i] = (u - 0.5) * 10 ** ((i % 7) - 3);
  }
  return out;
}

/** Expect exactly one PersonaError whose message names `file` and each of `mentions` (tensor, field, cause). */
export function expectPersonaError(fn: () => unknown, file: string, ...mentions: string[]): PersonaError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PersonaError);
  const err = caught as PersonaError;
  expect(err.message).toContain(file);
  for (const m of mentions) expect(err.message).toContain(m);
  return err;
}
