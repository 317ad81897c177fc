/**
 * useBackend / checkFitsInMemory / wasmHeapLimitBytes, on this machine (tfjs-node is not installed).
 * Backends are global: the tests in this file run in order and each leaves a known backend active.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../../lib/errors';
import { checkFitsInMemory, useBackend, wasmBinaryDir, wasmHeapLimitBytes } from '../../lib/backend';

function recorder(): { log: (m: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { log: (m) => lines.push(m), lines };
}

const savedEnv = process.env.PERSONA_BACKEND;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.PERSONA_BACKEND;
  else process.env.PERSONA_BACKEND = savedEnv;
});

describe('useBackend', () => {
  test("'cpu' activates cpu and logs once; a second call is a silent no-op", async () => {
    const r = recorder();
    expect(await useBackend('cpu', r.log)).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await useBackend('cpu', r.log)).toBe('cpu');
    expect(r.lines).toEqual(['backend: cpu (requested)']);
  });

  test("'wasm' activates wasm with the kernel fixes installed", async () => {
    const r = recorder();
    expect(await useBackend('wasm', r.log)).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(r.lines).toEqual(['backend: wasm (requested)']);
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    const mm = tf.getKernel('BatchMatMul', 'wasm').kernelFunc as unknown as Record<symbol, unknown>;
    expect(mm[Symbol.for('persona.wasmFixedKernel')]).toBe(true);
    expect(await useBackend('wasm', r.log)).toBe('wasm');
    expect(r.lines).toHaveLength(1);
  });

  test("'auto' without tfjs-node or a GPU chooses wasm and says why", async () => {
    await useBackend('cpu', () => {});
    const r = recorder();
    // No WebGPU here whatever the machine has (backend-select in the webgpu suite covers adapters).
    process.env.PERSONA_WEBGPU_PACKAGE = 'no-such-dawn-package';
    try {
      expect(await useBackend('auto', r.log)).toBe('wasm');
    } finally {
      delete process.env.PERSONA_WEBGPU_PACKAGE;
    }
    expect(tf.getBackend()).toBe('wasm');
    expect(r.lines).toEqual([
      "backend: wasm (tfjs-node not installed; no webgpu: the optional package 'no-such-dawn-package' (Dawn for Node) is not installed: run `npm install no-such-dawn-package`)",
    ]);
    expect(await useBackend('auto', r.log)).toBe('wasm');
    expect(r.lines).toHaveLength(1);
  });

  test("'tensorflow' is a PersonaError naming the package to install, and leaves the backend alone", async () => {
    const err = await useBackend('tensorflow', () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PersonaError);
    expect((err as Error).message).toMatch(/@tensorflow\/tfjs-node not installed/);
    expect((err as Error).message).toMatch(/npm install @tensorflow\/tfjs-node/);
    expect(tf.getBackend()).toBe('wasm');
  });

  test('PERSONA_BACKEND is the default request; a bad value is a PersonaError naming the variable', async () => {
    process.env.PERSONA_BACKEND = 'cpu';
    expect(await useBackend(undefined, () => {})).toBe('cpu');
    process.env.PERSONA_BACKEND = 'metal';
    const err = await useBackend(undefined, () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PersonaError);
    expect((err as PersonaError).place.field).toBe('PERSONA_BACKEND');
    expect((err as Error).message).toMatch(/unknown backend 'metal'.*auto, tensorflow, webgpu, wasm, cpu/);
    // an explicit argument wins over the environment
    expect(await useBackend('wasm', () => {})).toBe('wasm');
  });
});

describe('wasm binaries and heap cap', () => {
  test('the binaries are read from node_modules, SIMD variant present', () => {
    const dir = wasmBinaryDir();
    expect(dir).toContain(path.join('node_modules', '@tensorflow', 'tfjs-backend-wasm'));
    expect(fs.existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))).toBe(true);
  });

  test('wasmHeapLimitBytes is the getHeapMax() compiled into the shipped emscripten glue', () => {
    const glue = fs.readFileSync(
      path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out', 'tfjs-backend-wasm.js'),
      'utf8',
    );
    const m = /getHeapMax\(\)\{return (\d+)/.exec(glue);
    expect(m).not.toBeNull();
    expect(wasmHeapLimitBytes()).toBe(Number(m![1]));
    expect(wasmHeapLimitBytes()).toBeLessThanOrEqual(4 * 1024 ** 3);
  });

  test('checkFitsInMemory: PersonaError on wasm with numbers and advice, silent below the cap and on cpu', async () => {
    await useBackend('wasm', () => {});
    const what = 'model /x: 7.6 GB of float32 weights';
    expect(() => checkFitsInMemory(7.6e9, what)).toThrow(PersonaError);
    try {
      checkFitsInMemory(7.6e9, what);
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg).toContain(what);
      expect(msg).toContain('7.60 GB');
      expect(msg).toContain(String(wasmHeapLimitBytes()));
      expect(msg).toMatch(/tfjs-node/);
    }
    expect(() => checkFitsInMemory(1e9, what)).not.toThrow();
    expect(() => checkFitsInMemory(wasmHeapLimitBytes() + 1, what)).toThrow(PersonaError);
    await useBackend('cpu', () => {});
    expect(() => checkFitsInMemory(7.6e9, what)).not.toThrow();
  });
});
