/**
 * A persona vector as a value (in the spirit of repeng's ControlVector): float32 data [numLayers+1, hidden]
 * plus metadata, with arithmetic and file formats.
 *
 * Layer convention 'hf_hidden_states': row L is Hugging Face hidden_states[L], i.e. row 0 is the embedding
 * output and row L >= 1 the output of decoder layer L-1 (the paper's vectors use the same indexing).
 *
 * A vector may also hold a single layer (a [hidden] file): then numRows is 1 and meta.singleLayer says
 * which hidden_states index that row is; layer(L) only answers for that L.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors';
import { readTorchPt, writeTorchPt } from '../io/torch-pt';
import { describeRowExport, directionForRow, readControlVector, rowForDirection, writeControlVector } from '../io/gguf';
import { gaussianSampler, randomDirection } from './stats';

/**
 * How a vector was extracted (meta.method; lib/persona/extract.ts computes each):
 *   response_avg_diff — mean over kept pairs of pos − neg, activations averaged over the response (the paper's)
 *   prompt_avg_diff   — the same, averaged over the prompt
 *   prompt_last_diff  — the same, at the last prompt token
 *   pca_diff          — first principal component of the per-pair response-average differences (repeng; uncentred
 *                       unless meta.centered)
 *   probe             — L2-regularised logistic-regression weights, pos vs neg response averages
 * pca_diff and probe rows are unit directions scaled to the response_avg_diff row's norm at the same layer.
 */
export type ExtractionMethod = 'response_avg_diff' | 'prompt_avg_diff' | 'prompt_last_diff' | 'pca_diff' | 'probe';
export const EXTRACTION_METHODS: readonly ExtractionMethod[] = ['response_avg_diff', 'prompt_avg_diff', 'prompt_last_diff', 'pca_diff', 'probe'];
const METHODS = EXTRACTION_METHODS;

export interface VectorMeta {
  model?: string;
  trait?: string;
  method?: string;
  layerConvention: 'hf_hidden_states';
  /** Rollouts kept by the judge-score filter, out of all generated. */
  counts?: { kept: number; total: number };
  threshold?: number;
  /** For a single-layer vector: the hidden_states index of its one row. */
  singleLayer?: number;
  [k: string]: unknown;
}

/** Name of the tensor in our .safetensors files. */
export const VECTOR_TENSOR = 'persona_vector';
const SIDECAR_FORMAT = 'persona-vector';

export interface LoadOptions {
  /** For a [hidden] file without a sidecar: which hidden_states index the direction belongs to. */
  layer?: number;
  /** For .gguf: the model's number of decoder layers (default: the highest direction index + 1). */
  numLayers?: number;
}

export class PersonaVector {
  /** Row-major [numRows, hidden]. Treat as read-only: every operation returns a new vector. */
  readonly data: Float32Array;
  readonly numRows: number;
  readonly hidden: number;
  readonly meta: VectorMeta;
  /** File this vector was loaded from, for error messages. */
  source?: string;

