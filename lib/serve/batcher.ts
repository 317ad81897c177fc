/**
 * Continuous batching over one model. Requests wait in a queue; between decoding steps the engine
 * admits queued requests (each prompt is prefilled alone, then its KV cache joins the running batch) and drops rows
 * that finished or whose client went away. Every row carries its own interventions, monitors, sampler and seed, and
 * computes what it would compute alone (see batchInterventionHooks and the tests in test/serve/batcher.test.ts).
 *
 * Monitoring: a row's monitors are projections of hidden_states[L] on unit directions, at the last prompt token
 * (reported before the first token) and at each generated token's own position — the activation computed when the
 * token is the model's input, as response-average extraction uses. A monitored token is therefore reported one
 * step after it is sampled, and a monitored row stays one extra step to project its last token.
 *
 * Nothing here touches Node or the DOM: the same engine runs behind `persona serve` and inside the browser
 * playground.
 */
import * as tf from '@tensorflow/tfjs';
import { PersonaError } from '../errors';
import { readValues } from '../backend/read';
import type { Model } from '../model/checkpoint';
import { SamplingOptions, sampler } from '../model/generate';
import type { Hook, SiteName } from '../model/hooks';
import { Intervention, batchInterventionHooks, interventionHooks } from '../model/interventions';
import { concatCacheRows, dropLeadingPositions, selectCacheRows, sharedPadding } from '../model/kv-cache';
import { KVCache, disposeCache } from '../model/transformer';

export interface Monitor {
  site: SiteName;
  /** Unit direction [hidden]. */
  direction: Float32Array;
}

export interface EngineRequest {
  /** Prompt token ids (chat template already applied). */
  prompt: number[];
  maxTokens: number;
  sampling: SamplingOptions;
  /** Applied in order, during the prefill and every decoding step. */
  interventions?: readonly Intervention[];
  monitors?: readonly Monitor[];
  /** Report log-probabilities of each token and this many alternatives (0–20); undefined: none. */
  topLogprobs?: number;
  eosTokenIds: readonly number[];
  /** Aborting frees the row at the next step boundary. */
  signal?: AbortSignal;
}

export interface TokenLogprobs {
  logprob: number;
  top: { id: number; logprob: number }[];
}

export type EngineEvent =
  | { type: 'prompt'; promptTokens: number; projections: number[] }
  | { type: 'token'; id: number; logprobs?: TokenLogprobs; projections: number[] }
  | { type: 'done'; finishReason: 'stop' | 'length' | 'abort'; promptTokens: number; completionTokens: number };

export interface EngineOptions {
  /** Rows decoded together (default 32). */
  maxBatch?: number;
  /** Requests waiting beyond the running batch before submit refuses (default 256). */
  maxQueue?: number;
  /** Called with one line per engine-level failure (a failed step ends the rows in it with an error). */
  log?: (line: string) => void;
}

/** Thrown by submit when the queue is full (the server answers 429). */
export class QueueFullError extends PersonaError {
  constructor(readonly waiting: number) {
    super(`the server is at capacity (${waiting} requests waiting); retry later`);
  }
}

interface Row {
  req: EngineRequest;
  out: Channel<EngineEvent>;
  pick: (logits: Float32Array) => number;
  /** Sampled, not yet fed to the model. */
  pending: number;
  pendingLogprobs?: TokenLogprobs;
  /** Tokens reported so far. */
  emitted: number;
  /** Tokens sampled so far. */
  sampled: number;
  /** Set when the pending token is the last: the row stays one step only to project it. */
  finishing: 'stop' | 'length' | null;
}

export class Batcher {
  readonly maxBatch: number;
  readonly maxQueue: number;
  private readonly queue: { req: EngineRequest; out: Channel<EngineEvent> }[] = [];
  private rows: Row[] = [];
  private cache: KVCache | null = null;
  private running = false;
  private closed = false;
  private readonly log: (line: string) => void;
  /** Decoding steps run and the batch sizes they ran at (for tests and the bench). */
  readonly stats = { steps: 0, rowSteps: 0, maxRows: 0, prefills: 0, prefillCalls: 0 };

  constructor(readonly model: Model, opts: EngineOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 32;
    this.maxQueue = opts.maxQueue ?? 256;
    if (!(Number.isInteger(this.maxBatch) && this.maxBatch >= 1)) throw new PersonaError(`max batch must be a positive integer, got ${this.maxBatch}`, { field: 'max_batch' });
    if (!(Number.isInteger(this.maxQueue) && this.maxQueue >= 0)) throw new PersonaError(`max queue must be a non-negative integer, got ${this.maxQueue}`, { field: 'max_queue' });
    this.log = opts.log ?? (() => {});
  }

