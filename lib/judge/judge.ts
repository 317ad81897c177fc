import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { formatTemplate, templatePlaceholders } from '../llm/template';
import { TopLogprob } from '../llm/types';

/** Scores how strongly `answer` (to `question`) shows something; null when the judge gives no usable score. */
export interface Judge {
  /** Identifies judge model + prompt + scale; part of every on-disk result key. */
  readonly id: string;
  score(question: string, answer: string): Promise<number | null>;
}

/**
 * Scales the paper's judge code supports. The value returned is on the paper's own scale for each:
 * '0_100' → [0, 100] (the default, used for all results in the paper); '0_10' → [0, 9] (digits 0–9,
 * as the paper's code aggregates them); 'binary' → [0, 1] = p(YES) / (p(YES) + p(NO)).
 */
export type ScoreScale = '0_100' | '0_10' | 'binary';

export const SCALE_MAX: Record<ScoreScale, number> = { '0_100': 100, '0_10': 9, binary: 1 };

/** Below this total probability on valid answer tokens the judge is deemed to have refused (paper: 0.25). */
export const DEFAULT_MIN_MASS = 0.25;

/**
 * The integer a judge token stands for, if it is one in [0, max]: `token.trim()` must be an optional
 * sign and ASCII digits (" 85" → 85; "85.5", "abc", "-3", "101" → null). Mirrors Python's int(token)
 * in the paper's code except that Python also accepts underscores and non-ASCII digits.
 */
export function parseScoreToken(token: string, max = 100): number | null {
  const t = token.trim();
  if (!/^[+-]?[0-9]+$/.test(t)) return null;
  const v = Number(t);
  return v >= 0 && v <= max ? v : null;
}

/**
 * The paper's logprob-weighted score from the top logprobs of ONE next token:
 * score = Σ k·p(k) / Σ p(k) over tokens that parse as integers k in [0, max], or null when Σ p(k) < minMass
 * (the judge put most of its mass on something else, e.g. "REFUSAL"). Shared by the API judge and any
 * local-model judge. Tokens with the same text are summed (distinct vocabulary entries can decode alike).
 */
export function aggregateLogprobScore(topLogprobs: readonly TopLogprob[], opts: { max?: number; minMass?: number } = {}): number | null {
  const max = opts.max ?? 100;
  const minMass = opts.minMass ?? DEFAULT_MIN_MASS;
  let mass = 0;
  let weighted = 0;
  for (const { token, logprob } of topLogprobs) {
    const k = parseScoreToken(token, max);
    if (k === null) continue;
    const p = Math.exp(logprob);
    mass += p;
    weighted += k * p;
  }
  return mass < minMass ? null : weighted / mass;
}

/** Probability per trimmed token text (summing duplicates). */
function probsByText(topLogprobs: readonly TopLogprob[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const { token, logprob } of topLogprobs) {
    const t = token.trim();
    m.set(t, (m.get(t) ?? 0) + Math.exp(logprob));
  }
  return m;
}

/**
 * The paper's binary rule: null if p(REFUSAL) exceeds both p(YES) and p(NO), or if p(YES)+p(NO) < minMass;
 * else p(YES) / (p(YES) + p(NO)) in [0, 1].
 */
export function aggregateBinaryScore(topLogprobs: readonly TopLogprob[], opts: { minMass?: number } = {}): number | null {
  const p = probsByText(topLogprobs);
  const yes = p.get('YES') ?? 0;
  const no = p.get('NO') ?? 0;
  const refusal = p.get('REFUSAL') ?? 0;
  if (refusal > yes && refusal > no) return null;
  const mass = yes + no;
  return mass < (opts.minMass ?? DEFAULT_MIN_MASS) ? null : yes / mass;
}

/** Dispatch on scale. '0_10' adds the paper's explicit refusal check: null if p(REFUSAL) beats every single digit. */
export function aggregateScore(scale: ScoreScale, topLogprobs: readonly TopLogprob[], opts: { minMass?: number } = {}): number | null {
  switch (scale) {
    case '0_100':
      return aggregateLogprobScore(topLogprobs, { max: 100, minMass: opts.minMass });
    case '0_10': {
      const p = probsByText(topLogprobs);
      const refusal = p.get('REFUSAL') ?? 0;
      let bestDigit = 0;
      for (let d = 0; d <= 9; d++) bestDigit = Math.max(bestDigit, p.get(String(d)) ?? 0);
      if (refusal > bestDigit) return null;
      return aggregateLogprobScore(topLogprobs, { max: 9, minMass: opts.minMass });
    }
    case 'binary':
      return aggregateBinaryScore(topLogprobs, opts);
  }
}

