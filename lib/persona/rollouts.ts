/**
 * Rollouts: generate answers for (system prompt × question × sample) items, judge each for the trait and
 * coherence, and append every finished row to a CSV in the paper's columns. The CSV is the resume state:
 * rows are written in item order, one write + fsync each, so after a crash (even kill -9) a rerun keeps
 * the finished rows, drops a torn last row, and continues from the first missing item without sending
 * a judge request for any finished row. Sampling is seeded per batch of items (batch b uses `${seed}/${b}`),
 * so the regenerated batch of an interrupted run reproduces the same answers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { PersonaError } from '../errors';
import type { Judge } from '../judge/judge';
import type { Model } from '../model/checkpoint';
import { generate } from '../model/generate';
import type { Intervention } from '../model/interventions';
import type { LinearAdapter } from '../model/transformer';
import type { ChatMessage, Tokenizer } from '../tokenizer';
import { FIXED_COLUMNS, RolloutRow, readRolloutsCsv } from './rollouts-csv';

/** "You are a/an {name} assistant. {instruction}" — the article by the name's first letter, as the paper's a_or_an. */
export function assistantSystemPrompt(assistantName: string, instruction: string): string {
  const article = /^[aeiou]/i.test(assistantName.trim()) ? 'an' : 'a';
  return `You are ${article} ${assistantName} assistant. ${instruction}`;
}

export interface RolloutItem {
  /** The user question (what the judges see). */
  question: string;
  questionId: string;
  system?: string;
  /** Turns before the question (e.g. many-shot examples), after the system prompt. */
  history?: ChatMessage[];
}

export interface RolloutJudges {
  trait: Judge;
  coherence: Judge;
}

export interface RunRolloutsOptions {
  model: Model;
  tokenizer: Tokenizer;
  /** One per CSV row, in order (repeat an item for several samples). */
  items: readonly RolloutItem[];
  csvFile: string;
  /** Name of the trait score column. */
  trait: string;
  judges: RolloutJudges;
  maxNewTokens: number;
  /** Default 1 (the paper samples rollouts at temperature 1). */
  temperature?: number;
  topP?: number;
  seed?: string;
  batchSize?: number;
  interventions?: readonly Intervention[];
  adapters?: ReadonlyMap<string, LinearAdapter>;
  onProgress?: (done: number, total: number) => void;
}

export interface RolloutsResult {
  rows: RolloutRow[];
  /** Rows found finished in the CSV at the start. */
  resumed: number;
}

/** The chat-template text of an item, with the generation prompt. */
export function renderItemPrompt(tokenizer: Tokenizer, item: RolloutItem): string {
  const messages: ChatMessage[] = [];
  if (item.system !== undefined) messages.push({ role: 'system', content: item.system });
  messages.push(...(item.history ?? []));
  messages.push({ role: 'user', content: item.question });
  return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
}