  /** Requests running and waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.rows.length, waiting: this.queue.length };
  }

  /** Queues a request; its events arrive through the returned iterable, ending with `done` (or an error). */
  submit(req: EngineRequest): AsyncIterable<EngineEvent> {
    if (this.closed) throw new PersonaError('the engine is closed');
    const cfg = this.model.config;
    if (req.prompt.length === 0) throw new PersonaError('the prompt is empty', { field: 'messages' });
    if (req.prompt.length + req.maxTokens > cfg.maxPositionEmbeddings)
      throw new PersonaError(`the prompt (${req.prompt.length} tokens) plus max tokens (${req.maxTokens}) is over the model's context of ${cfg.maxPositionEmbeddings}`, { field: 'max_tokens' });
    for (const id of req.prompt) if (!(Number.isInteger(id) && id >= 0 && id < cfg.vocabSize)) throw new PersonaError(`token id ${id} is outside the vocabulary (${cfg.vocabSize})`, { field: 'messages' });
    if (this.queue.length >= this.maxQueue + Math.max(0, this.maxBatch - this.rows.length)) throw new QueueFullError(this.queue.length);
    // Validate now, so a bad request fails its caller instead of the batch it would join.
    interventionHooks(req.interventions ?? [], cfg);
    sampler(req.sampling);
    const out = new Channel<EngineEvent>();
    this.queue.push({ req, out });
    this.kick();
    return out;
  }