  constructor(data: Float32Array, numRows: number, hidden: number, meta: VectorMeta) {
    if (!(data instanceof Float32Array)) throw new PersonaError('persona vector data must be a Float32Array');
    if (!Number.isInteger(numRows) || numRows < 1 || !Number.isInteger(hidden) || hidden < 1) {
      throw new PersonaError(`persona vector shape [${numRows}, ${hidden}] must be positive integers`);
    }
    if (data.length !== numRows * hidden) {
      throw new PersonaError(`persona vector data has ${data.length} values, shape [${numRows}, ${hidden}] needs ${numRows * hidden}`);
    }
    if (!meta || meta.layerConvention !== 'hf_hidden_states') {
      throw new PersonaError(`persona vector layerConvention is ${JSON.stringify(meta?.layerConvention)}, expected "hf_hidden_states"`, { field: 'layerConvention' });
    }
    if (meta.singleLayer !== undefined && (numRows !== 1 || !Number.isInteger(meta.singleLayer) || meta.singleLayer < 0)) {
      throw new PersonaError(`singleLayer ${meta.singleLayer} needs a one-row vector with a non-negative layer index`, { field: 'singleLayer' });
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new PersonaError(`persona vector has non-finite value ${data[i]} at row ${Math.floor(i / hidden)}, column ${i % hidden}`);
      }
    }
    this.data = data;
    this.numRows = numRows;
    this.hidden = hidden;
    this.meta = meta;
  }

  /** Number of decoder layers this vector spans (rows - 1), or undefined for a single-layer vector. */
  get numLayers(): number | undefined {
    return this.meta.singleLayer !== undefined || this.numRows === 1 ? undefined : this.numRows - 1;
  }

  /** A short name for messages: trait/model, else the file it came from. */
  get name(): string {
    const parts = [this.meta.trait, this.meta.model].filter((s): s is string => typeof s === 'string');
    return parts.length ? `'${parts.join(' @ ')}'` : this.source ? `'${this.source}'` : '(unnamed)';
  }

  private row(L: number): number {
    if (this.meta.singleLayer !== undefined) {
      if (L !== this.meta.singleLayer) {
        throw new PersonaError(`vector ${this.name} holds only layer ${this.meta.singleLayer}, not layer ${L}`);
      }
      return 0;
    }
    if (this.numRows === 1) {
      throw new PersonaError(`vector ${this.name} is a single [${this.hidden}] direction of unknown layer; load it with {layer}`);
    }
    if (!Number.isInteger(L) || L < 0 || L >= this.numRows) {
      throw new PersonaError(`layer ${L} is out of range for vector ${this.name}: layers 0..${this.numRows - 1} (hidden_states indices)`);
    }
    return L;
  }

  /** Copy of the direction at hidden_states index L. */
  layer(L: number): Float32Array {
    const r = this.row(L);
    return this.data.slice(r * this.hidden, (r + 1) * this.hidden);
  }

  norm(L: number): number {
    const r = this.row(L);
    let s = 0;
    for (let i = r * this.hidden; i < (r + 1) * this.hidden; i++) s += this.data[i] * this.data[i];
    return Math.sqrt(s);
  }

  /** Unit-norm direction at layer L; error for a zero row (it has no direction). */
  unit(L: number): Float32Array {
    const n = this.norm(L);
    if (n === 0) throw new PersonaError(`layer ${L} of vector ${this.name} is all zeros and has no direction`);
    const v = this.layer(L);
    for (let i = 0; i < v.length; i++) v[i] /= n;
    return v;
  }

  private checkSameShape(o: PersonaVector, op: string): void {
    if (!(o instanceof PersonaVector)) throw new PersonaError(`${op}: operand is not a PersonaVector`);
    if (o.numRows !== this.numRows || o.hidden !== this.hidden || o.meta.singleLayer !== this.meta.singleLayer) {
      const shape = (v: PersonaVector) => `[${v.numRows}, ${v.hidden}]${v.meta.singleLayer !== undefined ? ` (layer ${v.meta.singleLayer})` : ''}`;
      throw new PersonaError(`${op}: vector ${this.name} has shape ${shape(this)}, vector ${o.name} has ${shape(o)}`);
    }
  }

  private derived(data: Float32Array, description: string, other?: PersonaVector): PersonaVector {
    const meta: VectorMeta = { layerConvention: 'hf_hidden_states', derived: description };
    const model = this.meta.model;
    if (model !== undefined && (other === undefined || other.meta.model === model)) meta.model = model;
    if (this.meta.singleLayer !== undefined) meta.singleLayer = this.meta.singleLayer;
    return new PersonaVector(data, this.numRows, this.hidden, meta);
  }

  add(o: PersonaVector): PersonaVector {
    this.checkSameShape(o, 'add');
    const out = new Float32Array(this.data.length);
    for (let i = 0; i < out.length; i++) out[i] = this.data[i] + o.data[i];
    return this.derived(out, `${this.name} + ${o.name}`, o);
  }

  sub(o: PersonaVector): PersonaVector {
    this.checkSameShape(o, 'sub');
    const out = new Float32Array(this.data.length);
    for (let i = 0; i < out.length; i++) out[i] = this.data[i] - o.data[i];
    return this.derived(out, `${this.name} - ${o.name}`, o);
  }

  scale(c: number): PersonaVector {
    if (!Number.isFinite(c)) throw new PersonaError(`scale: coefficient ${c} is not finite`);
    const out = new Float32Array(this.data.length);
    for (let i = 0; i < out.length; i++) out[i] = this.data[i] * c;
    return this.derived(out, `${c} * ${this.name}`);
  }

  neg(): PersonaVector {
    return this.scale(-1);
  }

  /** A random direction per layer with the same norm as `like`'s row (zero rows stay zero); the null baseline. */
  static random(like: PersonaVector, seed: string): PersonaVector {
    if (typeof seed !== 'string') throw new PersonaError('PersonaVector.random: seed (string) is required');
    const gauss = gaussianSampler(seedrandom(seed));
    const out = new Float32Array(like.data.length);
    for (let r = 0; r < like.numRows; r++) {
      let s = 0;
      for (let i = r * like.hidden; i < (r + 1) * like.hidden; i++) s += like.data[i] * like.data[i];
      out.set(randomDirection(like.hidden, Math.sqrt(s), gauss), r * like.hidden);
    }
    const meta: VectorMeta = { layerConvention: 'hf_hidden_states', method: 'random', trait: 'random', seed, normMatchedTo: like.name };
    if (like.meta.model !== undefined) meta.model = like.meta.model;
    if (like.meta.singleLayer !== undefined) meta.singleLayer = like.meta.singleLayer;
    return new PersonaVector(out, like.numRows, like.hidden, meta);
  }

  /** Error unless the vector fits a model (or activations) of this hidden size. */
  checkHidden(hidden: number, what: string): void {
    if (hidden !== this.hidden) {
      throw new PersonaError(`vector ${this.name} has hidden size ${this.hidden}, ${what} has ${hidden}`);
    }
  }

  /** Error unless the vector has a row for each of the model's numLayers+1 hidden states. */
  checkLayers(numLayers: number, what: string): void {
    if (this.numLayers !== undefined && this.numLayers !== numLayers) {
      throw new PersonaError(`vector ${this.name} has ${this.numLayers} layers (${this.numRows} rows), ${what} has ${numLayers}`);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Files

  /**
   * Write `<path>` (.safetensors: one float32 tensor "persona_vector", [N+1, hidden] or [hidden] for a
   * single layer) and the sidecar `<path>.json` with the metadata; both atomically. The metadata is also
   * embedded in the safetensors header so the tensor file alone stays self-describing.
   */
  save(file: string): void {
    if (!file.endsWith('.safetensors')) {
      throw new PersonaError('PersonaVector.save writes .safetensors; use savePt or saveGguf for other formats', { file });
    }
    const shape = this.meta.singleLayer !== undefined ? [this.hidden] : [this.numRows, this.hidden];
    writeSafetensors(file, { [VECTOR_TENSOR]: { shape, data: this.data } }, { format: SIDECAR_FORMAT, persona_meta: JSON.stringify(this.meta) });
    writeFileAtomic(sidecarPath(file), `${JSON.stringify({ format: SIDECAR_FORMAT, version: 1, tensor: VECTOR_TENSOR, shape, meta: this.meta }, null, 2)}\n`);
  }

  /** Write the paper's .pt format (torch.load gives a float32 tensor [N+1, hidden]); metadata in `<path>.json`. */
  savePt(file: string): void {
    const shape = this.meta.singleLayer !== undefined ? [this.hidden] : [this.numRows, this.hidden];
    writeTorchPt(file, { shape, data: this.data });
    writeFileAtomic(sidecarPath(file), `${JSON.stringify({ format: SIDECAR_FORMAT, version: 1, shape, meta: this.meta }, null, 2)}\n`);
  }

  /**
   * Write a llama.cpp control vector. `rows` are hidden_states indices (default: every row that llama.cpp
   * can steer, 2..N); row L becomes direction.<L-1> (see lib/io/gguf.ts for the mapping).
   * Returns one line saying which rows went to which directions and which were skipped, and why.
   */
  saveGguf(file: string, opts: { modelHint: string; rows?: number[] }): string {
    if (opts.rows === undefined && this.meta.singleLayer === undefined && this.numRows === 1) {
      // Guessing would silently steer the wrong block: a bare [hidden] direction needs its layer.
      throw new PersonaError(`vector ${this.source ?? this.name} is a single [${this.hidden}] direction of unknown layer; give its hidden_states index (--layer L, L >= 2) to export it to GGUF`, { file });
    }
    const rows = opts.rows ?? (this.meta.singleLayer !== undefined
      ? [this.meta.singleLayer]
      : Array.from({ length: Math.max(0, this.numRows - 2) }, (_, i) => i + 2));
    const directions = new Map<number, Float32Array>();
    for (const L of rows) {
      if (L < 2) throw new PersonaError(`row ${L} cannot be written to GGUF: llama.cpp steers only decoder blocks 1.. (rows 2..N)`, { file });
      directions.set(directionForRow(L), this.layer(L));
    }
    writeControlVector(file, directions, { modelHint: opts.modelHint });
    return describeRowExport(rows, this.numLayers !== undefined ? this.numRows : undefined);
  }

  /** Load .safetensors (ours or any file with one tensor), .pt (the paper's) or .gguf (control vector). */
  static load(file: string, opts: LoadOptions = {}): PersonaVector {
    const ext = path.extname(file).toLowerCase();
    let v: PersonaVector;
    if (ext === '.safetensors') v = loadSafetensors(file, opts);
    else if (ext === '.pt' || ext === '.pth') v = loadPt(file, opts);
    else if (ext === '.gguf') v = loadGguf(file, opts);
    else throw new PersonaError(`unknown persona vector format '${ext}' (.safetensors, .pt or .gguf)`, { file });
    v.source = file;
    return v;
  }
}

function sidecarPath(file: string): string {
  return `${file}.json`;
}

interface Sidecar {
  shape?: number[];
  meta: VectorMeta;
}

function readSidecar(file: string): Sidecar | undefined {
  const p = sidecarPath(file);
  if (!fs.existsSync(p)) return undefined;
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch (e) {
    throw new PersonaError(`sidecar is not valid JSON: ${(e as Error).message}`, { file: p });
  }
  const o = j as Partial<Sidecar> & { format?: unknown };
  if (!o || typeof o !== 'object' || o.format !== SIDECAR_FORMAT) throw new PersonaError(`sidecar is not a ${SIDECAR_FORMAT} file`, { file: p, field: 'format' });
  if (!o.meta || typeof o.meta !== 'object') throw new PersonaError('sidecar has no meta object', { file: p, field: 'meta' });
  if (o.meta.layerConvention !== 'hf_hidden_states') {
    throw new PersonaError(`layerConvention is ${JSON.stringify(o.meta.layerConvention)}, expected "hf_hidden_states"`, { file: p, field: 'meta.layerConvention' });
  }
  return o as Sidecar;
}

/** Build the vector from a [rows, hidden] or [hidden] tensor, with sidecar or fallback metadata. */
function fromTensor(file: string, shape: number[], data: Float32Array, fallback: VectorMeta, opts: LoadOptions, tensorName: string): PersonaVector {
  const side = readSidecar(file);
  if (side?.shape && JSON.stringify(side.shape) !== JSON.stringify(shape)) {
    throw new PersonaError(`sidecar says shape [${side.shape.join(', ')}], tensor is [${shape.join(', ')}]`, { file: sidecarPath(file), field: 'shape' });
  }
  const meta: VectorMeta = { ...(side?.meta ?? fallback) };
  if (shape.length === 1) {
    if (opts.layer !== undefined) meta.singleLayer = opts.layer;
    try {
      return new PersonaVector(data, 1, shape[0], meta);
    } catch (e) {
      throw withFile(e, file);
    }
  }
  if (shape.length !== 2) {
    throw new PersonaError(`tensor has shape [${shape.join(', ')}]; a persona vector is [numLayers+1, hidden] or [hidden]`, { file, tensor: tensorName });
  }
  if (meta.singleLayer !== undefined) throw new PersonaError(`metadata names single layer ${meta.singleLayer} but the tensor is 2-D`, { file, field: 'singleLayer' });
  try {
    return new PersonaVector(data, shape[0], shape[1], meta);
  } catch (e) {
    throw withFile(e, file);
  }
}

function withFile(e: unknown, file: string): unknown {
  return e instanceof PersonaError ? new PersonaError(e.message, { ...e.place, file }) : e;
}

function loadSafetensors(file: string, opts: LoadOptions): PersonaVector {
  const st = SafetensorsFile.open(file);
  try {
    const names = st.names();
    const name = st.has(VECTOR_TENSOR) ? VECTOR_TENSOR : names.length === 1 ? names[0] : undefined;
    if (name === undefined) {
      throw new PersonaError(`no tensor '${VECTOR_TENSOR}' and not exactly one tensor (found: ${names.join(', ') || 'none'})`, { file });
    }
    let fallback: VectorMeta = { layerConvention: 'hf_hidden_states' };
    const embedded = st.metadata.persona_meta;
    if (embedded !== undefined) {
      try {
        fallback = JSON.parse(embedded) as VectorMeta;
      } catch (e) {
        throw new PersonaError(`embedded metadata is not valid JSON: ${(e as Error).message}`, { file, field: 'persona_meta' });
      }
    }
    return fromTensor(file, st.info(name).shape, st.read(name), fallback, opts, name);
  } finally {
    st.close();
  }
}

/** Model, trait and method from the paper's file names, e.g. "Qwen3-4B_evil_response_avg_diff.pt" (best effort). */
export function metaFromPaperFileName(file: string): VectorMeta {
  const meta: VectorMeta = { layerConvention: 'hf_hidden_states' };
  let stem = path.basename(file).replace(/\.(pt|pth)$/i, '');
  const method = METHODS.find((m) => stem.endsWith(`_${m}`) || stem === m);
  if (method === undefined) return meta;
  meta.method = method;
  stem = stem.slice(0, Math.max(0, stem.length - method.length - 1));
  const cut = stem.lastIndexOf('_');
  if (cut > 0) {
    meta.model = stem.slice(0, cut);
    meta.trait = stem.slice(cut + 1);
  } else if (stem) {
    meta.trait = stem;
  }
  return meta;
}

function loadPt(file: string, opts: LoadOptions): PersonaVector {
  const t = readTorchPt(file);
  return fromTensor(file, t.shape, t.data, metaFromPaperFileName(file), opts, 'data.pkl');
}

function loadGguf(file: string, opts: LoadOptions): PersonaVector {
  const cv = readControlVector(file);
  const maxK = Math.max(...cv.directions.keys());
  const numLayers = opts.numLayers ?? maxK + 1;
  if (maxK + 1 > numLayers) {
    throw new PersonaError(`file has direction.${maxK} but the model has ${numLayers} layers`, { file, tensor: `direction.${maxK}` });
  }
  const numRows = numLayers + 1;
  const data = new Float32Array(numRows * cv.hidden);
  for (const [k, d] of cv.directions) data.set(d, rowForDirection(k) * cv.hidden);
  const meta: VectorMeta = { layerConvention: 'hf_hidden_states', rows: [...cv.directions.keys()].sort((a, b) => a - b).map(rowForDirection) };
  if (cv.modelHint !== undefined) meta.modelFamily = cv.modelHint;
  return new PersonaVector(data, numRows, cv.hidden, meta);
}

/**
 * Projection of each activation row onto a direction: a_i . v / |v| (the paper's projection score).
 * acts is row-major [n, hidden]; sums in float64.
 */
export function project(acts: Float32Array, n: number, hidden: number, direction: Float32Array): Float32Array {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(hidden) || hidden < 1) throw new PersonaError(`project: bad shape [${n}, ${hidden}]`);
  if (acts.length !== n * hidden) throw new PersonaError(`project: activations have ${acts.length} values, shape [${n}, ${hidden}] needs ${n * hidden}`);
  if (direction.length !== hidden) throw new PersonaError(`project: direction has hidden size ${direction.length}, activations have ${hidden}`);
  let nn = 0;
  for (let i = 0; i < hidden; i++) nn += direction[i] * direction[i];
  const norm = Math.sqrt(nn);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new PersonaError(`project: direction has norm ${norm}`);
  const out = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let dot = 0;
    const base = r * hidden;
    for (let i = 0; i < hidden; i++) dot += acts[base + i] * direction[i];
    out[r] = dot / norm;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Algebra across vectors (compare, weighted sums, orthogonalization); sums in float64.

/** A vector's file (else its name) and shape, for one-line errors that name both operands. */
function describe(v: PersonaVector): string {
  const shape = v.meta.singleLayer !== undefined ? `[${v.hidden}] (layer ${v.meta.singleLayer})` : v.numRows === 1 ? `[${v.hidden}]` : `[${v.numRows}, ${v.hidden}]`;
  return `${v.source ?? v.name} ${shape}`;
}

/**
 * The hidden_states indices two vectors share, or an error naming both shapes. Both must have the same
 * hidden size and layer count; single-layer vectors must be the same layer (a bare [hidden] one without a
 * known layer matches any, and its row is reported as layer undefined when neither knows it).
 */
function commonRows(a: PersonaVector, b: PersonaVector, op: string): (number | undefined)[] {
  const fail = (why: string): never => {
    throw new PersonaError(`${op}: ${describe(a)} and ${describe(b)} ${why}`);
  };
  if (!(a instanceof PersonaVector) || !(b instanceof PersonaVector)) throw new PersonaError(`${op}: operand is not a PersonaVector`);
  if (a.hidden !== b.hidden) fail(`differ in hidden size (${a.hidden} vs ${b.hidden})`);
  if (a.numRows !== b.numRows) fail(`differ in layer count (${a.numRows} vs ${b.numRows} rows)`);
  if (a.numRows > 1) return Array.from({ length: a.numRows }, (_, i) => i);
  const la = a.meta.singleLayer;
  const lb = b.meta.singleLayer;
  if (la !== undefined && lb !== undefined && la !== lb) fail(`are different layers (${la} vs ${lb})`);
  return [la ?? lb];
}

function dot(x: Float32Array, xo: number, y: Float32Array, yo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[xo + i] * y[yo + i];
  return s;
}

export interface LayerComparison {
  /** hidden_states index; undefined for two bare [hidden] directions of unknown layer. */
  layer: number | undefined;
  /** null when either row is all zeros (no direction to compare). */
  cosine: number | null;
  normA: number;
  normB: number;
}

/** Per layer: cosine similarity of a's and b's rows and each row's norm. */
export function compareVectors(a: PersonaVector, b: PersonaVector): LayerComparison[] {
  const layers = commonRows(a, b, 'compare');
  const h = a.hidden;
  return layers.map((layer, r) => {
    const o = r * h;
    const na = Math.sqrt(dot(a.data, o, a.data, o, h));
    const nb = Math.sqrt(dot(b.data, o, b.data, o, h));
    const cosine = na > 0 && nb > 0 ? Math.max(-1, Math.min(1, dot(a.data, o, b.data, o, h) / (na * nb))) : null;
    return { layer, cosine, normA: na, normB: nb };
  });
}

export interface CombineTerm {
  vector: PersonaVector;
  weight: number;
}

/** Where a vector came from, for combine's metadata: its file if loaded, else its name. */
const sourceOf = (v: PersonaVector) => v.source ?? v.name;

/** Per layer, a − (a·ĉ)ĉ: a with its component along c removed. Zero rows of c (no direction) leave a unchanged. */
function orthogonalizeRows(a: Float64Array, c: PersonaVector): void {
  const h = c.hidden;
  for (let r = 0; r < c.numRows; r++) {
    const o = r * h;
    let cc = 0;
    let ac = 0;
    for (let i = 0; i < h; i++) {
      cc += c.data[o + i] * c.data[o + i];
      ac += a[o + i] * c.data[o + i];
    }
    if (cc === 0) continue;
    const k = ac / cc;
    for (let i = 0; i < h; i++) a[o + i] -= k * c.data[o + i];
  }
}

/**
 * Σ weight·vector, optionally orthogonalized per layer against `orthogonalizeAgainst`. All vectors must
 * share one shape. meta records the operation, sources and weights so the file says how it was made.
 */
export function combineVectors(terms: CombineTerm[], opts: { orthogonalizeAgainst?: PersonaVector } = {}): PersonaVector {
  if (!Array.isArray(terms) || terms.length === 0) throw new PersonaError('combine: no vectors to combine');
  const first = terms[0].vector;
  let singleLayer = first.meta.singleLayer;
  const others = [...terms.slice(1).map((t) => t.vector), ...(opts.orthogonalizeAgainst ? [opts.orthogonalizeAgainst] : [])];
  for (const v of others) {
    const [L] = commonRows(first, v, 'combine');
    if (first.numRows === 1) singleLayer ??= L;
  }
  const acc = new Float64Array(first.data.length);
  for (const { vector, weight } of terms) {
    if (!Number.isFinite(weight)) throw new PersonaError(`combine: weight ${weight} for ${sourceOf(vector)} is not finite`);
    for (let i = 0; i < acc.length; i++) acc[i] += weight * vector.data[i];
  }
  const c = opts.orthogonalizeAgainst;
  if (c) orthogonalizeRows(acc, c);
  const meta: VectorMeta = {
    layerConvention: 'hf_hidden_states',
    operation: c ? 'weighted_sum_orthogonalized' : 'weighted_sum',
    sources: terms.map((t) => sourceOf(t.vector)),
    weights: terms.map((t) => t.weight),
  };
  if (c) meta.orthogonalizedAgainst = sourceOf(c);
  const models = new Set(terms.map((t) => t.vector.meta.model));
  if (models.size === 1 && first.meta.model !== undefined) meta.model = first.meta.model;
  if (singleLayer !== undefined) meta.singleLayer = singleLayer;
  return new PersonaVector(Float32Array.from(acc), first.numRows, first.hidden, meta);
}

/** Per layer a − (a·b̂)b̂ (combine with one term of weight 1). */
export function orthogonalize(a: PersonaVector, against: PersonaVector): PersonaVector {
  return combineVectors([{ vector: a, weight: 1 }], { orthogonalizeAgainst: against });
}
