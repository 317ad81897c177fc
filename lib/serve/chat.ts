/**
 * OpenAI chat completions on a ServeEngine: validates a request body, applies the chat template, turns the `persona`
 * extension into interventions and monitors, and returns a completion or a stream of chunks. The HTTP server and the
 * standalone playground both call this, so they answer identically. Browser-safe.
 */
import { z } from 'zod';
import { PersonaError } from '../errors';
import { hiddenStateSite } from '../model/capture';
import { Intervention, ablate, steer } from '../model/interventions';
import type { EngineEvent, EngineRequest, Monitor, TokenLogprobs } from './batcher';
import { QueueFullError } from './batcher';
import type { ServeEngine } from './engine';
import type { ChatCompletion, ChatCompletionChunk, ErrorBody, FinishReason, PersonaRequest, Projection, TokenLogprob, Usage } from './protocol';

/** An error with its HTTP status and OpenAI-shaped body. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type: string, readonly param: string | null = null, readonly code: string | null = null, readonly retryAfter?: number) {
    super(message);
  }
  get body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const invalid = (message: string, param: string | null, code: string | null = null) => new ApiError(400, message, 'invalid_request_error', param, code);

const finite = z.number().refine(Number.isFinite, { message: 'must be a finite number' });
const int = z.number().int();
const layerRef = { vector: z.string().min(1), layer: int };
const Positions = z.enum(['all', 'prompt', 'response']);
const PersonaSchema = z.strictObject({
  steer: z.array(z.strictObject({ ...layerRef, coef: finite, positions: Positions.optional() })).optional(),
  ablate: z.array(z.strictObject(layerRef)).optional(),
  monitor: z.array(z.strictObject(layerRef)).optional(),
});
const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const Message = z.object({
  role: z.enum(['system', 'user', 'assistant', 'developer']),
  content: z.union([z.string(), z.array(TextPart)]),
});
/** Unknown top-level fields are ignored (clients send many); known ones are type-checked. */
const RequestSchema = z.object({
  model: z.string().optional(),
  messages: z.array(Message).min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  max_tokens: int.min(1).nullish(),
  max_completion_tokens: int.min(1).nullish(),
  seed: int.nullish(),
  stop: z.union([z.string(), z.array(z.string().min(1)).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int.min(0).max(20).nullish(),
  n: z.literal(1).nullish(),
  persona: PersonaSchema.nullish(),
});
type Request = z.infer<typeof RequestSchema>;

/** The request, validated and resolved against the engine: what the batcher runs. */
export interface Prepared {
  request: Request;
  engine: EngineRequest;
  /** The monitor list as requested (names and layers), in order. */
  monitors: { vector: string; layer: number }[];
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
}

/** Validates `body` (already parsed JSON) and resolves it; throws ApiError (400/404) naming the parameter. */
export function prepareChat(engine: ServeEngine, body: unknown): Prepared {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('the request body must be a JSON object', null);
  const parsed = RequestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || null;
    throw invalid(`Invalid value for '${param ?? 'body'}': ${issue.message}`, param, issue.code === 'unrecognized_keys' ? 'unknown_parameter' : 'invalid_value');
  }
  const req = parsed.data;
  if (req.model && req.model !== engine.modelName) throw new ApiError(404, `The model '${req.model}' does not exist; this server serves '${engine.modelName}'`, 'invalid_request_error', 'model', 'model_not_found');
  if (req.top_logprobs != null && !req.logprobs) throw invalid("'top_logprobs' needs 'logprobs': true", 'top_logprobs');
  const cfg = engine.model.config;
  const N = cfg.numLayers;
  const tok = engine.tokenizer;

  const messages = req.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('') }));
  let prompt: number[];
  try {
    prompt = tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }));
  } catch (e) {
    throw invalid(`cannot apply the chat template: ${(e as Error).message}`, 'messages');
  }
  const context = cfg.maxPositionEmbeddings;
  const room = context - prompt.length;
  if (room < 1) throw invalid(`the prompt is ${prompt.length} tokens; the model's context is ${context}`, 'messages', 'context_length_exceeded');
  const asked = req.max_completion_tokens ?? req.max_tokens;
  const maxParam = req.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  if (asked != null && asked > room)
    throw invalid(`'${maxParam}' is ${asked}, but the prompt (${prompt.length} tokens) leaves ${room} of the model's context of ${context}`, maxParam, 'context_length_exceeded');

  const persona: PersonaRequest = req.persona ?? {};
  const direction = (kind: string, i: number, ref: { vector: string; layer: number }): Float32Array => {
    const v = engine.vector(ref.vector);
    if (!v) throw invalid(`unknown vector '${ref.vector}' (this server has: ${engine.vectorNames.join(', ') || 'none'}; see GET /v1/persona/vectors)`, `persona.${kind}[${i}].vector`, 'unknown_vector');
    if (!(ref.layer >= 0 && ref.layer <= N)) throw invalid(`layer ${ref.layer} is outside the model: hidden_states layers are 0..${N}`, `persona.${kind}[${i}].layer`, 'invalid_layer');
    try {
      return v.vector.layer(ref.layer);
    } catch (e) {
      throw invalid((e as Error).message, `persona.${kind}[${i}].layer`, 'invalid_layer');
    }
  };
  const interventions: Intervention[] = [];
  (persona.steer ?? []).forEach((s, i) => interventions.push(steer(direction('steer', i, s), s.layer, s.coef, s.positions ?? 'response', N)));
  (persona.ablate ?? []).forEach((a, i) => {
    const d = direction('ablate', i, a);
    if (!d.some((x) => x !== 0)) throw invalid(`vector '${a.vector}' is zero at layer ${a.layer}: nothing to ablate`, `persona.ablate[${i}].layer`);
    interventions.push(ablate(d, a.layer, N));
  });
  const monitors: Monitor[] = (persona.monitor ?? []).map((m, i) => {
    const d = direction('monitor', i, m);
    let nn = 0;
    for (const x of d) nn += x * x;
    const n = Math.sqrt(nn);
    if (!(n > 0)) throw invalid(`vector '${m.vector}' is zero at layer ${m.layer}: nothing to project on`, `persona.monitor[${i}].layer`);
    return { site: hiddenStateSite(m.layer, N), direction: d.map((x) => x / n) };
  });

  const temperature = req.temperature ?? 1;
  const eos = tok.eosTokenIds.length > 0 ? tok.eosTokenIds : cfg.eosTokenIds;
  return {
    request: req,
    engine: {
      prompt,
      maxTokens: asked ?? room,
      sampling: temperature === 0 ? { greedy: true } : { temperature, topP: req.top_p ?? 1, seed: req.seed ?? 0 },
      interventions,
      monitors,
      topLogprobs: req.logprobs ? (req.top_logprobs ?? 0) : undefined,
      eosTokenIds: eos,
    },
    monitors: (persona.monitor ?? []).map((m) => ({ vector: m.vector, layer: m.layer })),
    stop: req.stop == null ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop,
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    logprobs: req.logprobs ?? false,
  };
}