  /** Ends every request (with an error) and frees the cache. */
  close(): void {
    this.closed = true;
    const err = new PersonaError('the engine was closed');
    for (const q of this.queue.splice(0)) q.out.fail(err);
    for (const r of this.rows) r.out.fail(err);
    this.rows = [];
    disposeCache(this.cache);
    this.cache = null;
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (!this.closed && (this.queue.length > 0 || this.rows.length > 0)) {
        // Let the host handle I/O between steps: new requests, disconnects, streamed chunks.
        await yieldToHost();
        try {
          await this.admit();
          if (this.rows.length > 0) await this.step();
        } catch (e) {
          this.log(`engine step failed, ending ${this.rows.length} running request(s): ${(e as Error).message}`);
          for (const r of this.rows) r.out.fail(e as Error);
          this.rows = [];
          disposeCache(this.cache);
          this.cache = null;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Admits queued requests while the batch has room. Prompts of the same length are prefilled together (no padding,
   * so each row computes what it computes alone); each group's KV cache then joins the batch's, left-padded.
   */
  private async admit(): Promise<void> {
    const taken: { req: EngineRequest; out: Channel<EngineEvent> }[] = [];
    while (this.queue.length > 0 && this.rows.length + taken.length < this.maxBatch) {
      const q = this.queue.shift()!;
      if (q.req.signal?.aborted) {
        q.out.push({ type: 'done', finishReason: 'abort', promptTokens: q.req.prompt.length, completionTokens: 0 });
        q.out.end();
      } else taken.push(q);
    }
    const groups = new Map<number, typeof taken>();
    for (const q of taken) groups.set(q.req.prompt.length, [...(groups.get(q.req.prompt.length) ?? []), q]);
    const joined: KVCache[] = [];
    const V = this.model.config.vocabSize;
    try {
      for (const group of groups.values()) {
        let result: { logits: Float32Array; projections: Float32Array; cache: KVCache };
        try {
          const hooks = batchInterventionHooks(group.map((q) => q.req.interventions ?? []), this.model.config);
          result = await this.run(group.map((q) => q.req.prompt), hooks, group.map((q) => q.req.monitors ?? []), null);
        } catch (e) {
          for (const q of group) q.out.fail(e as Error);
          continue;
        }
        this.stats.prefills += group.length;
        this.stats.prefillCalls++;
        const keep: number[] = [];
        let offset = 0;
        group.forEach(({ req, out }, b) => {
          const m = req.monitors?.length ?? 0;
          out.push({ type: 'prompt', promptTokens: req.prompt.length, projections: [...result.projections.subarray(offset, offset + m)] });
          offset += m;
          const row: Row = { req, out, pick: sampler(req.sampling), pending: -1, emitted: 0, sampled: 0, finishing: null };
          this.sample(row, result.logits.subarray(b * V, (b + 1) * V));
          if (row.finishing !== null && !this.monitored(row)) return this.finish(row, row.finishing);
          this.rows.push(row);
          keep.push(b);
        });
        if (keep.length === group.length) joined.push(result.cache);
        else {
          if (keep.length > 0) joined.push(selectCacheRows(result.cache, keep));
          disposeCache(result.cache);
        }
      }
    } finally {
      if (joined.length > 0) {
        const parts = this.cache ? [this.cache, ...joined] : joined;
        const merged = concatCacheRows(parts);
        parts.forEach(disposeCache);
        this.cache = merged;
      }
    }
  }

  /** One decoding step for every running row. */
  private async step(): Promise<void> {
    const rows = this.rows;
    const hooks = batchInterventionHooks(rows.map((r) => r.req.interventions ?? []), this.model.config);
    const { logits, projections, cache } = await this.run(rows.map((r) => [r.pending]), hooks, rows.map((r) => r.req.monitors ?? []), this.cache);
    disposeCache(this.cache);
    this.cache = cache;
    this.stats.steps++;
    this.stats.rowSteps += rows.length;
    this.stats.maxRows = Math.max(this.stats.maxRows, rows.length);
    const V = this.model.config.vocabSize;
    const keep: number[] = [];
    let offset = 0;
    rows.forEach((row, b) => {
      const m = row.req.monitors?.length ?? 0;
      if (m > 0) this.emit(row, row.pending, row.pendingLogprobs, [...projections.subarray(offset, offset + m)]);
      offset += m;
      if (row.finishing !== null) return this.finish(row, row.finishing);
      if (row.req.signal?.aborted) return this.finish(row, 'abort');
      this.sample(row, logits.subarray(b * V, (b + 1) * V));
      if (row.finishing !== null && m === 0) return this.finish(row, row.finishing);
      keep.push(b);
    });
    this.rows = keep.map((b) => rows[b]);
    if (keep.length === rows.length) return;
    const old = this.cache!;
    if (keep.length === 0) {
      disposeCache(old);
      this.cache = null;
      return;
    }
    let next = selectCacheRows(old, keep);
    disposeCache(old);
    const pad = sharedPadding(next);
    if (pad > 0) {
      const trimmed = dropLeadingPositions(next, pad);
      disposeCache(next);
      next = trimmed;
    }
    this.cache = next;
  }

  /** Samples a row's next token from its logits; reports it now unless the row is monitored (then next step). */
  private sample(row: Row, logits: Float32Array): void {
    const req = row.req;
    const lp = req.topLogprobs !== undefined ? logprobsOf(logits, req.topLogprobs) : undefined;
    const id = row.pick(logits);
    const lps = lp ? { logprob: lp.logprobOf(id), top: lp.top } : undefined;
    row.sampled++;
    row.pending = id;
    row.pendingLogprobs = lps;
    if (req.eosTokenIds.includes(id)) row.finishing = 'stop';
    else if (row.sampled >= req.maxTokens) row.finishing = 'length';
    if (!this.monitored(row)) this.emit(row, id, lps, []);
  }

  private monitored(row: Row): boolean {
    return (row.req.monitors?.length ?? 0) > 0;
  }

  private emit(row: Row, id: number, logprobs: TokenLogprobs | undefined, projections: number[]): void {
    row.emitted++;
    row.out.push({ type: 'token', id, logprobs, projections });
  }

  private finish(row: Row, reason: 'stop' | 'length' | 'abort'): void {
    row.out.push({ type: 'done', finishReason: reason, promptTokens: row.req.prompt.length, completionTokens: row.emitted });
    row.out.end();
  }

  /**
   * One forward pass with a KV cache; returns the last position's logits [B, V], the monitors' projections (row by
   * row, in each row's monitor order) and the extended cache. Logits and projections come back in one read.
   */
  private async run(ids: number[][], hooks: Hook[], monitors: (readonly Monitor[])[], cache: KVCache | null): Promise<{ logits: Float32Array; projections: Float32Array; cache: KVCache }> {
    const B = ids.length;
    const H = this.model.config.hiddenSize;
    const probe = monitorHooks(monitors, H);
    const out = this.model.forward({ ids, cache: cache ?? undefined }, { hooks: [...hooks, ...probe.hooks], useCache: true, logits: 'last' });
    const V = this.model.config.vocabSize;
    let joined: tf.Tensor | null = null;
    try {
      joined = tf.tidy(() => {
        const parts: tf.Tensor2D[] = [out.logits!.reshape([B, V]) as tf.Tensor2D];
        const proj = probe.result();
        if (proj) parts.push(proj);
        return parts.length === 1 ? parts[0] : tf.concat(parts, 1);
      });
      const values = await readValues(joined);
      const P = values.length / B - V;
      const logits = new Float32Array(B * V);
      const projections: number[] = [];
      for (let b = 0; b < B; b++) {
        logits.set(values.subarray(b * (V + P), b * (V + P) + V), b * V);
        // Row b's own monitors, in its order (columns are laid out by probe.columns).
        for (const col of probe.columns[b]) projections.push(values[b * (V + P) + V + col]);
      }
      return { logits, projections: Float32Array.from(projections), cache: out.cache! };
    } catch (e) {
      disposeCache(out.cache);
      throw e;
    } finally {
      out.logits?.dispose();
      joined?.dispose();
      probe.dispose();
    }
  }
}

/**
 * Hooks that project the last position of each row on its monitors' directions, one batched matmul per site. The
 * projections of every site are joined into [B, P] (result()); columns[b] says which columns are row b's monitors.
 */
function monitorHooks(monitors: readonly (readonly Monitor[])[], H: number): { hooks: Hook[]; result: () => tf.Tensor2D | null; columns: number[][]; dispose: () => void } {
  const B = monitors.length;
  const sites: SiteName[] = [];
  for (const ms of monitors) for (const m of ms) if (!sites.includes(m.site)) sites.push(m.site);
  const columns: number[][] = monitors.map(() => []);
  // By site, in `sites` order (hooks run in the model's order, which may differ).
  const kept: (tf.Tensor2D | undefined)[] = sites.map(() => undefined);
  let base = 0;
  const hooks: Hook[] = sites.map((site, siteIndex) => {
    const slots = Math.max(...monitors.map((ms) => ms.filter((m) => m.site === site).length));
    const dirs = new Float32Array(B * slots * H);
    const slotOf: { b: number; slot: number; index: number }[] = [];
    monitors.forEach((ms, b) => {
      let j = 0;
      ms.forEach((m, index) => {
        if (m.site !== site) return;
        if (m.direction.length !== H) throw new PersonaError(`monitor direction has hidden size ${m.direction.length}, the model has ${H}`, { field: 'monitor' });
        dirs.set(m.direction, (b * slots + j) * H);
        slotOf.push({ b, slot: j++, index });
      });
    });
    const siteBase = base;
    base += slots;
    for (const s of slotOf) (columns[s.b][s.index] = siteBase + s.slot);
    return {
      site,
      fn: (h: tf.Tensor3D, ctx) => {
        const T = ctx.seq;
        const last = h.slice([0, T - 1, 0], [B, 1, H]); // [B, 1, H]
        const d = tf.tensor3d(dirs, [B, slots, H]);
        kept[siteIndex] = tf.keep(tf.matMul(last, d, false, true).reshape([B, slots]) as tf.Tensor2D);
      },
    };
  });
  return {
    hooks,
    columns,
    result: () => {
      if (kept.length === 0) return null;
      if (kept.some((t) => !t)) throw new Error('internal: a monitored site was not reached by the forward pass');
      return kept.length === 1 ? kept[0]! : (tf.concat(kept as tf.Tensor2D[], 1) as tf.Tensor2D);
    },
    dispose: () => tf.dispose(kept.filter((t): t is tf.Tensor2D => !!t)),
  };
}

/** Log-probabilities (log-softmax of the raw logits, in float64) of any token and the top k. */
export function logprobsOf(logits: Float32Array, k: number): { logprobOf: (id: number) => number; top: { id: number; logprob: number }[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const top: { id: number; logprob: number }[] = [];
  if (k > 0) {
    // Partial selection: keep the k best seen so far, sorted.
    for (let i = 0; i < logits.length; i++) {
      if (top.length === k && logits[i] <= top[k - 1].logprob) continue;
      let j = Math.min(top.length, k - 1);
      if (top.length < k) top.push({ id: i, logprob: logits[i] });
      else top[j] = { id: i, logprob: logits[i] };
      while (j > 0 && top[j - 1].logprob < top[j].logprob) {
        [top[j - 1], top[j]] = [top[j], top[j - 1]];
        j--;
      }
    }
    for (const t of top) t.logprob -= lse;
  }
  return { logprobOf: (id) => logits[id] - lse, top };
}

/** Yields to the host's event loop (a macrotask), so I/O runs between decoding steps. */
function yieldToHost(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  return new Promise((resolve) => (g.setImmediate ? g.setImmediate(resolve) : setTimeout(resolve, 0)));
}

/** An async iterable fed by push(); end() or fail() finishes it. */
export class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private failWaiting: ((e: Error) => void) | null = null;
  private ended = false;
  private error: Error | null = null;

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.failWaiting = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.failWaiting = null;
      w({ value: undefined as never, done: true });
    }
  }

  fail(e: Error): void {
    if (this.ended) return;
    this.error = e;
    this.ended = true;
    if (this.failWaiting) {
      const f = this.failWaiting;
      this.waiting = this.failWaiting = null;
      f(e);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.error) return Promise.reject(this.error);
        if (this.ended) return Promise.resolve({ value: undefined as never, done: true });
        return new Promise((resolve, reject) => {
          this.waiting = resolve;
          this.failWaiting = reject;
        });
      },
    };
  }
}
