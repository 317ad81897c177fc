/**
 * What a server (or the in-browser playground) serves: one model, its tokenizer and chat template, the persona
 * vectors loaded at start-up, and the continuous batcher that runs requests. Browser-safe: no Node imports.
 */
import { PersonaError } from '../errors';
import type { Model } from '../model/checkpoint';
import type { Tokenizer } from '../tokenizer';
import type { PersonaVector } from '../persona/vector';
import { Batcher, EngineOptions } from './batcher';
import type { VectorInfo } from './protocol';

export interface ServeVector {
  /** The name requests use. */
  name: string;
  vector: PersonaVector;
  /** Where it came from (a file path, or a URL in the browser). */
  source: string;
}

export interface ServeEngineOptions extends EngineOptions {
  /** The name /v1/models lists and requests may give as `model` (default 'persona'). */
  modelName?: string;
  /** Where the checkpoint lives (/v1/models' `root`, as vLLM reports it). */
  modelRoot?: string;
}

export class ServeEngine {
  readonly batcher: Batcher;
  readonly modelName: string;
  readonly modelRoot?: string;
  private readonly byName = new Map<string, ServeVector>();

  constructor(readonly model: Model, readonly tokenizer: Tokenizer, vectors: readonly ServeVector[], opts: ServeEngineOptions = {}) {
    this.modelName = opts.modelName ?? 'persona';
    this.modelRoot = opts.modelRoot;
    const H = model.config.hiddenSize;
    for (const v of vectors) {
      if (this.byName.has(v.name)) throw new PersonaError(`two vectors are named '${v.name}' (${this.byName.get(v.name)!.source} and ${v.source}); rename a file or set 'name' in its metadata`, { file: v.source });
      if (v.vector.hidden !== H) throw new PersonaError(`vector '${v.name}' has hidden size ${v.vector.hidden}, the model has ${H}`, { file: v.source });
      this.byName.set(v.name, v);
    }
    this.batcher = new Batcher(model, opts);
  }

  vector(name: string): ServeVector | undefined {
    return this.byName.get(name);
  }

  get vectorNames(): string[] {
    return [...this.byName.keys()];
  }

  /** GET /v1/persona/vectors: name, layers, norms, method, source (and best_layer when the metadata has one). */
  vectorInfo(): VectorInfo[] {
    return [...this.byName.values()].map(({ name, vector, source }) => {
      const layers = vectorLayers(vector);
      const meta = vector.meta;
      const best = meta['best_layer'] ?? meta['bestLayer'];
      return {
        name,
        layers,
        norms: layers.map((L) => vector.norm(L)),
        ...(typeof meta.trait === 'string' ? { trait: meta.trait } : {}),
        ...(typeof meta.method === 'string' ? { method: meta.method } : {}),
        ...(typeof meta.model === 'string' ? { model: meta.model } : {}),
        ...(typeof best === 'number' && Number.isInteger(best) ? { best_layer: best } : {}),
        source,
      };
    });
  }

  close(): void {
    this.batcher.close();
  }
}

/** hidden_states indices a vector has a direction for. */
export function vectorLayers(v: PersonaVector): number[] {
  if (v.meta.singleLayer !== undefined) return [v.meta.singleLayer];
  if (v.numRows === 1) return [];
  return Array.from({ length: v.numRows }, (_, L) => L);
}

/** The name a vector is served under: `name` in its metadata, else its file name without extension. */
export function servedName(v: PersonaVector, file: string): string {
  const n = v.meta['name'];
  if (typeof n === 'string' && n.length > 0) return n;
  const base = file.split(/[\\/]/).pop() ?? file;
  return base.replace(/\.(safetensors|pt|gguf|json)$/i, '');
}