/** Submits a prepared request; a full queue is a 429 with Retry-After, a refused request a 400. */
function submit(engine: ServeEngine, p: Prepared, signal: AbortSignal): AsyncIterable<EngineEvent> {
  try {
    return engine.batcher.submit({ ...p.engine, signal });
  } catch (e) {
    if (e instanceof QueueFullError) throw new ApiError(429, e.message, 'rate_limit_error', null, 'queue_full', 1);
    if (e instanceof PersonaError) throw invalid(e.message, e.place.field ?? null);
    throw e;
  }
}

let counter = 0;
const completionId = () => `chatcmpl-${Date.now().toString(36)}${(counter++).toString(36)}`;

/**
 * Text as tokens arrive: each token's piece is the growth of the decoded text (so multi-token characters come out
 * whole), held back while the text could still end in a stop string; stops at the first stop string.
 */
class Detokenizer {
  private ids: number[] = [];
  private text = '';
  /** Text released to the client. */
  released = '';
  stopped = false;
  constructor(private readonly engine: ServeEngine, private readonly stop: string[]) {}

  /** Adds a token; returns its piece (the text it adds) and the text to release now. */
  push(id: number): { piece: string; release: string } {
    this.ids.push(id);
    const full = this.engine.tokenizer.decode(this.ids, { skipSpecialTokens: true });
    // Incomplete UTF-8 decodes to U+FFFD at the end: wait for the next token.
    const piece = full.endsWith('\uFFFD') || !full.startsWith(this.text) ? '' : full.slice(this.text.length);
    if (piece) this.text = full;
    let visible = this.text;
    let hold = 0;
    for (const s of this.stop) {
      const at = visible.indexOf(s);
      if (at >= 0) {
        visible = visible.slice(0, at);
        this.stopped = true;
      }
    }
    if (!this.stopped) for (const s of this.stop) for (let k = Math.min(s.length - 1, visible.length); k > hold; k--) if (visible.endsWith(s.slice(0, k))) hold = k;
    const upTo = visible.length - hold;
    const release = upTo > this.released.length ? visible.slice(this.released.length, upTo) : '';
    this.released += release;
    return { piece, release };
  }

  /** At the end: whatever was held back for a stop string that never came. */
  flush(): string {
    if (this.stopped) return '';
    const rest = this.text.slice(this.released.length);
    this.released = this.text;
    return rest;
  }
}

function tokenLogprob(engine: ServeEngine, id: number, lp: TokenLogprobs): TokenLogprob {
  const entry = (t: number, logprob: number) => {
    const token = engine.tokenizer.decode([t]);
    return { token, logprob, bytes: Array.from(new TextEncoder().encode(token)) };
  };
  return { ...entry(id, lp.logprob), top_logprobs: lp.top.map((t) => entry(t.id, t.logprob)) };
}

