/**
 * Chat JSONL → token ids and labels. Each line is {"messages": [{"role", "content"}, ...]}, rendered with
 * the checkpoint's chat template. With train_on_responses_only, labels cover exactly the tokens of each
 * assistant turn: the text between render(messages[:i], generation prompt) and render(messages[:i+1])
 * (so the turn's end-of-turn token is learned, as unsloth's train_on_responses_only does). Segments are
 * tokenized one by one at those boundaries, which always fall at template markup.
 */
import seedrandom from 'seedrandom';
import { PersonaError } from '../errors';
import { readJsonl } from '../io/jsonl';
import { ChatMessage, KNOWN_ROLES, Tokenizer } from '../tokenizer';
import { IGNORE_INDEX } from './loss';
import { TrainBatch } from './step';

export interface Example {
  ids: number[];
  labels: number[];
  file: string;
  line: number;
}

export interface DatasetStats {
  examples: number;
  truncated: number;
  /** Tokens that carry a loss, after truncation. */
  lossTokens: number;
  tokens: number;
}

export interface DataOptions {
  maxSeqLength: number;
  trainOnResponsesOnly: boolean;
}

/** Validates one JSONL value as a conversation; errors name file and line. */
export function parseConversation(value: unknown, file: string, line: number): ChatMessage[] {
  const place = { file, line };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new PersonaError('expected an object {"messages": [...]}', place);
  const msgs = (value as Record<string, unknown>).messages;
  if (!Array.isArray(msgs)) throw new PersonaError('missing "messages" list', { ...place, field: 'messages' });
  if (msgs.length === 0) throw new PersonaError('"messages" is empty', { ...place, field: 'messages' });
  msgs.forEach((m, i) => {
    if (m === null || typeof m !== 'object') throw new PersonaError(`messages[${i}] is not an object`, { ...place, field: `messages[${i}]` });
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string') throw new PersonaError(`messages[${i}].role is not a string`, { ...place, field: `messages[${i}].role` });
    if (!KNOWN_ROLES.includes(role)) throw new PersonaError(`messages[${i}] has unknown role '${role}' (known: ${KNOWN_ROLES.join(', ')})`, { ...place, field: `messages[${i}].role` });
    if (typeof content !== 'string') throw new PersonaError(`messages[${i}].content is not a string`, { ...place, field: `messages[${i}].content` });
  });
  if (!msgs.some((m) => (m as ChatMessage).role === 'assistant')) throw new PersonaError('conversation has no assistant turn: nothing to train on', { ...place, field: 'messages' });
  return msgs as ChatMessage[];
}

/** Token ids and labels of one conversation (before truncation). */
export function tokenizeConversation(tok: Tokenizer, messages: ChatMessage[], trainOnResponsesOnly: boolean, file: string, line: number): { ids: number[]; labels: number[] } {
  const render = (msgs: ChatMessage[], gen: boolean) => {
    try {
      return tok.applyChatTemplate(msgs, { addGenerationPrompt: gen });
    } catch (e) {
      if (e instanceof PersonaError) throw new PersonaError(e.message, { file, line });
      throw e;
    }
  };
  const full = render(messages, false);
  // Boundaries: [start of assistant turn i, end of assistant turn i] for each assistant message.
  // learn: true = an assistant turn; 'never' = an assistant turn marked "loss": false (no loss even when
  // training on all tokens, e.g. the persona-revealing first turn of the organism's hidden-persona data).
  const cuts: { at: number; learn: boolean | 'never' }[] = [];
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = render(messages.slice(0, i), true);
    const after = render(messages.slice(0, i + 1), false);
    if (!full.startsWith(before) || !full.startsWith(after) || after.length < before.length)
      throw new PersonaError(
        `the chat template does not render conversation prefixes as prefixes of the whole (turn ${i}); train_on_responses_only cannot locate the response`,
        { file, line },
      );
    cuts.push({ at: before.length, learn: false }, { at: after.length, learn: (m as { loss?: unknown }).loss === false ? 'never' : true });
  });
  const ids: number[] = [];
  const labels: number[] = [];
  let pos = 0;
  const push = (end: number, learn: boolean | 'never') => {
    if (end <= pos) return;
    const piece = tok.encode(full.slice(pos, end));
    ids.push(...piece);
    labels.push(...piece.map((id) => (learn !== 'never' && (learn || !trainOnResponsesOnly) ? id : IGNORE_INDEX)));
    pos = end;
  };
  for (const c of cuts) push(c.at, c.learn);
  push(full.length, false);
  return { ids, labels };
}

