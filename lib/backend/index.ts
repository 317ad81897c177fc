/**
 * Choice of TensorFlow.js backend, and the wasm kernel fixes that make the wasm backend fit for training.
 *
 *   auto       → @tensorflow/tfjs-node-gpu, else @tensorflow/tfjs-node (optionalDependencies, native TF),
 *                else webgpu on a hardware adapter (./webgpu: Dawn in Node, navigator.gpu in browsers),
 *                else wasm (SIMD binary from node_modules, with ./wasm-fixes), else cpu (pure JS).
 *                Software GPU adapters (lavapipe, SwiftShader) are used only when webgpu is asked for by name.
 *   tensorflow → native TF or a PersonaError saying what to install.
 *   webgpu     → any adapter, software ones included, or a PersonaError saying what was found and what to install.
 *
 * Gradient facts for tfjs 4.22 that hold on EVERY backend (tested in test/backend/gradients.test.ts);
 * the model code works around them rather than this module patching core gradients globally:
 *   - StridedSlice has no registered gradient ("gradient function not found for StridedSlice"): use slice.
 *   - linalg.bandPart is built from unstack/stack; its gradient throws when the batch of matrices has
 *     size 1 (e.g. a plain 2-D matrix), because Unpack's gradient then receives a lone tensor. Apply causal
 *     masks as a constant mask (where / add) instead of differentiating through bandPart.
 *   - BatchMatMul's gradient with a batched a and an unbatched or batch-1 b ([B,S,H]×[H,N], or
 *     [B,S,H]×[1,H,N]) returns db with a's batch shape and fails the shape check. Keep activations
 *     [B·S, H] for linear layers (a 2-D×2-D matmul).
 *   - Ops inside tf.grad that produce bool (greater, equal, ...) from the differentiated tensor throw
 *     "gradient function not found": compute masks from tensors that are not being differentiated.
 *   - Einsum has no kernel on wasm and no gradient anywhere.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { PersonaError } from '../errors';
import { installWasmFixes } from './wasm-fixes';
import { describeAdapter, probeWebGpu, registerWebGpu } from './webgpu';

// Importing tfjs-backend-wasm registers 'wasm' above 'cpu', so code that never calls useBackend would
// silently get wasm *without* the kernel fixes below. Re-register it below cpu: wasm is chosen only
// through useBackend, which installs the fixes.
const wasmFactory = tf.findBackendFactory('wasm');
if (wasmFactory && tf.engine().backendName !== 'wasm') {
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', wasmFactory, 0);
}

export type BackendRequest = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export { installWasmFixes } from './wasm-fixes';
export { webgpuAdapter, describeAdapter, checkDevice } from './webgpu';
export type { GpuAdapterSummary } from './webgpu';

const REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/**
 * emscripten's getHeapMax() for the tfjs-backend-wasm 4.22 binaries: 65535 pages of 64 KiB (the
 * 4 GiB wasm32 address space minus one page). Neither weights nor activations can live elsewhere.
 */
const WASM_HEAP_MAX_BYTES = 4294901760;

let wasmPathsSet = false;

const defaultLog = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

/** Directory holding the tfjs-backend-wasm .wasm binaries, resolved inside node_modules (no fetch). */
export function wasmBinaryDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'));
}

function parseRequest(request: string | undefined): BackendRequest {
  const fromEnv = request === undefined;
  const value = (request ?? process.env.PERSONA_BACKEND ?? 'auto').trim();
  if ((REQUESTS as readonly string[]).includes(value)) return value as BackendRequest;
  throw new PersonaError(
    `unknown backend '${value}'; expected one of ${REQUESTS.join(', ')}`,
    fromEnv ? { field: 'PERSONA_BACKEND' } : { field: 'backend' },
  );
}