export async function runRollouts(opts: RunRolloutsOptions): Promise<RolloutsResult> {
  const { model, tokenizer, items, csvFile, trait } = opts;
  const B = opts.batchSize ?? 8;
  if (!Number.isInteger(B) || B < 1) throw new PersonaError(`batch size must be a positive integer, got ${B}`, { field: 'batch_size' });
  const prompts = items.map((it) => renderItemPrompt(tokenizer, it));
  const done = openResumableCsv(csvFile, trait);
  if (done.length > items.length) throw new PersonaError(`has ${done.length} rows but this run has only ${items.length} items: it was written by a different run`, { file: csvFile });
  done.forEach((r, k) => {
    if (r.question !== items[k].question || r.question_id !== items[k].questionId || r.prompt !== prompts[k])
      throw new PersonaError(`row ${k + 1} (question_id ${r.question_id}) does not match this run's item ${k + 1} (${items[k].questionId}): the CSV was written by a different run; use another output path`, { file: csvFile, field: 'question_id' });
  });
  const rows: RolloutRow[] = [...done];
  const resumed = done.length;
  opts.onProgress?.(rows.length, items.length);
  const eos = tokenizer.eosTokenIds.length ? tokenizer.eosTokenIds : undefined;
  const fd = fs.openSync(csvFile, 'a');
  try {
    // Start at the batch holding the first missing row, so its sampler seed is the one the first run used.
    for (let b = Math.floor(rows.length / B); b * B < items.length; b++) {
      const lo = b * B;
      const hi = Math.min(items.length, lo + B);
      const ids = prompts.slice(lo, hi).map((p) => tokenizer.encode(p));
      const gen = await generate(model, { prompts: ids }, {
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature ?? 1,
        topP: opts.topP,
        seed: `${opts.seed ?? '0'}/${b}`,
        eosTokenIds: eos,
        interventions: opts.interventions,
        adapters: opts.adapters,
      });
      const answers = gen.tokens.map((t) => decodeAnswer(tokenizer, t));
      const todo: number[] = [];
      for (let k = Math.max(lo, rows.length); k < hi; k++) todo.push(k);
      const judged = await Promise.allSettled(
        todo.map(async (k) => {
          const a = answers[k - lo];
          const [score, coherence] = await Promise.all([opts.judges.trait.score(items[k].question, a), opts.judges.coherence.score(items[k].question, a)]);
          return { question: items[k].question, prompt: prompts[k], answer: a, question_id: items[k].questionId, score, coherence } satisfies RolloutRow;
        }),
      );
      // Rows are written in item order: keep every judged row up to the first failure, then report it.
      for (const r of judged) {
        if (r.status === 'rejected') {
          const e = r.reason as Error;
          throw new PersonaError(`judging failed after ${rows.length} of ${items.length} rows (finished rows are kept in the CSV; rerun to continue): ${e.message}`, { file: csvFile });
        }
        appendRow(fd, trait, r.value);
        rows.push(r.value);
        opts.onProgress?.(rows.length, items.length);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { rows, resumed };
}

/**
 * Answer text of generated ids. Ids past the tokenizer's vocabulary (padded embedding rows, which real
 * checkpoints such as Qwen have) carry no text and are dropped, as Hugging Face's decode does.
 */
export function decodeAnswer(tokenizer: Tokenizer, ids: readonly number[]): string {
  return tokenizer.decode(ids.filter((id) => tokenizer.idToToken(id) !== undefined), { skipSpecialTokens: true });
}

function csvLine(trait: string, r: RolloutRow | null): string {
  if (r === null) return stringify([[...FIXED_COLUMNS, trait, 'coherence']]);
  return stringify([[r.question, r.prompt, r.answer, r.question_id, r.score ?? '', r.coherence ?? '']], { cast: { number: (n) => String(n) } });
}

function appendRow(fd: number, trait: string, r: RolloutRow): void {
  // One write per row: after a crash the file ends with whole rows or one torn row, which the reader drops.
  fs.writeSync(fd, csvLine(trait, r));
  fs.fsyncSync(fd);
}

/**
 * Prepares `file` for appending and returns its finished rows: creates it with the header if missing,
 * drops a torn final row left by a crash, and checks the columns (naming a missing one).
 */
export function openResumableCsv(file: string, trait: string): RolloutRow[] {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PersonaError(`cannot read rollouts CSV: ${(err as Error).message}`, { file });
  }
  if (text.trim() === '') {
    fs.writeFileSync(file, csvLine(trait, null));
    return [];
  }
  const keep = completePrefix(text);
  if (keep < Buffer.byteLength(text)) fs.truncateSync(file, keep);
  return readRolloutsCsv(file, trait).rows;
}

/** Byte length of the longest prefix of whole CSV records (a row cut mid-write ends without a newline or inside quotes). */
function completePrefix(text: string): number {
  let end = text.lastIndexOf('\n') + 1;
  while (end > 0) {
    const head = text.slice(0, end);
    try {
      parse(head, { bom: true, relax_column_count: false });
      return Buffer.byteLength(head);
    } catch {
      end = text.lastIndexOf('\n', end - 2) + 1;
    }
  }
  return Buffer.byteLength(text); // nothing parses: leave it for readRolloutsCsv to report
}