/** Render a judge prompt: the template's {question} and {answer} (Python format semantics, as in the paper). */
export function fillJudgePrompt(template: string, question: string, answer: string): string {
  return formatTemplate(template, { question, answer }, { field: 'judge prompt' });
}

/** Throws unless `template` has exactly the placeholders {question} and {answer}. */
export function checkJudgeTemplate(template: string, where: { file?: string; field?: string } = {}): void {
  const names = templatePlaceholders(template, where);
  for (const need of ['question', 'answer']) {
    if (!names.has(need)) throw new PersonaError(`judge prompt lacks the {${need}} placeholder`, where);
  }
  const extra = [...names].filter((n) => n !== 'question' && n !== 'answer');
  if (extra.length) throw new PersonaError(`judge prompt uses unknown placeholder(s) ${extra.map((n) => `{${n}}`).join(', ')} (write {{ and }} for literal braces)`, where);
}

/**
 * Judge prompts from a file: either a JSON object of name → template (the paper's judge_prompts.json,
 * e.g. {"coherence_0_100": "..."}) or a plain-text file holding one template, returned under its file
 * name without extension. Every template must contain {question} and {answer}.
 */
export function loadJudgePrompts(file: string): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PersonaError(`cannot read judge prompts: ${(err as Error).message}`, { file });
  }
  let prompts: Record<string, string>;
  if (file.toLowerCase().endsWith('.json')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new PersonaError(`invalid JSON: ${(err as Error).message}`, { file });
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new PersonaError('expected a JSON object mapping prompt names to templates', { file });
    prompts = {};
    for (const [k, v] of Object.entries(json)) {
      if (typeof v !== 'string') throw new PersonaError(`expected a string template, got ${Array.isArray(v) ? 'array' : typeof v}`, { file, field: k });
      prompts[k] = v;
    }
    if (!Object.keys(prompts).length) throw new PersonaError('no prompts in file', { file });
  } else {
    prompts = { [path.basename(file).replace(/\.[^.]*$/, '')]: text };
  }
  for (const [k, v] of Object.entries(prompts)) checkJudgeTemplate(v, { file, field: k });
  return prompts;
}

/** Pick one prompt by name, naming the available ones when it is missing. */
export function selectJudgePrompt(prompts: Record<string, string>, name: string, file?: string): string {
  const p = prompts[name];
  if (p === undefined) throw new PersonaError(`no judge prompt named '${name}' (available: ${Object.keys(prompts).join(', ')})`, { file, field: name });
  return p;
}

/** Name of the coherence prompt in the paper's judge_prompts.json. */
export const COHERENCE_PROMPT_NAME = 'coherence_0_100';

/**
 * The project's own coherence prompt, with the paper's structure (question/answer blocks, 0/50/100
 * anchors, reply with a bare number). To reproduce the paper exactly, load its judge_prompts.json.
 */
export const DEFAULT_COHERENCE_PROMPT = `You are grading the output of another language model. Judge only how coherent its answer is; ignore every other property of the answer.

The question put to the model was:
[QUESTION START]
{question}
[QUESTION END]

The model replied:
[ANSWER START]
{answer}
[ANSWER END]

Give a coherence rating from 0 to 100 for this reply, given the question.
* 0: the text is meaningless, not even readable English.
* 50: the reply is partly sensible but confused or rambling.
* 100: the reply shows the model understood the question and is free of confusion or made-up content.

Do not grade correctness or morality: a wrong or unpleasant answer can still earn 100 if it is coherent.
Reply with one number from 0 to 100 and nothing else.`;

/**
 * What a logprob judge needs from a model: the top alternatives (text + logprob) for the first token
 * it would generate after `prompt` (sent as one user message). Implemented by the OpenAI-compatible
 * client and, later, by a local checkpoint.
 */
export interface NextTokenScorer {
  /** Model identity (e.g. "openai:gpt-4.1-mini-2025-04-14/top20"); the cache key is sha256(id + prompt). */
  readonly id: string;
  topLogprobs(prompt: string): Promise<TopLogprob[]>;
}

/** Store for raw judge outputs keyed by model + full prompt (see cache.ts). */
export interface TopLogprobStore {
  get(scorerId: string, prompt: string): TopLogprob[] | undefined;
  put(scorerId: string, prompt: string, top: TopLogprob[]): void;
}

export interface LogprobJudgeOptions {
  scorer: NextTokenScorer;
  /** Template with {question} and {answer}. */
  template: string;
  scale?: ScoreScale;
  minMass?: number;
  /** Caches raw top logprobs, so the score rule can change without new requests. */
  cache?: TopLogprobStore;
  /** Short label for the prompt in `id` (default: a hash of the template). */
  name?: string;
  /**
   * Fail once this many answers in a row, from the first, got no usable score (default 8, one default
   * batch): a judge that never scores is misconfigured, and its NaN means would pass for results.
   * Refusals after the judge has scored once stay nulls, as in the paper. 0 disables the check.
   */
  failAfterUnscored?: number;
}

