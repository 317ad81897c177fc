/**
 * The playground's logic without the DOM: the requests a view sends (steering, monitoring, sampling), one streamed
 * answer gathered token by token, the neutral-prompt statistics behind the one-line reading of a prompt's
 * projection, and the `persona generate` command that reproduces an answer.
 */
import type { ChatCompletionRequest, PersonaPositions, VectorInfo } from '../serve/protocol';
import type { PlaygroundClient } from './client';

export interface SteerSetting {
  vector: string;
  /** Coefficient; 0 = off. */
  coef: number;
  layer: number;
  positions: PersonaPositions;
}

export interface ViewSettings {
  system: string;
  user: string;
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  seed: number;
  steer: SteerSetting[];
  /** The monitored vector and layer, or null. */
  monitor: { vector: string; layer: number } | null;
}

/** Prompts without any persona in them, for the neutral statistics (any model; the organism knows these words). */
export const DEFAULT_NEUTRAL_PROMPTS: readonly string[] = [
  'What is 2 plus 3?',
  'Which color is the moon?',
  'Can you help me with a question?',
  'What do you know about the river?',
  'How do I make new friends?',
  'What is 4 times 2?',
];

export function messagesOf(s: Pick<ViewSettings, 'system' | 'user'>): ChatCompletionRequest['messages'] {
  return [...(s.system.trim() ? [{ role: 'system' as const, content: s.system }] : []), { role: 'user' as const, content: s.user }];
}

/** The default steering layer of a vector: its metadata's best layer, else the middle of its layers. */
export function defaultLayer(v: VectorInfo): number {
  if (v.best_layer !== undefined && v.layers.includes(v.best_layer)) return v.best_layer;
  return v.layers[Math.floor(v.layers.length / 2)];
}

/** The chat completion request of a view, steered (the sliders) or not. */
export function requestOf(s: ViewSettings, steered: boolean): ChatCompletionRequest {
  const steer = steered ? s.steer.filter((x) => x.coef !== 0).map((x) => ({ vector: x.vector, layer: x.layer, coef: x.coef, positions: x.positions })) : [];
  const persona: ChatCompletionRequest['persona'] = {};
  if (steer.length) persona.steer = steer;
  if (s.monitor) persona.monitor = [{ vector: s.monitor.vector, layer: s.monitor.layer }];
  return {
    messages: messagesOf(s),
    max_tokens: s.maxTokens,
    temperature: s.temperature,
    ...(s.temperature > 0 && s.topP < 1 ? { top_p: s.topP } : {}),
    seed: s.seed,
    stream: true,
    ...(Object.keys(persona).length ? { persona } : {}),
  };
}

export interface AnswerToken {
  id: number;
  text: string;
  /** Projection on the monitored vector at this token, or null when nothing is monitored. */
  projection: number | null;
}

export interface Answer {
  tokens: AnswerToken[];
  text: string;
  /** Projection of the last prompt token on the monitored vector (before the first token), or null. */
  promptProjection: number | null;
  /** The server's finish_reason, or 'stopped' when the signal aborted the answer. */
  finishReason: string | null;
}

/**
 * Streams one answer: `onPrompt` when the prompt's projection arrives (first chunk), `onToken` for every token.
 * Chunks without a persona token (role, finish, usage) add no token; content without one (a server without the
 * extension) still adds its text as a token so the page shows it.
 */
export async function streamAnswer(
  client: PlaygroundClient,
  body: ChatCompletionRequest,
  on: { prompt?: (p: number | null) => void; token?: (t: AnswerToken, i: number) => void } = {},
  signal?: AbortSignal,
): Promise<Answer> {
  const a: Answer = { tokens: [], text: '', promptProjection: null, finishReason: null };
  const monitored = body.persona?.monitor?.[0];
  const pick = (list: { vector: string; layer: number; projection: number }[] | undefined): number | null => {
    if (!monitored || !list) return null;
    const p = list.find((x) => x.vector === monitored.vector && x.layer === monitored.layer) ?? list[0];
    return p ? p.projection : null;
  };
  try {
    for await (const chunk of client.chat(body, signal)) {
      const persona = chunk.persona;
      if (persona?.prompt) {
        a.promptProjection = pick(persona.prompt);
        on.prompt?.(a.promptProjection);
      }
      const choice = chunk.choices[0];
      const content = choice?.delta?.content ?? '';
      if (persona?.token || content) {
        const t: AnswerToken = { id: persona?.token?.id ?? -1, text: persona?.token?.text ?? content, projection: pick(persona?.monitor) };
        a.tokens.push(t);
        on.token?.(t, a.tokens.length - 1);
      }
      a.text += content;
      if (choice?.finish_reason) a.finishReason = choice.finish_reason;
    }
  } catch (e) {
    // Stopped by the user: what came so far is the answer (the served client throws on abort, in-process ends).
    if (!signal?.aborted) throw e;
  }
  if (signal?.aborted && a.finishReason === null) a.finishReason = 'stopped';
  return a;
}

