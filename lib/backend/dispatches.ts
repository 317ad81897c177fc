/**
 * Kernel dispatches and host→GPU uploads counted on the webgpu backend: a device-independent measure of the per-step
 * overhead of decoding (each dispatch costs microseconds of encoding and launch whatever the GPU, so a decode step of
 * hundreds of small dispatches per layer is overhead-bound on any card).
 */
import * as tf from '@tensorflow/tfjs';

export interface DispatchCounts {
  dispatches: number;
  /** Buffers written from host values (tensors created from JS arrays and first used on the GPU). */
  uploads: number;
  /** Dispatches by program (tfjs's program class name). */
  byProgram: Record<string, number>;
}

interface WebGpuBackendLike {
  recordAndSubmit(program: { constructor: { name: string } }, ...rest: unknown[]): unknown;
  uploadToGPU(dataId: object): void;
  tensorMap: { get(id: object): { values: unknown; resource: unknown } | undefined };
}

/**
 * A live counter of the webgpu backend's dispatches and uploads until stop() is called; null on other backends.
 * Read `counts` at any time (e.g. between decoding steps).
 */
export function startDispatchCounter(): { counts: DispatchCounts; stop(): void } | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const b = tf.backend() as unknown as WebGpuBackendLike;
  const counts: DispatchCounts = { dispatches: 0, uploads: 0, byProgram: {} };
  const record = b.recordAndSubmit;
  const upload = b.uploadToGPU;
  b.recordAndSubmit = function (this: WebGpuBackendLike, program, ...rest) {
    counts.dispatches++;
    const name = program.constructor.name;
    counts.byProgram[name] = (counts.byProgram[name] ?? 0) + 1;
    return record.call(this, program, ...rest);
  };
  b.uploadToGPU = function (this: WebGpuBackendLike, dataId: object) {
    const d = this.tensorMap.get(dataId);
    if (d && d.resource == null && d.values != null) counts.uploads++;
    return upload.call(this, dataId);
  };
  return {
    counts,
    stop() {
      b.recordAndSubmit = record;
      b.uploadToGPU = upload;
    },
  };
}