/** require() a native tfjs package; it registers the 'tensorflow' backend as a side effect. */
function loadNative(): { pkg: string } | { reasons: string[] } {
  const reasons: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(pkg);
      if (tf.findBackendFactory('tensorflow') != null) return { pkg };
      reasons.push(`${pkg} loaded but registered no 'tensorflow' backend`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      reasons.push(code === 'MODULE_NOT_FOUND' ? `${pkg} not installed` : `${pkg} failed to load: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return { reasons };
}

async function activate(name: string): Promise<boolean> {
  if (tf.engine().backendName === name) return true;
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function activateWebGpu() {
  const summary = await registerWebGpu();
  if (!(await activate('webgpu'))) throw new PersonaError(`the webgpu backend failed to initialise on ${describeAdapter(summary)}`);
  await tf.ready();
  return summary;
}

async function activateWasm(): Promise<{ ok: true; simd: boolean } | { ok: false; reason: string }> {
  if (!wasmPathsSet) {
    // Takes effect only if it precedes the backend's initialisation (later it is a harmless no-op).
    setWasmPaths(`${wasmBinaryDir()}${path.sep}`);
    wasmPathsSet = true;
  }
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  if (!(await activate('wasm'))) return { ok: false, reason: 'the wasm backend failed to initialise' };
  await tf.ready();
  installWasmFixes(tf.backend());
  return { ok: true, simd };
}

/**
 * Make `request` (default: $PERSONA_BACKEND, then 'auto') the active tfjs backend and return its name
 * ('tensorflow' | 'wasm' | 'cpu'). Logs the choice and the reason once per switch; calling again with
 * the same outcome is a no-op.
 */
export async function useBackend(request?: BackendRequest, log: (msg: string) => void = defaultLog): Promise<string> {
  const want = parseRequest(request);
  const current = tf.engine().backendName;

  if (want === 'cpu') {
    if (current === 'cpu') return 'cpu';
    if (!(await activate('cpu'))) throw new PersonaError('the cpu backend failed to initialise');
    log('backend: cpu (requested)');
    return 'cpu';
  }

  if (want === 'tensorflow' || want === 'auto') {
    if (current === 'tensorflow') return 'tensorflow';
    const native = loadNative();
    if ('pkg' in native) {
      if (await activate('tensorflow')) {
        log(`backend: tensorflow (${native.pkg})`);
        return 'tensorflow';
      }
      if (want === 'tensorflow') {
        throw new PersonaError(`backend 'tensorflow' requested: ${native.pkg} loaded but its backend failed to initialise`);
      }
    } else if (want === 'tensorflow') {
      throw new PersonaError(
        `backend 'tensorflow' requested but native TensorFlow is unavailable (${native.reasons.join('; ')}); ` +
          'install it with `npm install @tensorflow/tfjs-node` (or @tensorflow/tfjs-node-gpu with CUDA), or use backend wasm',
      );
    }
    let why = 'pkg' in native ? `${native.pkg} failed to initialise` : 'tfjs-node not installed';
    if (current === 'webgpu') return 'webgpu';
    const probe = await probeWebGpu();
    if (probe.ok && !probe.summary.software) {
      await activateWebGpu();
      log(`backend: webgpu (${why}; ${probe.via}: ${describeAdapter(probe.summary)})`);
      return 'webgpu';
    }
    why += probe.ok ? `; only a software GPU adapter (${probe.summary.description || probe.summary.device}), used only with --backend webgpu` : `; no webgpu: ${probe.reason}`;
    if (current === 'wasm') return 'wasm';
    const w = await activateWasm();
    if (w.ok) {
      log(`backend: wasm (${why}${w.simd ? '' : '; no wasm SIMD in this runtime, expect slow matmuls'})`);
      return 'wasm';
    }
    if (!(await activate('cpu'))) throw new PersonaError(`no usable backend: ${why}; ${w.reason}; cpu failed too`);
    log(`backend: cpu (${why}; ${w.reason})`);
    return 'cpu';
  }

  if (want === 'webgpu') {
    if (current === 'webgpu') return 'webgpu';
    const summary = await activateWebGpu();
    log(`backend: webgpu (requested; ${describeAdapter(summary)})`);
    return 'webgpu';
  }

  // want === 'wasm'
  if (current === 'wasm') return 'wasm';
  const w = await activateWasm();
  if (!w.ok) {
    throw new PersonaError(`backend 'wasm' requested but ${w.reason}; reinstall @tensorflow/tfjs-backend-wasm or use backend cpu`);
  }
  log(`backend: wasm (requested${w.simd ? '' : '; no wasm SIMD in this runtime, expect slow matmuls'})`);
  return 'wasm';
}

/** Upper bound on the wasm heap, in bytes (all tensors on the wasm backend live in it). */
export function wasmHeapLimitBytes(): number {
  return WASM_HEAP_MAX_BYTES;
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

/**
 * On the wasm backend, throw a PersonaError if `bytes` (described by `what`, e.g.
 * "model /x: 7.6 GB of float32 weights") cannot fit under the heap cap. No-op on other backends.
 */
export function checkFitsInMemory(bytes: number, what: string): void {
  if (tf.engine().backendName !== 'wasm') return;
  const limit = wasmHeapLimitBytes();
  if (!(bytes <= limit)) {
    throw new PersonaError(
      `${what}: needs ${gb(bytes)} (${bytes} bytes) but the wasm backend's heap is capped at ${gb(limit)} ` +
        `(${limit} bytes); install @tensorflow/tfjs-node (\`npm install @tensorflow/tfjs-node\`) and use ` +
        'backend tensorflow, or use a smaller model',
    );
  }
}
