/**
 * The WebGPU backend of TensorFlow.js, in Node through Dawn (the `webgpu` npm package, an optional dependency)
 * and in browsers through `navigator.gpu`.
 *
 * We create the device ourselves instead of letting tfjs-backend-webgpu do it: to ask the adapter for its largest
 * limits (tfjs asks for six of them; storage buffers per stage stays at the default 8 otherwise), to log what the
 * adapter is, to tell hardware from software adapters (`auto` uses only hardware ones), and to watch for a lost
 * device so that the next read of a tensor fails with a clear error instead of hanging or returning zeros.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';

/** What the adapter said of itself, and the limits the device was created with. */
export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  /** Driver and version where the platform says (Dawn puts it in the description). */
  description: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, WARP). */
  software: boolean;
  features: string[];
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxStorageBuffersPerShaderStage: number; maxComputeWorkgroupStorageSize: number };
}

/** Minimal structural types of the WebGPU objects used here (no dependency on @webgpu/types in the build). */
interface GpuAdapterLike {
  info?: Record<string, unknown>;
  features: Iterable<string> & { has(f: string): boolean };
  limits: Record<string, number>;
  isFallbackAdapter?: boolean;
  requestDevice(desc: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<GpuDeviceLike>;
}
interface GpuDeviceLike {
  lost: Promise<{ reason: string; message: string }>;
  limits: Record<string, number>;
  destroy(): void;
}
interface GpuLike {
  requestAdapter(opts?: { powerPreference?: string; forceFallbackAdapter?: boolean }): Promise<GpuAdapterLike | null>;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|microsoft basic render|warp/i;

/** One Dawn instance per package per process: `auto` probes it, then the backend is created on the same one. */
const dawnInstances = new Map<string, { gpu: GpuLike; via: string } | { reason: string }>();

/** Where WebGPU comes from: the `webgpu` package's Dawn addon in Node, navigator.gpu in a browser. */
function findGpu(): { gpu: GpuLike; via: string } | { reason: string } {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, via: 'navigator.gpu' };
  if (typeof process === 'undefined' || !process.versions?.node) return { reason: 'this browser has no navigator.gpu (WebGPU is off or unsupported)' };
  // PERSONA_WEBGPU_PACKAGE names another build of the same package (e.g. a Dawn built locally).
  const pkg = process.env.PERSONA_WEBGPU_PACKAGE || 'webgpu';
  if (!dawnInstances.has(pkg)) dawnInstances.set(pkg, loadDawn(pkg));
  return dawnInstances.get(pkg)!;
}

function loadDawn(pkg: string): { gpu: GpuLike; via: string } | { reason: string } {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return { reason: `the optional package '${pkg}' (Dawn for Node) is not installed: run \`npm install ${pkg}\`` };
  }
  // The package's entry is an ES module; its native addon is plain CommonJS, so we load that directly (no dynamic
  // import, which neither TypeScript's CommonJS output nor jest can pass through).
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  const addon = path.join(dir, 'dist', `${process.platform}-${arch}`, 'dawn.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const dawn = require(addon) as { create(flags: string[]): GpuLike; globals: Record<string, unknown> };
    // tfjs-backend-webgpu uses the WebGPU enums (GPUBufferUsage, GPUMapMode, …) as globals, as in a browser.
    for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    const flags = (process.env.PERSONA_DAWN_FLAGS ?? '').split(',').filter(Boolean);
    return { gpu: dawn.create(flags), via: `Dawn (${pkg} ${readVersion(dir)})` };
  } catch (e) {
    return { reason: `the '${pkg}' package has no working Dawn build for ${process.platform}-${process.arch} (${(e as Error).message.split('\n')[0]})` };
  }
}

function readVersion(dir: string): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(path.join(dir, 'package.json')) as { version: string }).version;
  } catch {
    return '?';
  }
}

function summarize(adapter: GpuAdapterLike, device: GpuDeviceLike | null): GpuAdapterSummary {
  const info = adapter.info ?? {};
  const s = (k: string) => String(info[k] ?? '');
  const text = `${s('vendor')} ${s('architecture')} ${s('device')} ${s('description')}`;
  const lim = device?.limits ?? adapter.limits;
  return {
    vendor: s('vendor'),
    architecture: s('architecture'),
    device: s('device'),
    description: s('description'),
    software: info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE.test(text),
    features: [...adapter.features].sort(),
    limits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
    },
  };
}

export function describeAdapter(a: GpuAdapterSummary): string {
  const name = [a.vendor, a.device || a.architecture].filter(Boolean).join(' ');
  const kind = a.software ? 'software adapter' : 'hardware adapter';
  const lim = `max binding ${(a.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, ${a.limits.maxStorageBuffersPerShaderStage} storage buffers per stage`;
  return `${name || 'unknown adapter'}${a.description ? ` (${a.description})` : ''}; ${kind}; ${lim}`;
}

/** The adapter, without creating a device (used by `auto` to decide). */
export async function probeWebGpu(): Promise<{ ok: true; summary: GpuAdapterSummary; via: string } | { ok: false; reason: string }> {
  const found = findGpu();
  if ('reason' in found) return { ok: false, reason: found.reason };
  const adapter = await found.gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) return { ok: false, reason: `${found.via} found no GPU adapter (on Linux: a Vulkan driver for the GPU, e.g. the NVIDIA driver or Mesa's mesa-vulkan-drivers)` };
  return { ok: true, summary: summarize(adapter, null), via: found.via };
}

