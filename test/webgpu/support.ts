/**
 * Shared set-up of the webgpu suite: makes TF.js's WebGPU backend (Dawn in Node) the active backend, or fails the
 * file loudly (no silent skip), checks that the strict limits CI asks for are really in effect, and records every
 * uncaptured GPU error. WebGPU reports an invalid pipeline or bind group (e.g. a shader binding more storage buffers
 * than the device allows) only through that event: the op's result is silently zeros. Every test therefore ends by
 * asserting that the GPU reported nothing.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend, webgpuAdapter } from '../../lib/backend';

interface DeviceLike {
  addEventListener(type: 'uncapturederror', cb: (ev: { error: { message: string } }) => void): void;
  queue: { onSubmittedWorkDone(): Promise<void> };
  limits: Record<string, number>;
}

const errors: string[] = [];
let watched: DeviceLike | null = null;

/** The device tfjs-backend-webgpu runs on (its backend exposes it as `device`). */
export function gpuDevice(): DeviceLike {
  return (tf.backend() as unknown as { device: DeviceLike }).device;
}

/** Activates the webgpu backend and installs the error watch on its device; throws when webgpu is unavailable. */
export async function useWebGpu(): Promise<void> {
  const name = await useBackend('webgpu', () => undefined);
  if (name !== 'webgpu' || tf.getBackend() !== 'webgpu') throw new Error(`webgpu requested, got backend '${tf.getBackend()}'`);
  const adapter = webgpuAdapter();
  if (!adapter) throw new Error('webgpu backend active but no adapter recorded');
  const device = gpuDevice();
  if (process.env.PERSONA_WEBGPU_LIMITS === 'default' && device.limits.maxStorageBuffersPerShaderStage !== 8)
    throw new Error(`PERSONA_WEBGPU_LIMITS=default but the device has ${device.limits.maxStorageBuffersPerShaderStage} storage buffers per stage`);
  if (watched !== device) {
    device.addEventListener('uncapturederror', (ev) => errors.push(ev.error.message.split('\n')[0]));
    watched = device;
  }
}

/** Waits for the GPU to finish what was submitted, then returns (and clears) the errors it reported. */
export async function takeGpuErrors(): Promise<string[]> {
  if (watched) await watched.queue.onSubmittedWorkDone();
  return errors.splice(0);
}

/** beforeAll: webgpu; afterEach: no GPU error was reported during the test. */
export function setUpWebGpuSuite(): void {
  beforeAll(useWebGpu);
  afterEach(async () => {
    expect(await takeGpuErrors()).toEqual([]);
  });
}