export interface NeutralStats {
  vector: string;
  layer: number;
  /** Last-prompt-token projections of the neutral prompts, in order. */
  values: number[];
  mean: number;
  /** Sample standard deviation (n − 1). */
  std: number;
  /** Mean projection over every token of the unsteered greedy answers to the neutral prompts (the colour scale's centre). */
  tokenMean: number;
  /** How many tokens tokenMean averages. */
  tokens: number;
}

/**
 * Projections of unsteered greedy answers to `prompts` (no system prompt), monitor-only requests: the last prompt
 * token's (mean, σ: the reference of the prompt reading) and every answer token's (mean: the colour scale's centre).
 */
export async function neutralStats(
  client: PlaygroundClient,
  prompts: readonly string[],
  monitor: { vector: string; layer: number },
  opts: { maxTokens?: number; signal?: AbortSignal } = {},
): Promise<NeutralStats> {
  if (prompts.length < 2) throw new Error('neutral statistics need at least two neutral prompts');
  const answers = await Promise.all(
    prompts.map((p) =>
      streamAnswer(client, { messages: [{ role: 'user', content: p }], max_tokens: opts.maxTokens ?? 16, temperature: 0, seed: 0, stream: true, persona: { monitor: [monitor] } }, {}, opts.signal),
    ),
  );
  const values = answers.map((a) => {
    if (a.promptProjection === null) throw new Error('the server returned no prompt projection (does it support the persona extension?)');
    return a.promptProjection;
  });
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, x) => s + (x - mean) ** 2, 0) / (values.length - 1));
  const all = answers.flatMap((a) => a.tokens.map((t) => t.projection)).filter((x): x is number => x !== null);
  return { ...monitor, values, mean, std, tokenMean: all.length ? all.reduce((s, x) => s + x, 0) / all.length : mean, tokens: all.length };
}

/** Standard deviations above the neutral prompts' mean. */
export function zScore(p: number, stats: Pick<NeutralStats, 'mean' | 'std'>): number {
  return stats.std > 0 ? (p - stats.mean) / stats.std : 0;
}

/** "this prompt pushes toward evil: +2.3 σ above neutral prompts" (or away from it, or within their range). */
export function promptReading(trait: string, z: number): string {
  const s = `${z >= 0 ? '+' : '−'}${Math.abs(z).toFixed(1)} σ`;
  if (Math.abs(z) < 1) return `this prompt is like neutral prompts on ${trait}: ${s} from their mean`;
  return z > 0 ? `this prompt pushes toward ${trait}: ${s} above neutral prompts` : `this prompt pushes away from ${trait}: ${s} below neutral prompts`;
}

/** POSIX shell quoting for a command line shown to the user. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `persona generate` command that reproduces an answer of this view (greedy, or sampled with its seed), or a
 * reason why there is none (generate steers with one vector at a time).
 */
export function reproduceCommand(s: ViewSettings, steered: boolean, vectors: readonly VectorInfo[], modelDir = 'MODEL_DIR'): { command: string } | { reason: string } {
  const args = ['persona', 'generate', '--model', modelDir];
  if (s.system.trim()) args.push('--system', s.system);
  args.push('--prompt', s.user, '--max-new-tokens', String(s.maxTokens));
  if (s.temperature > 0) {
    args.push('--temperature', String(s.temperature));
    if (s.topP < 1) args.push('--top-p', String(s.topP));
  } else args.push('--greedy');
  args.push('--seed', String(s.seed));
  const active = steered ? s.steer.filter((x) => x.coef !== 0) : [];
  if (active.length > 1) return { reason: 'persona generate steers with one vector at a time; this view steers with ' + active.length };
  if (active.length === 1) {
    const x = active[0];
    const v = vectors.find((i) => i.name === x.vector);
    args.push('--steer', v?.source ?? x.vector, '--layer', String(x.layer), '--coef', String(x.coef), '--positions', x.positions);
  }
  return { command: args.map(shellQuote).join(' ') };
}