const projections = (p: Prepared, values: number[]): Projection[] => p.monitors.map((m, i) => ({ vector: m.vector, layer: m.layer, projection: values[i] }));

/** One chat completion (non-streaming). */
export async function complete(engine: ServeEngine, p: Prepared, signal: AbortSignal): Promise<ChatCompletion> {
  const stopper = new AbortController();
  const onAbort = () => stopper.abort();
  signal.addEventListener('abort', onAbort);
  const detok = new Detokenizer(engine, p.stop);
  const tokens: { id: number; text: string }[] = [];
  const tokenProjections: number[][] = [];
  const logprobs: TokenLogprob[] = [];
  let promptProjection: number[] = [];
  let finish: FinishReason = 'length';
  let usage: Usage = { prompt_tokens: p.engine.prompt.length, completion_tokens: 0, total_tokens: p.engine.prompt.length };
  try {
    for await (const e of submit(engine, p, stopper.signal)) {
      if (e.type === 'prompt') promptProjection = e.projections;
      else if (e.type === 'token') {
        if (detok.stopped) continue;
        const { piece } = detok.push(e.id);
        tokens.push({ id: e.id, text: piece });
        tokenProjections.push(e.projections);
        if (e.logprobs) logprobs.push(tokenLogprob(engine, e.id, e.logprobs));
        if (detok.stopped) stopper.abort();
      } else {
        finish = detok.stopped || e.finishReason === 'stop' ? 'stop' : 'length';
        usage = { prompt_tokens: e.promptTokens, completion_tokens: tokens.length, total_tokens: e.promptTokens + tokens.length };
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  detok.flush();
  const out: ChatCompletion = {
    id: completionId(),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: engine.modelName,
    choices: [{ index: 0, message: { role: 'assistant', content: detok.released }, logprobs: p.logprobs ? { content: logprobs } : null, finish_reason: finish }],
    usage,
  };
  if (p.request.persona) {
    out.persona = {
      monitor: p.monitors.map((m, i) => ({ vector: m.vector, layer: m.layer, prompt_projection: promptProjection[i], token_projections: tokenProjections.map((t) => t[i]) })),
      tokens,
    };
  }
  return out;
}

/** One chat completion as chunks (stream: true): role chunk (with the prompt's projections), one chunk per token, the finish chunk, and the usage chunk when asked. */
export async function* streamChunks(engine: ServeEngine, p: Prepared, signal: AbortSignal): AsyncGenerator<ChatCompletionChunk> {
  const id = completionId();
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], extra: Partial<ChatCompletionChunk> = {}, finish: FinishReason | null = null, lp: TokenLogprob[] | null = null): ChatCompletionChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: engine.modelName,
    choices: [{ index: 0, delta, logprobs: lp ? { content: lp } : null, finish_reason: finish }],
    ...(p.includeUsage ? { usage: null } : {}),
    ...extra,
  });
  const stopper = new AbortController();
  const onAbort = () => stopper.abort();
  signal.addEventListener('abort', onAbort);
  const detok = new Detokenizer(engine, p.stop);
  const events = submit(engine, p, stopper.signal);
  let completion = 0;
  try {
    for await (const e of events) {
      if (e.type === 'prompt') {
        yield chunk({ role: 'assistant', content: '' }, p.request.persona ? { persona: { prompt: projections(p, e.projections) } } : {});
      } else if (e.type === 'token') {
        if (detok.stopped) continue;
        completion++;
        const { piece, release } = detok.push(e.id);
        if (detok.stopped) stopper.abort();
        const lp = e.logprobs ? [tokenLogprob(engine, e.id, e.logprobs)] : null;
        yield chunk({ content: release }, p.request.persona ? { persona: { token: { id: e.id, text: piece }, monitor: projections(p, e.projections) } } : {}, null, lp);
      } else {
        const rest = detok.flush();
        if (rest) yield chunk({ content: rest });
        if (e.finishReason === 'abort' && !detok.stopped) return; // the client is gone
        yield chunk({}, {}, detok.stopped || e.finishReason === 'stop' ? 'stop' : 'length');
        if (p.includeUsage) yield { ...chunk({}), choices: [] as never, usage: { prompt_tokens: e.promptTokens, completion_tokens: completion, total_tokens: e.promptTokens + completion } };
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    stopper.abort(); // a consumer that stops early frees its row
  }
}

/**
 * The whole of POST /v1/chat/completions after JSON parsing: a completion, or (stream: true) its chunks. Throws
 * ApiError for a request it refuses.
 */
export async function chatCompletion(engine: ServeEngine, body: unknown, opts: { signal?: AbortSignal } = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
  const p = prepareChat(engine, body);
  const signal = opts.signal ?? new AbortController().signal;
  if (p.stream) {
    // Submit now, so a full queue or a refused request throws here rather than at the first chunk.
    const gen = streamChunks(engine, p, signal);
    const first = await gen.next();
    return (async function* () {
      if (!first.done) yield first.value;
      yield* gen;
    })();
  }
  return complete(engine, p, signal);
}