interface ActiveGpu {
  device: GpuDeviceLike;
  summary: GpuAdapterSummary;
  /** Set when the device is lost for any reason other than our own dispose. */
  lost: { reason: string; message: string } | null;
}
let active: ActiveGpu | null = null;

/** The adapter the webgpu backend runs on, once it has been initialised. */
export function webgpuAdapter(): GpuAdapterSummary | null {
  return active?.summary ?? null;
}

/**
 * Registers the 'webgpu' tfjs backend on a device created with the adapter's largest limits (or WebGPU's
 * defaults when PERSONA_WEBGPU_LIMITS=default: the strict setting the tests use, so that code which passes
 * respects any GPU's limits). Returns the adapter; throws a PersonaError saying what is missing.
 */
export async function registerWebGpu(): Promise<GpuAdapterSummary> {
  if (active && tf.findBackendFactory('webgpu')) return active.summary;
  const found = findGpu();
  if ('reason' in found) throw new PersonaError(`backend 'webgpu' requested but ${found.reason}`);
  const adapter = await found.gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter)
    throw new PersonaError(
      `backend 'webgpu' requested but ${found.via} found no GPU adapter; on Linux install the GPU's Vulkan driver ` +
        "(NVIDIA's driver, or Mesa's mesa-vulkan-drivers ≥ 24 for a CPU-only software adapter), or use backend wasm",
    );
  const requiredLimits: Record<string, number> = {};
  if ((process.env.PERSONA_WEBGPU_LIMITS ?? 'max') !== 'default') {
    // Every numeric limit at the adapter's maximum. Dawn rejects values above the adapter's, never these.
    for (const k in adapter.limits) {
      const v = adapter.limits[k];
      if (typeof v === 'number' && Number.isFinite(v)) requiredLimits[k] = v;
    }
  } else {
    // WebGPU's defaults except the binding size, which tfjs needs at the adapter's value to hold a model.
    for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize']) requiredLimits[k] = adapter.limits[k];
  }
  const requiredFeatures = ['timestamp-query', 'subgroups'].filter((f) => adapter.features.has(f));
  let device: GpuDeviceLike;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  } catch (e) {
    throw new PersonaError(`the GPU adapter refused to create a device: ${(e as Error).message}`);
  }
  const gpu: ActiveGpu = { device, summary: summarize(adapter, device), lost: null };
  void device.lost.then((info) => {
    if (active === gpu) gpu.lost = { reason: info.reason, message: info.message };
  });
  // tfjs-backend-webgpu registers itself only where navigator.gpu exists when it is first imported, and its
  // backend checks for it; in Node we provide it before loading the package.
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  if (!g.navigator!.gpu) Object.defineProperty(g.navigator!, 'gpu', { value: found.gpu, configurable: true });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { WebGPUBackend } = require('@tensorflow/tfjs-backend-webgpu') as { WebGPUBackend: new (device: unknown, info: unknown) => tf.KernelBackend };
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info), 0);
  active = gpu;
  return gpu.summary;
}

/** Throws a PersonaError when the GPU device has been lost (driver reset, GPU removed, out of memory). */
export function checkDevice(): void {
  if (!active?.lost || tf.getBackend() !== 'webgpu') return;
  const { reason, message } = active.lost;
  throw new PersonaError(
    `the GPU device was lost (${reason}${message ? `: ${message.split('\n')[0]}` : ''}); every tensor on it is gone. ` +
      'Rerun the command: `persona train` resumes from its last checkpoint and `persona run` from its last finished cell',
  );
}

/** Destroys the device as a lost GPU would be (tests of the lost-device path). */
export function loseDeviceForTesting(): void {
  if (!active) throw new Error('no webgpu device');
  active.device.destroy();
  active.lost = { reason: 'unknown', message: 'destroyed for testing' };
}

/**
 * Runs `make` (which creates one tensor) and, on webgpu, puts the tensor's data on the GPU now inside an
 * out-of-memory error scope. Returns null, or the GPU's out-of-memory message. Elsewhere it only runs `make`.
 * Uploading at once also frees the host copy of the values (tfjs drops it after upload), so loading a model holds
 * one tensor's values on the host at a time.
 */
export async function onDevice(make: () => tf.Tensor): Promise<string | null> {
  const gpu = tf.getBackend() === 'webgpu' ? active : null;
  if (!gpu) {
    make();
    return null;
  }
  const device = gpu.device as GpuDeviceLike & { pushErrorScope(f: string): void; popErrorScope(): Promise<{ message: string } | null> };
  device.pushErrorScope('out-of-memory');
  let failure: string | null = null;
  try {
    const t = make();
    const b = tf.backend() as unknown as { uploadToGPU(id: object): void; ensureCommandEncoderReady(): void; endComputePassEncoder(): void; submitQueue(): void };
    b.uploadToGPU(t.dataId);
    b.ensureCommandEncoderReady();
    b.endComputePassEncoder();
    b.submitQueue();
  } catch (e) {
    // A mapped-at-creation buffer that cannot be allocated throws RangeError (WebGPU spec).
    if (!(e instanceof RangeError)) {
      await device.popErrorScope();
      throw e;
    }
    failure = e.message;
  }
  const err = await device.popErrorScope();
  checkDevice();
  return failure ?? (err ? err.message : null);
}