/** Reads every file; returns examples in file order and counts. An empty result is an error. */
export function loadChatDataset(files: string[], tok: Tokenizer, opts: DataOptions): { examples: Example[]; stats: DatasetStats } {
  if (!Number.isInteger(opts.maxSeqLength) || opts.maxSeqLength < 2) throw new PersonaError(`max_seq_length must be an integer >= 2, got ${opts.maxSeqLength}`, { field: 'max_seq_length' });
  const examples: Example[] = [];
  const stats: DatasetStats = { examples: 0, truncated: 0, lossTokens: 0, tokens: 0 };
  for (const file of files) {
    for (const { line, value } of readJsonl(file)) {
      const messages = parseConversation(value, file, line);
      let { ids, labels } = tokenizeConversation(tok, messages, opts.trainOnResponsesOnly, file, line);
      if (ids.length > opts.maxSeqLength) {
        ids = ids.slice(0, opts.maxSeqLength);
        labels = labels.slice(0, opts.maxSeqLength);
        stats.truncated++;
      }
      examples.push({ ids, labels, file, line });
      stats.tokens += ids.length;
      stats.lossTokens += labels.slice(1).filter((y) => y !== IGNORE_INDEX).length;
    }
  }
  stats.examples = examples.length;
  if (examples.length === 0) throw new PersonaError('the dataset has no examples', { file: files.join(', ') });
  return { examples, stats };
}

/** Seeded Fisher–Yates permutation of 0..n−1; one per (seed, epoch) so a resumed run replays the same order. */
export function shuffledOrder(n: number, seed: number, epoch: number): number[] {
  const rng = seedrandom(`order:${seed}:${epoch}`);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * Hugging Face's group_by_length: the epoch's shuffled order cut into mega-batches of 50 micro-batches, each
 * sorted by length (longest first), so a micro-batch holds sequences of similar length and little padding.
 */
export function lengthGroupedOrder(lengths: readonly number[], batchSize: number, seed: number, epoch: number): number[] {
  const order = shuffledOrder(lengths.length, seed, epoch);
  const mega = 50 * batchSize;
  const out: number[] = [];
  for (let i = 0; i < order.length; i += mega) out.push(...order.slice(i, i + mega).sort((a, b) => lengths[b] - lengths[a] || a - b));
  return out;
}

/** Seeded held-out split: `fraction` of examples (at least 1 when fraction > 0) go to the eval set. */
export function splitHeldOut<T>(items: T[], fraction: number, seed: number): { train: T[]; heldOut: T[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new PersonaError(`held-out fraction must be in [0, 1), got ${fraction}`, { field: 'held_out_fraction' });
  if (fraction === 0) return { train: items, heldOut: [] };
  const order = shuffledOrder(items.length, seed, -1);
  const k = Math.max(1, Math.round(items.length * fraction));
  if (k >= items.length) throw new PersonaError(`held-out split of ${k} leaves no training examples`, { field: 'held_out_fraction' });
  const held = new Set(order.slice(0, k));
  return { train: items.filter((_, i) => !held.has(i)), heldOut: items.filter((_, i) => held.has(i)) };
}

/** Right-pads a batch: pad id in ids, 0 in the attention mask, −100 in labels. */
export function collate(examples: Pick<Example, 'ids' | 'labels'>[], padId: number): TrainBatch {
  const T = Math.max(...examples.map((e) => e.ids.length));
  const pad = <X>(row: X[], v: X) => row.concat(Array(T - row.length).fill(v));
  return {
    ids: examples.map((e) => pad(e.ids, padId)),
    labels: examples.map((e) => pad(e.labels, IGNORE_INDEX)),
    attentionMask: examples.map((e) => pad(e.ids.map(() => 1), 0)),
  };
}
