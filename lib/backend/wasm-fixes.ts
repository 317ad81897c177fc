/**
 * Kernel fixes for @tensorflow/tfjs-backend-wasm 4.22, installed once by `useBackend('wasm')`. Everything
 * here is registered for backendName 'wasm' only; cpu and tfjs-node are untouched.
 *
 * 1. BatchMatMul. The wasm C++ kernel runs XNNPACK's fully-connected operator only when
 *    !transposeA && !transposeB && both batch sizes are 1; every other case (all attention matmuls, every
 *    backward matmul) falls into a blocked scalar loop ~10x slower. The replacement transposes operands
 *    explicitly (wasm Transpose kernel) and calls the same exported C function once per batch on
 *    zero-copy views of the operands, so every product takes the XNNPACK path. When b is shared across
 *    the batch (activations [..., seq, hidden] × weights [hidden, out]) the batch is folded into rows
 *    and b keeps its real tensor id, so XNNPACK's packed-weights cache (keyed by b's id) still hits.
 *    Batch dims broadcast numpy-style on both sides; the stock wasm and cpu kernels flatten the outer
 *    dims and return a corrupt tensor for e.g. [2,1,M,K]×[1,3,K,N] (shape [2,3,M,N], 6·M·N values).
 * 2. UnsortedSegmentSum (needed by the gradient of gather, i.e. of the embedding) is missing on wasm.
 *    It is computed by the wasm ScatterNd kernel, which accumulates duplicate indices; only the int32
 *    segment ids are inspected in JS (to route out-of-range ids to a discarded row, as TF drops them),
 *    the [N, hidden] values never leave the wasm heap.
 *
 * Not patched: _FusedMatMul (tf.fused.matMul) keeps the stock fast-path condition; the model uses plain
 * matMul. Node has no wasm threads, so XNNPACK runs single-threaded.
 *
 * Internals of BackendWasm (dataIdMap, dataIdNextNumber, wasm.cwrap, wasm.tfjs.registerTensor) are used
 * through the narrow `WasmInternals` interface below; `installWasmFixes` checks they exist and refuses
 * (with a message) rather than patching a backend whose shape it does not know.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

type DataId = object;

interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

/** The parts of BackendWasm (tfjs-backend-wasm 4.22) this module relies on. */
interface WasmInternals {
  wasm: {
    cwrap(name: string, returnType: null, argTypes: string[]): (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, memoryOffset: number): void; disposeData(id: number): void };
  };
  dataIdMap: { get(dataId: DataId): WasmTensorData | undefined };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap };

const FIXED = Symbol.for('persona.wasmFixedKernel');
type TaggedKernelFunc = KernelFunc & { [FIXED]?: true };

/** Calls of the exported C function `BatchMatMul(a_id, a_shape, a_rank, b_id, b_shape, b_rank, tA, tB, out_id)`. */
const cMatMul = new WeakMap<object, (...args: unknown[]) => void>();

function internals(backend: unknown): WasmInternals {
  return backend as WasmInternals;
}

function looksLikeWasmBackend(backend: unknown): boolean {
  const b = backend as Partial<WasmInternals> | null;
  return (
    b != null &&
    typeof b.wasm?.cwrap === 'function' &&
    typeof b.wasm?.tfjs?.registerTensor === 'function' &&
    typeof b.wasm?.tfjs?.disposeData === 'function' &&
    typeof b.dataIdMap?.get === 'function' &&
    typeof b.dataIdNextNumber === 'number' &&
    typeof b.makeOutput === 'function' &&
    typeof b.typedArrayFromHeap === 'function'
  );
}