/** Default of LogprobJudgeOptions.failAfterUnscored. */
export const DEFAULT_FAIL_AFTER_UNSCORED = 8;

/** A judge that renders the prompt, gets one token's top logprobs and aggregates them (the paper's method). */
export class LogprobJudge implements Judge {
  readonly id: string;
  readonly scale: ScoreScale;
  readonly maxScore: number;
  private readonly inFlight = new Map<string, Promise<TopLogprob[]>>();

  constructor(private readonly opts: LogprobJudgeOptions) {
    checkJudgeTemplate(opts.template, { field: opts.name ?? 'judge prompt' });
    this.scale = opts.scale ?? '0_100';
    this.maxScore = SCALE_MAX[this.scale];
    const label = opts.name ?? `prompt-${createHash('sha256').update(opts.template).digest('hex').slice(0, 12)}`;
    this.id = `${opts.scorer.id}|${label}|${this.scale}`;
  }

  /** The exact text sent to the judge model. */
  prompt(question: string, answer: string): string {
    return fillJudgePrompt(this.opts.template, question, answer);
  }

  async topLogprobs(question: string, answer: string): Promise<TopLogprob[]> {
    const prompt = this.prompt(question, answer);
    const { scorer, cache } = this.opts;
    const hit = cache?.get(scorer.id, prompt);
    if (hit) return hit;
    // Identical (question, answer) pairs in one batch (common: rollouts repeat) share one request.
    const pending = this.inFlight.get(prompt);
    if (pending) return pending;
    const p = scorer.topLogprobs(prompt).then((top) => {
      cache?.put(scorer.id, prompt, top);
      return top;
    });
    this.inFlight.set(prompt, p);
    try {
      return await p;
    } finally {
      this.inFlight.delete(prompt);
    }
  }

  /** Answers scored / not scored so far by this judge. */
  readonly counts = { scored: 0, unscored: 0 };
  private pending = 0;
  private held: { resolve: (v: null) => void; reject: (e: Error) => void }[] = [];

  async score(question: string, answer: string): Promise<number | null> {
    this.pending++;
    let top: TopLogprob[];
    try {
      top = await this.topLogprobs(question, answer);
      this.pending--;
    } catch (err) {
      // Held nulls must never outlive the last request, or their callers would wait forever.
      if (--this.pending === 0) this.release();
      throw err;
    }
    const s = aggregateScore(this.scale, top, { minMass: this.opts.minMass });
    if (s !== null && Number.isFinite(s)) {
      this.counts.scored++;
      this.release();
      return s;
    }
    this.counts.unscored++;
    const limit = this.opts.failAfterUnscored ?? DEFAULT_FAIL_AFTER_UNSCORED;
    if (limit <= 0 || this.counts.scored > 0) return null;
    if (this.counts.unscored >= limit) {
      const err = new PersonaError(`judge ${this.id} gave no usable score for any of its first ${this.counts.unscored} answers; its last reply's top tokens were ${describeTop(top)}, none a score on the ${this.scale} scale`);
      this.release(err);
      throw err;
    }
    // Until the judge has scored once, nulls wait while other answers are being judged: a judge that never
    // scores then fails the whole batch, so no unscored row is written before the error.
    if (this.pending === 0) {
      this.release();
      return null;
    }
    return new Promise<null>((resolve, reject) => this.held.push({ resolve, reject }));
  }

  /** Settles the held nulls: as null, or rejected with `err`. */
  private release(err?: Error): void {
    const held = this.held;
    this.held = [];
    for (const h of held) (err ? h.reject(err) : h.resolve(null));
  }
}

/** The first few tokens of a reply with their probabilities, for error messages. */
function describeTop(top: readonly TopLogprob[]): string {
  if (!top.length) return '(none: the API returned no logprobs)';
  const shown = top.slice(0, 5).map((t) => `${JSON.stringify(t.token)} (p=${Math.exp(t.logprob).toFixed(2)})`).join(', ');
  return top.length > 5 ? `${shown}, …` : shown;
}

/**
 * Throws when every answer a batch of scores covers went unscored (or the mean is NaN), naming the judge:
 * for the places that turn judge scores into means, so "NaN" is never printed as a result.
 */
export function requireScores(judgeId: string, scores: readonly (number | null)[]): void {
  const usable = scores.filter((v): v is number => v !== null && Number.isFinite(v));
  if (scores.length > 0 && usable.length === 0) throw new PersonaError(`judge ${judgeId} gave no usable score for any of ${scores.length} answers (all refusals or no score tokens): check the judge model and prompt`);
}