function matMulFn(backend: WasmInternals): (...args: unknown[]) => void {
  let fn = cMatMul.get(backend);
  if (!fn) {
    fn = backend.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
    cMatMul.set(backend, fn);
  }
  return fn;
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

function info(backend: WasmInternals, t: TensorInfo): WasmTensorData {
  const d = backend.dataIdMap.get(t.dataId);
  if (!d) throw new Error(`wasm BatchMatMul: tensor data not found on the wasm backend`);
  return d;
}

/** A tensor id in the C++ registry aliasing `size` floats at byte `offset` of an existing buffer (no copy). */
function registerView(backend: WasmInternals, offset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

/** Transpose the last two dims with the wasm Transpose kernel; the caller disposes the result. */
function transposeLast2(backend: WasmInternals, x: TensorInfo): TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  const k = tf.getKernel('Transpose', 'wasm');
  return k.kernelFunc({ inputs: { x }, backend: backend as unknown as object, attrs: { perm } }) as TensorInfo;
}

/** Row-major flat index into `inShape` (right-aligned, size-1 dims broadcast) of flat index `i` of `outShape`. */
function broadcastIndex(i: number, outShape: number[], inShape: number[]): number {
  let idx = 0;
  let inStride = 1;
  let rest = i;
  for (let d = outShape.length - 1; d >= 0; d--) {
    const coord = rest % outShape[d];
    rest = Math.floor(rest / outShape[d]);
    const inD = d - (outShape.length - inShape.length);
    if (inD < 0) continue;
    const dim = inShape[inD];
    if (dim !== 1) idx += coord * inStride;
    inStride *= dim;
  }
  return idx;
}

function makeBatchMatMul(original: KernelFunc): TaggedKernelFunc {
  const fixed: TaggedKernelFunc = (args: KernelArgs) => {
    const a = args.inputs.a as TensorInfo;
    const b = args.inputs.b as TensorInfo;
    const transposeA = Boolean(args.attrs?.transposeA);
    const transposeB = Boolean(args.attrs?.transposeB);
    const be = internals(args.backend);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return original(args as never);
    const ra = a.shape.length;
    const rb = b.shape.length;
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const aOuter = a.shape.slice(0, -2);
    const bOuter = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(aOuter);
    const batchB = tf.util.sizeFromShape(bOuter);
    // Mismatched inner dims and empty tensors: the stock kernel raises the standard error / handles them.
    if (K !== Kb || M * N * K === 0 || batchA * batchB === 0) return original(args as never);
    // Already the fast path: keep the stock kernel (and its weights cache) untouched.
    if (!transposeA && !transposeB && batchA === 1 && batchB === 1) return original(args as never);

    const outOuter = tf.broadcast_util.assertAndGetBroadcastShape(aOuter, bOuter);
    const batch = tf.util.sizeFromShape(outOuter);
    const out = be.makeOutput([...outOuter, M, N], 'float32');
    const call = matMulFn(be);
    const temps: TensorInfo[] = [];
    const views: number[] = [];
    try {
      // Both operands in the layout XNNPACK wants: a as [..., M, K], b as [..., K, N].
      let aSrc = a;
      let bSrc = b;
      if (transposeA) temps.push((aSrc = transposeLast2(be, a)));
      if (transposeB) temps.push((bSrc = transposeLast2(be, b)));
      const aData = info(be, aSrc);
      const bData = info(be, bSrc);
      const outData = info(be, out);
      if (batchB === 1) {
        // b shared by every batch: one product [batchA*M, K] × [K, N] written straight into out, which is
        // laid out [...outOuter, M, N] = [batchA*M, N] because batch == batchA here.
        call(aData.id, shapeBytes([1, batchA * M, K]), 3, bData.id, shapeBytes([1, K, N]), 3, false, false, outData.id);
      } else {
        const bViews = new Map<number, number>();
        for (let i = 0; i < batch; i++) {
          const ai = broadcastIndex(i, outOuter, aOuter);
          const bi = broadcastIndex(i, outOuter, bOuter);
          const aId = batchA === 1 ? aData.id : registerView(be, aData.memoryOffset + ai * M * K * 4, M * K);
          if (batchA !== 1) views.push(aId);
          let bId = bViews.get(bi);
          if (bId === undefined) {
            // One view per distinct b batch so a broadcast b is packed by XNNPACK once, not once per use.
            bId = registerView(be, bData.memoryOffset + bi * K * N * 4, K * N);
            bViews.set(bi, bId);
            views.push(bId);
          }
          const oId = registerView(be, outData.memoryOffset + i * M * N * 4, M * N);
          views.push(oId);
          call(aId, shapeBytes([1, M, K]), 3, bId, shapeBytes([1, K, N]), 3, false, false, oId);
        }
      }
    } catch (e) {
      be.disposeData(out.dataId, true);
      throw e;
    } finally {
      // Disposing a view id also frees the XNNPACK operator cached under it (the memory is not owned).
      for (const id of views) be.wasm.tfjs.disposeData(id);
      for (const t of temps) be.disposeData(t.dataId);
    }
    return out;
  };
  fixed[FIXED] = true;
  return fixed;
}

const unsortedSegmentSum: TaggedKernelFunc = (args: KernelArgs) => {
  const x = args.inputs.x as TensorInfo;
  const segmentIds = args.inputs.segmentIds as TensorInfo;
  const numSegments = Number(args.attrs?.numSegments);
  const be = internals(args.backend);
  if (segmentIds.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: segmentIds must be int32, got ${segmentIds.dtype}`);
  const idsRank = segmentIds.shape.length;
  if (segmentIds.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  const rest = x.shape.slice(idsRank);
  const P = tf.util.sizeFromShape(segmentIds.shape);
  const ids = be.typedArrayFromHeap(segmentIds) as Int32Array;
  let outOfRange = false;
  for (let i = 0; i < P; i++) if (ids[i] < 0 || ids[i] >= numSegments) { outOfRange = true; break; }

  const scatter = tf.getKernel('ScatterNd', 'wasm').kernelFunc;
  const updates: TensorInfo = { dataId: x.dataId, shape: [P, ...rest], dtype: x.dtype };
  if (!outOfRange) {
    const indices: TensorInfo = { dataId: segmentIds.dataId, shape: [P, 1], dtype: 'int32' };
    return scatter({ inputs: { indices, updates }, backend: be as unknown as object, attrs: { shape: [numSegments, ...rest] } }) as TensorInfo;
  }
  // TF drops ids outside [0, numSegments): send them to an extra row and cut it off.
  const indices = be.makeOutput([P, 1], 'int32');
  const remapped = be.typedArrayFromHeap(indices) as Int32Array;
  const idsNow = be.typedArrayFromHeap(segmentIds) as Int32Array; // re-read: makeOutput may have grown the heap
  for (let i = 0; i < P; i++) remapped[i] = idsNow[i] < 0 || idsNow[i] >= numSegments ? numSegments : idsNow[i];
  let padded: TensorInfo | undefined;
  try {
    padded = scatter({ inputs: { indices, updates }, backend: be as unknown as object, attrs: { shape: [numSegments + 1, ...rest] } }) as TensorInfo;
    const slice = tf.getKernel('Slice', 'wasm').kernelFunc;
    return slice({ inputs: { x: padded }, backend: be as unknown as object, attrs: { begin: new Array(rest.length + 1).fill(0), size: [numSegments, ...rest] } }) as TensorInfo;
  } finally {
    be.disposeData(indices.dataId);
    if (padded) be.disposeData(padded.dataId);
  }
};
unsortedSegmentSum[FIXED] = true;

export interface WasmFixReport {
  batchMatMul: 'installed' | 'already installed';
  unsortedSegmentSum: 'installed' | 'already installed' | 'native';
}

/**
 * Register the fixed kernels for 'wasm'. Call after the wasm backend is initialised (the replacement
 * reuses the C function the stock kernel's setupFunc wired up). Idempotent.
 */
export function installWasmFixes(backend: unknown): WasmFixReport {
  if (!looksLikeWasmBackend(backend)) {
    throw new Error('the wasm backend does not expose the internals the kernel fixes need (tfjs-backend-wasm version changed?)');
  }
  const report: WasmFixReport = { batchMatMul: 'already installed', unsortedSegmentSum: 'already installed' };
  const mm = tf.getKernel('BatchMatMul', 'wasm') as KernelConfig | undefined;
  if (!mm) throw new Error("wasm kernel 'BatchMatMul' is not registered");
  if (!(mm.kernelFunc as TaggedKernelFunc)[FIXED]) {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({ ...mm, kernelFunc: makeBatchMatMul(mm.kernelFunc) });
    report.batchMatMul = 'installed';
  }
  const uss = tf.getKernel('UnsortedSegmentSum', 'wasm') as KernelConfig | undefined;
  if (!uss) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
    report.unsortedSegmentSum = 'installed';
  } else if (!(uss.kernelFunc as TaggedKernelFunc)[FIXED]) {
    report.unsortedSegmentSum = 'native';
  }
  return report;
}
