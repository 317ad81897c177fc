/**
 * Work estimate of an experiment before it runs (`persona plan`): per cell and in total, the rollouts, tokens to
 * generate, forward passes, judge requests and judge tokens, from the config's fields alone (the model need not be
 * on this machine); with a price per million judge tokens, the judge cost; with `persona bench generate --json` from
 * the target machine, the GPU hours.
 *
 * How each number is counted (the studies' procedure, paper §2–3):
 *   rollouts          one per (prompt × question × sample): extraction 2 sides × instruction pairs × extraction
 *                     questions × extract_samples; steering evaluation questions × samples; monitoring conditions ×
 *                     evaluation questions × samples (+ the graded system prompts × layer_samples the layer is chosen on)
 *   generated tokens  rollouts × answer tokens: max_new_tokens (an upper bound: every answer runs to the limit) unless
 *                     an expected answer length is given
 *   forward passes    batched forward calls: generation takes one per decoding step of each batch of batch_size
 *                     rollouts, and a batch runs until its longest answer ends (max_new_tokens steps, the bound);
 *                     activation capture one per batch of sequences (extraction: every pos/neg rollout, an upper
 *                     bound on the kept pairs; monitoring: each prompt)
 *   judge             two requests per rollout (trait + coherence), one output token each (top-20 logprobs); input =
 *                     the judge prompt with question and answer filled in
 * Text lengths come from the trait artifacts when they are on this machine, else from the paper's artifacts (mean
 * lengths over its seven traits); tokens ≈ characters / 4 (English, OpenAI's rule of thumb), plus 5 per chat message.
 * Work shared by cells (a trait's persona vector, the monitor layer's rollouts) is counted once, as the cache does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../errors';
import { COHERENCE_PROMPT_NAME, DEFAULT_COHERENCE_PROMPT, loadJudgePrompts, selectJudgePrompt } from '../judge/judge';
import { readTraitArtifacts } from '../persona/artifacts';
import { readTrainConfig } from '../train/config';
import { expandExperiment } from './runner';
import { CellSettings, ExperimentConfig } from './study';
import './studies'; // registers the built-in studies

export interface Work {
  /** Answers generated. */
  rollouts: number;
  /** Prompt tokens prefilled for those answers. */
  promptTokens: number;
  /** Tokens generated (an upper bound unless an expected answer length was given). */
  generatedTokens: number;
  /** generate() calls (batches of rollouts). */
  generateBatches: number;
  /** Forward passes while generating: max_new_tokens per batch (the first is the prefill). */
  decodeSteps: number;
  /** Sequences run through activation capture, their tokens, and the batched forward passes that takes. */
  activationSequences: number;
  activationTokens: number;
  activationPasses: number;
  judgeRequests: number;
  judgeInputTokens: number;
  judgeOutputTokens: number;
}

export const ZERO_WORK: Readonly<Work> = Object.freeze({
  rollouts: 0, promptTokens: 0, generatedTokens: 0, generateBatches: 0, decodeSteps: 0,
  activationSequences: 0, activationTokens: 0, activationPasses: 0, judgeRequests: 0, judgeInputTokens: 0, judgeOutputTokens: 0,
});

export function addWork(...ws: Work[]): Work {
  const out: Work = { ...ZERO_WORK };
  for (const w of ws) for (const k of Object.keys(out) as (keyof Work)[]) out[k] += w[k];
  return out;
}

/** Forward passes of the model: decoding steps + activation batches. */
export function forwardPasses(w: Work): number {
  return w.decodeSteps + w.activationPasses;
}

/** Tokens of English text of `chars` characters (≈ 4 characters a token). */
export function approxTokens(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}
export const CHARS_PER_TOKEN = 4;
/** Chat-template tokens around one message (role header and end marker), and the generation prompt. */
export const MESSAGE_OVERHEAD_TOKENS = 5;
export const GENERATION_PROMPT_TOKENS = 3;

/**
 * The paper's trait artifacts (configs/paper's data/paper), mean lengths in characters over its seven traits: 5
 * instruction pairs, 20 extraction and 20 evaluation questions per trait (measured on the paper's data_generation files).
 */
export const PAPER_ARTIFACTS = { pairs: 5, extractQuestions: 20, evalQuestions: 20, posChars: 132, negChars: 128, questionChars: 70, evalPromptChars: 797 } as const;
/** Graded monitoring prompts per trait (paper Fig. 4). */
export const GRADED_PROMPTS = 8;
/**
 * Many-shot conditions when a config names none (the monitoring study's defaults): the paper's 0–20 example turns, as
 * many as there are examples (from the extraction's positive answers when the artifacts carry none), or the
 * organism's seven (k, level) pairs for levelled examples.
 */
export const PAPER_SHOT_COUNTS = [0, 1, 2, 4, 8, 12, 16, 20];
export const LEVELLED_SHOT_COUNTS = [0, 1, 1, 1, 1, 1, 2];

/** What the estimate needs of a trait's artifacts: text lengths in characters. */
export interface TraitText {
  /** Where the lengths come from: an artifacts directory, or the paper's averages. */
  source: string;
  pos: number[];
  neg: number[];
  extractQuestions: number[];
  evalQuestions: number[];
  evalPrompt: number;
  /** Lengths of the eight graded system prompts (0 = none), when the artifacts carry them. */
  graded?: number[];
  /** The artifacts' many-shot examples: how many, whether levelled, mean question and answer length. */
  manyShot?: { count: number; levelled: boolean; question: number; answer: number };
}

export function paperTraitText(): TraitText {
  const n = (k: number, v: number) => new Array<number>(k).fill(v);
  const p = PAPER_ARTIFACTS;
  return { source: "the paper's artifacts (mean lengths)", pos: n(p.pairs, p.posChars), neg: n(p.pairs, p.negChars), extractQuestions: n(p.extractQuestions, p.questionChars), evalQuestions: n(p.evalQuestions, p.questionChars), evalPrompt: p.evalPromptChars };
}

/** Lengths from the trait's artifact files in `dir`, or the paper's averages when they are not there. */
export function traitText(dir: string | undefined, trait: string): TraitText {
  if (dir === undefined || !fs.existsSync(path.join(dir, 'trait_data_extract', `${trait}.json`))) return paperTraitText();
  const a = readTraitArtifacts(dir, trait);
  const len = (xs: readonly string[]) => xs.map((s) => s.length);
  const t: TraitText = {
    source: dir,
    pos: len(a.extract.instruction.map((i) => i.pos)),
    neg: len(a.extract.instruction.map((i) => i.neg)),
    extractQuestions: len(a.extract.questions),
    evalQuestions: len(a.eval.questions),
    evalPrompt: a.eval.eval_prompt.length,
  };
  const graded = a.eval.graded_system_prompts ?? a.extract.graded_system_prompts;
  if (graded) t.graded = graded.map((g) => g.system?.length ?? 0);
  const shots = a.eval.many_shot_examples ?? a.extract.many_shot_examples;
  if (shots?.length) t.manyShot = { count: shots.length, levelled: shots.some((s) => s.level !== undefined), question: mean(shots.map((s) => s.question.length)), answer: mean(shots.map((s) => s.answer.length)) };
  return t;
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/** Tokens of a chat prompt with the given message lengths (characters), ready for generation. */
export function chatPromptTokens(messageChars: readonly number[]): number {
  return messageChars.reduce((s, c) => s + approxTokens(c) + MESSAGE_OVERHEAD_TOKENS, 0) + GENERATION_PROMPT_TOKENS;
}

/** "You are a/an {name} assistant. {instruction}" */
const systemChars = (name: string, instruction: number) => 'You are an  assistant. '.length + name.length + instruction;

export interface RolloutPrompt {
  /** Prompt tokens (system, history, question). */
  tokens: number;
  /** Characters of the question the judges see. */
  questionChars: number;
}

export interface GenerationSettings {
  maxNewTokens: number;
  batchSize: number;
  /** Expected answer length in tokens; default maxNewTokens (the bound). */
  answerTokens?: number;
}

export interface JudgeTemplates {
  /** Characters of the trait judge prompt and the coherence prompt (before question and answer are filled in). */
  traitChars: number;
  coherenceChars: number;
}

/** One resumable rollout set (one generate loop over `prompts` × samples, in batches), judged. */
export function rolloutWork(prompts: readonly RolloutPrompt[], samples: number, g: GenerationSettings, judge: JudgeTemplates): Work {
  const n = prompts.length * samples;
  const answer = Math.min(g.answerTokens ?? g.maxNewTokens, g.maxNewTokens);
  const batches = Math.ceil(n / g.batchSize);
  const judgeIn = prompts.reduce((s, p) => s + samples * (approxTokens(judge.traitChars + p.questionChars) + approxTokens(judge.coherenceChars + p.questionChars) + 2 * answer), 0);
  return {
    ...ZERO_WORK,
    rollouts: n,
    promptTokens: prompts.reduce((s, p) => s + samples * p.tokens, 0),
    generatedTokens: n * answer,
    generateBatches: batches,
    decodeSteps: batches * g.maxNewTokens,
    judgeRequests: 2 * n,
    judgeInputTokens: judgeIn,
    judgeOutputTokens: 2 * n,
  };
}

/** Activation capture over sequences of the given token lengths, batchSize at a time. */
export function activationWork(tokens: readonly number[], batchSize: number): Work {
  return { ...ZERO_WORK, activationSequences: tokens.length, activationTokens: tokens.reduce((s, t) => s + t, 0), activationPasses: Math.ceil(tokens.length / batchSize) };
}

/** A piece of a cell's work; `shared` names work several cells reuse (counted once, for the first cell that needs it). */
export interface WorkPart {
  label: string;
  shared?: string;
  work: Work;
}

export interface EstimateEnv {
  /** Resolves a path field of the config (relative to the config file). */
  resolvePath(p: string): string;
  traitText(cell: CellSettings): TraitText;
  judge(cell: CellSettings): JudgeTemplates;
  answerTokens?: number;
}

export type StudyEstimator = (cell: CellSettings, env: EstimateEnv) => WorkPart[];

const estimators = new Map<string, StudyEstimator>();

/** How a study's cell turns into work (studies register theirs; steering and monitoring are below). */
export function registerEstimator(study: string, f: StudyEstimator): void {
  estimators.set(study, f);
}

// ---------------------------------------------------------------------------------------------------
// The paper's studies
// ---------------------------------------------------------------------------------------------------

const num = (c: CellSettings, k: string, d: number): number => (typeof c[k] === 'number' ? (c[k] as number) : d);
const str = (c: CellSettings, k: string, d: string): string => (typeof c[k] === 'string' ? (c[k] as string) : d);

function generation(c: CellSettings, env: EstimateEnv): GenerationSettings {
  return { maxNewTokens: num(c, 'max_new_tokens', 48), batchSize: num(c, 'batch_size', 32), answerTokens: env.answerTokens };
}

/**
 * The persona vector of a cell's trait: pos and neg rollouts (one set each) and one capture pass over them. Keyed by
 * what decides the rollouts (not the method: every method reads the same activations).
 */
export function extractionPart(c: CellSettings, env: EstimateEnv): WorkPart {
  const t = env.traitText(c);
  const trait = str(c, 'trait', '?');
  const g = generation(c, env);
  const samples = num(c, 'extract_samples', 1);
  const side = (name: string, instr: number[]) =>
    t.extractQuestions.flatMap((q) => instr.map((i) => ({ tokens: chatPromptTokens([systemChars(name, i), q]), questionChars: q })));
  const pos = side(trait, t.pos);
  const neg = side('helpful', t.neg);
  const judge = env.judge(c);
  const answer = Math.min(g.answerTokens ?? g.maxNewTokens, g.maxNewTokens);
  const seqs = [...pos, ...neg].flatMap((p) => new Array<number>(samples).fill(p.tokens + answer));
  const work = addWork(rolloutWork(pos, samples, g, judge), rolloutWork(neg, samples, g, judge), activationWork(seqs, g.batchSize));
  const key = JSON.stringify(['extract', c.model, c.artifacts ?? null, trait, samples, g.maxNewTokens, g.batchSize, c.temperature ?? null, c.judge ?? null]);
  return { label: `persona vector ${trait} (extraction)`, shared: key, work };
}

registerEstimator('steering', (c, env) => {
  const t = env.traitText(c);
  const system = str(c, 'system', 'none');
  const trait = str(c, 'trait', '?');
  const prompts = t.evalQuestions.map((q, i) => ({ tokens: chatPromptTokens(system === 'positive' ? [systemChars(trait, t.pos[i % t.pos.length]), q] : [q]), questionChars: q }));
  return [extractionPart(c, env), { label: 'steered answers', work: rolloutWork(prompts, num(c, 'samples', 1), generation(c, env), env.judge(c)) }];
});

/** The monitoring conditions' system/history lengths: the eight graded prompts, or k-shot histories. */
function monitorConditions(c: CellSettings, t: TraitText, family: string, answerTokens: number): number[][] {
  if (family === 'system') {
    const graded = t.graded ?? new Array<number>(GRADED_PROMPTS).fill(Math.round(mean([...t.pos, ...t.neg])));
    return graded.map((g) => (g > 0 ? [g] : []));
  }
  const ks = Array.isArray(c.shots)
    ? (c.shots as { k: number }[]).map((s) => s.k)
    : t.manyShot?.levelled
      ? LEVELLED_SHOT_COUNTS
      : PAPER_SHOT_COUNTS.filter((k) => k <= (t.manyShot?.count ?? Infinity));
  // Examples are the artifacts' own, else the extraction's positive answers (questions of extraction, answers as generated).
  const q = t.manyShot?.question ?? mean(t.extractQuestions);
  const a = t.manyShot?.answer ?? answerTokens * CHARS_PER_TOKEN;
  return ks.map((k) => Array.from({ length: 2 * k }, (_, i) => (i % 2 === 0 ? q : a)));
}

registerEstimator('monitoring', (c, env) => {
  const t = env.traitText(c);
  const g = generation(c, env);
  const judge = env.judge(c);
  const answer = Math.min(g.answerTokens ?? g.maxNewTokens, g.maxNewTokens);
  const trait = str(c, 'trait', '?');
  // One rollout set per condition (each is its own cached run), then one capture pass over every prompt.
  const family = (fam: string, samples: number): Work => {
    const sets = monitorConditions(c, t, fam, answer).map((msgs) => t.evalQuestions.map((q) => ({ tokens: chatPromptTokens([...msgs, q]), questionChars: q })));
    return addWork(...sets.map((p) => rolloutWork(p, samples, g, judge)), activationWork(sets.flat().map((p) => p.tokens), g.batchSize));
  };
  const layerSamples = num(c, 'layer_samples', 4);
  const samples = num(c, 'samples', 4);
  const prompts = str(c, 'prompts', 'system');
  const parts: WorkPart[] = [
    extractionPart(c, env),
    { label: `monitor layer ${trait} (graded system prompts × ${layerSamples})`, shared: JSON.stringify(['monitor-system', c.model, c.artifacts ?? null, trait, layerSamples, g.maxNewTokens, g.batchSize, c.temperature ?? null, c.judge ?? null]), work: family('system', layerSamples) },
  ];
  if (!(prompts === 'system' && samples === layerSamples)) parts.push({ label: `${prompts} prompts × ${samples}`, work: family(prompts, samples) });
  return parts;
});

// ---------------------------------------------------------------------------------------------------
// Whole experiments
// ---------------------------------------------------------------------------------------------------

export interface CellEstimate {
  /** The cell's swept values (and the fields cells() varies), e.g. "trait=evil layer=20 coef=1.5". */
  name: string;
  settings: CellSettings;
  /** This cell's own work plus the shared work it computes first. */
  parts: WorkPart[];
  work: Work;
}

export interface GpuEstimate {
  hours: number;
  prefillHours: number;
  decodeHours: number;
  activationHours: number;
  /** What was measured: backend, adapter, batch, prompt length, decode ms per step, prefill tokens/s. */
  bench: { file: string; backend: string; adapter: string | null; batch: number; promptLen: number; decodeMsPerStep: number; prefillTokensPerS: number };
  notes: string[];
}

export interface PlanEstimate {
  experiment: string;
  study: string;
  cells: CellEstimate[];
  total: Work;
  /** Answer length counted per rollout: "max_new_tokens (upper bound)" or the expected length given. */
  answerTokens: string;
  textSources: string[];
  judgeCost?: { usd: number; pricePerMillionIn: number; pricePerMillionOut: number };
  gpu?: GpuEstimate;
}

export interface EstimateOptions {
  /** Expected answer length in tokens (default: every answer runs to max_new_tokens). */
  answerTokens?: number;
  /** USD per million judge input / output tokens. */
  judgePriceIn?: number;
  judgePriceOut?: number;
  /** JSON written by `persona bench generate --json` on the target machine. */
  benchFile?: string;
}

/** Settings of every cell of a config, as the runner expands them, without checking the model or files exist. */
export function expandCells(file: string): { config: ExperimentConfig; cells: CellSettings[] } {
  const { config, study } = expandExperiment(file);
  const cells = study.cells ? study.cells(config) : config.product;
  const seen = new Set<string>();
  return { config, cells: cells.filter((c) => !seen.has(JSON.stringify(c)) && !!seen.add(JSON.stringify(c))) };
}

/** A cell's name: its swept values, then the fields in which it differs from the first cell (those cells() added). */
function cellName(c: CellSettings, config: ExperimentConfig): string {
  const first = config.product[0] ?? {};
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const keys = [...config.axes, ...Object.keys(c).filter((k) => !config.axes.includes(k) && JSON.stringify(c[k]) !== JSON.stringify(first[k]))];
  return keys.map((k) => `${k}=${show(c[k])}`).join(' ') || '(one cell)';
}

export function readBench(file: string): GpuEstimate['bench'] {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new PersonaError(`cannot read the bench JSON: ${(e as Error).message}`, { file });
  }
  const need = (k: string): number => {
    const v = j[k];
    if (typeof v !== 'number' || !(v > 0)) throw new PersonaError(`bench JSON has no positive '${k}': write it with \`persona bench generate --json FILE\` (prefill and decode speed) on the target machine`, { file, field: k });
    return v;
  };
  const adapter = j.adapter && typeof j.adapter === 'object' ? [(j.adapter as Record<string, unknown>).vendor, (j.adapter as Record<string, unknown>).architecture, (j.adapter as Record<string, unknown>).description].filter(Boolean).join(' ') || null : null;
  return { file, backend: String(j.backend ?? '?'), adapter, batch: need('batch'), promptLen: need('prompt_len'), decodeMsPerStep: need('decode_ms_per_step'), prefillTokensPerS: need('prefill_tokens_per_s') };
}

/**
 * GPU time of `w` at the measured speed: prompt and captured tokens at the prefill rate, one measured decoding step per
 * forward pass of generation. The decode step was measured at the bench's batch and context; a config generating at
 * another batch size or much longer contexts runs at another speed (said in notes).
 */
export function gpuEstimate(w: Work, bench: GpuEstimate['bench'], batchSizes: readonly number[], maxContext: number): GpuEstimate {
  const prefill = w.promptTokens / bench.prefillTokensPerS / 3600;
  const decode = (w.decodeSteps * bench.decodeMsPerStep) / 1000 / 3600;
  const act = w.activationTokens / bench.prefillTokensPerS / 3600;
  const notes: string[] = [];
  const other = [...new Set(batchSizes)].filter((b) => b !== bench.batch);
  if (other.length) notes.push(`decode speed measured at batch ${bench.batch}; the config generates at batch ${other.join(', ')} (rerun persona bench generate --batch ${other[0]} for that speed)`);
  if (maxContext > 2 * (bench.promptLen + 0)) notes.push(`answers reach ${maxContext} tokens of context; the bench decoded after a ${bench.promptLen}-token prompt (attention over longer contexts is slower)`);
  return { hours: prefill + decode + act, prefillHours: prefill, decodeHours: decode, activationHours: act, bench, notes };
}

/** The estimate of a config: per cell, shared work counted once, totals, and cost and GPU hours when asked. */
export function estimateExperiment(file: string, o: EstimateOptions = {}): PlanEstimate {
  if (o.answerTokens !== undefined && !(Number.isInteger(o.answerTokens) && o.answerTokens >= 1)) throw new PersonaError(`expected answer length must be a positive integer of tokens, got ${o.answerTokens}`, { field: 'answer-tokens' });
  for (const [k, v] of [['judge-price-in', o.judgePriceIn], ['judge-price-out', o.judgePriceOut]] as const)
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) throw new PersonaError(`${k} must be a non-negative number of USD per million tokens, got ${v}`, { field: k });
  const bench = o.benchFile !== undefined ? readBench(o.benchFile) : undefined; // before the work, so a bad file fails fast
  const { config, cells } = expandCells(file);
  const est = estimators.get(config.study);
  if (!est) throw new PersonaError(`no work estimate for study '${config.study}' (estimates exist for: ${[...estimators.keys()].sort().join(', ')})`, { file, field: 'study' });
  const resolvePath = (p: string) => path.resolve(config.dir, p);
  const texts = new Map<string, TraitText>();
  const judges = new Map<string, JudgeTemplates>();
  const env: EstimateEnv = {
    resolvePath,
    answerTokens: o.answerTokens,
    traitText(c) {
      const dir = typeof c.artifacts === 'string' ? resolvePath(c.artifacts) : typeof c.model === 'string' ? path.join(resolvePath(c.model), 'artifacts') : undefined;
      const key = `${dir}\u0000${String(c.trait)}`;
      if (!texts.has(key)) texts.set(key, traitText(dir, String(c.trait)));
      return texts.get(key)!;
    },
    judge(c) {
      const j = (c.judge ?? {}) as { prompts?: string };
      const key = j.prompts ?? '';
      if (!judges.has(key)) {
        const coherence = j.prompts !== undefined && fs.existsSync(resolvePath(j.prompts)) ? selectJudgePrompt(loadJudgePrompts(resolvePath(j.prompts)), COHERENCE_PROMPT_NAME, j.prompts) : DEFAULT_COHERENCE_PROMPT;
        judges.set(key, { traitChars: 0, coherenceChars: coherence.length });
      }
      return { ...judges.get(key)!, traitChars: env.traitText(c).evalPrompt };
    },
  };
  const seen = new Set<string>();
  const out: CellEstimate[] = cells.map((settings) => {
    const parts = est(settings, env).filter((p) => p.shared === undefined || (!seen.has(p.shared) && !!seen.add(p.shared)));
    return { name: cellName(settings, config), settings, parts, work: addWork(...parts.map((p) => p.work)) };
  });
  const total = addWork(...out.map((c) => c.work));
  const r: PlanEstimate = {
    experiment: config.experiment,
    study: config.study,
    cells: out,
    total,
    answerTokens: o.answerTokens !== undefined ? `${o.answerTokens} tokens (expected, capped at max_new_tokens)` : 'max_new_tokens (upper bound: every answer runs to the limit)',
    textSources: [...new Set([...texts.values()].map((t) => t.source))],
  };
  if (o.judgePriceIn !== undefined || o.judgePriceOut !== undefined) {
    const pin = o.judgePriceIn ?? 0;
    const pout = o.judgePriceOut ?? 0;
    r.judgeCost = { usd: (total.judgeInputTokens * pin + total.judgeOutputTokens * pout) / 1e6, pricePerMillionIn: pin, pricePerMillionOut: pout };
  }
  if (bench) {
    const batch = cells.map((c) => num(c, 'batch_size', 32));
    const ctx = Math.max(...out.flatMap((c) => c.parts.map((p) => (p.work.rollouts ? Math.ceil(p.work.promptTokens / p.work.rollouts) : 0))), 0) + Math.max(...cells.map((c) => num(c, 'max_new_tokens', 48)));
    r.gpu = gpuEstimate(total, bench, batch, ctx);
  }
  return r;
}

/** The estimate as text: one line per cell (shared work in its own lines), the total, cost and GPU hours. */
export function formatEstimate(e: PlanEstimate): string {
  const f = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
  const head = ['', 'rollouts', 'gen tokens', 'fwd passes', 'judge req', 'judge tok in', 'judge tok out'];
  const row = (name: string, w: Work) => [name, f(w.rollouts), f(w.generatedTokens), f(forwardPasses(w)), f(w.judgeRequests), f(w.judgeInputTokens), f(w.judgeOutputTokens)];
  const rows: string[][] = [head];
  for (const c of e.cells) {
    for (const p of c.parts) if (p.shared !== undefined) rows.push(row(`  shared: ${p.label}`, p.work));
    const own = addWork(...c.parts.filter((p) => p.shared === undefined).map((p) => p.work));
    rows.push(row(own.rollouts === 0 && own.activationSequences === 0 ? `${c.name} (reuses shared work only)` : c.name, own));
  }
  rows.push(row(`total (${e.cells.length} cells)`, e.total));
  const w = head.map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  const lines = [`${e.experiment} (${e.study}): work estimate; answers counted at ${e.answerTokens}; text lengths from ${e.textSources.join(', ') || '(none)'}`];
  for (const r of rows) lines.push(r.map((c, j) => (j === 0 ? c.padEnd(w[j]) : c.padStart(w[j]))).join('  ').trimEnd());
  const t = e.total;
  lines.push(`prompt tokens prefilled ${f(t.promptTokens)}; generate batches ${f(t.generateBatches)} (${f(t.decodeSteps)} decoding steps); activation capture ${f(t.activationSequences)} sequences, ${f(t.activationTokens)} tokens, ${f(t.activationPasses)} passes`);
  if (e.judgeCost) lines.push(`judge cost: $${e.judgeCost.usd.toFixed(2)} at $${e.judgeCost.pricePerMillionIn}/M input and $${e.judgeCost.pricePerMillionOut}/M output tokens`);
  if (e.gpu) {
    const g = e.gpu;
    lines.push(`GPU hours: ${g.hours.toFixed(2)} (decode ${g.decodeHours.toFixed(2)}, prefill ${g.prefillHours.toFixed(2)}, activations ${g.activationHours.toFixed(2)}) at ${g.bench.decodeMsPerStep.toFixed(1)} ms per decoding step (batch ${g.bench.batch}) and ${f(g.bench.prefillTokensPerS)} prefill tokens/s on ${g.bench.backend}${g.bench.adapter ? ` (${g.bench.adapter})` : ''}, from ${g.bench.file}`);
    for (const n of g.notes) lines.push(`  note: ${n}`);
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------
// Training configs (`persona train CONFIG`: the finetunes of the shift, mitigation and screening studies)
// ---------------------------------------------------------------------------------------------------

export interface TrainEstimate {
  file: string;
  /** Training examples (after the held-out fraction), where the count came from, and tokens per example. */
  examples: number;
  examplesSource: string;
  tokensPerExample: number;
  tokensSource: string;
  epochs: number;
  /** Micro-batches of per_device_train_batch_size: one forward + backward pass each. */
  forwardBackwardPasses: number;
  optimizerSteps: number;
  /** Tokens through the model: forwardBackwardPasses × batch × tokens per example (padding to the longest ignored). */
  tokens: number;
  gpu?: { hours: number; tokensPerS: number; bench: string; notes: string[] };
}

/** Examples and mean tokens (≈ characters / 4 + 5 per message, capped at max_seq_length) of `{"messages": [...]}` JSONL files. */
function jsonlStats(files: readonly string[], maxSeq: number): { examples: number; tokens: number } {
  let examples = 0;
  let tokens = 0;
  for (const f of files)
    fs.readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let m: unknown;
      try {
        m = (JSON.parse(line) as { messages?: unknown }).messages;
      } catch (e) {
        throw new PersonaError(`line ${i + 1} is not JSON: ${(e as Error).message}`, { file: f });
      }
      if (!Array.isArray(m)) throw new PersonaError(`line ${i + 1} has no "messages" list`, { file: f });
      examples++;
      tokens += Math.min(maxSeq, chatPromptTokens(m.map((x) => String((x as { content?: unknown })?.content ?? '').length)));
    });
  return { examples, tokens: examples ? tokens / examples : 0 };
}

/**
 * The work of a training config: examples (counted in its training files, else `examples`), micro-batches (forward +
 * backward passes), optimizer steps and tokens; GPU hours from `persona bench train --json` (tokens/s at its batch and
 * sequence length).
 */
export function estimateTraining(file: string, o: { examples?: number; benchFile?: string } = {}): TrainEstimate {
  const { config: c } = readTrainConfig(file);
  const files = c.training_file as string[];
  const missing = files.filter((f) => !fs.existsSync(f));
  let examples: number;
  let tokens: number;
  let examplesSource: string;
  let tokensSource: string;
  if (!missing.length) {
    const s = jsonlStats(files, c.max_seq_length);
    examples = s.examples;
    tokens = Math.ceil(s.tokens);
    examplesSource = tokensSource = files.join(', ');
  } else {
    if (o.examples === undefined) throw new PersonaError(`training file not found: ${missing[0]}; give the number of examples (persona plan --train-examples N) to estimate without it`, { file, field: 'training_file' });
    examples = o.examples;
    tokens = c.max_seq_length;
    examplesSource = '--train-examples';
    tokensSource = 'max_seq_length (upper bound: the training file is not here)';
  }
  if (!(Number.isInteger(examples) && examples >= 1)) throw new PersonaError(`training examples must be a positive integer, got ${examples}`, { file, field: 'training_file' });
  const train = c.test_file ? examples : examples - Math.floor(examples * c.held_out_fraction);
  const microPerEpoch = Math.ceil(train / c.per_device_train_batch_size);
  const stepsPerEpoch = Math.ceil(microPerEpoch / c.gradient_accumulation_steps);
  const capped = c.max_steps !== null && c.max_steps > 0;
  const steps = capped ? c.max_steps! : stepsPerEpoch * c.epochs;
  const passes = capped ? c.max_steps! * c.gradient_accumulation_steps : microPerEpoch * c.epochs;
  const seen = capped ? passes * c.per_device_train_batch_size : c.epochs * train;
  const r: TrainEstimate = { file, examples: train, examplesSource, tokensPerExample: tokens, tokensSource, epochs: c.epochs, forwardBackwardPasses: passes, optimizerSteps: steps, tokens: seen * tokens };
  if (o.benchFile !== undefined) {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(fs.readFileSync(o.benchFile, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new PersonaError(`cannot read the bench JSON: ${(e as Error).message}`, { file: o.benchFile });
    }
    const tps = j.tokens_per_s;
    if (typeof tps !== 'number' || !(tps > 0)) throw new PersonaError("bench JSON has no positive 'tokens_per_s': write it with `persona bench train --json FILE` on the target machine", { file: o.benchFile, field: 'tokens_per_s' });
    const notes: string[] = [];
    if (j.seq_len !== undefined && j.seq_len !== tokens) notes.push(`measured at ${String(j.seq_len)} tokens per sequence; examples here are ~${tokens} (rerun persona bench train --seq-len ${tokens})`);
    const wantMode = c.is_peft ? 'lora' : 'full';
    if (j.mode !== undefined && j.mode !== wantMode) notes.push(`measured ${String(j.mode)} training; the config trains ${wantMode}`);
    r.gpu = { hours: r.tokens / tps / 3600, tokensPerS: tps, bench: o.benchFile, notes };
  }
  return r;
}

export function formatTrainEstimate(e: TrainEstimate): string {
  const f = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
  const lines = [
    `${e.file}: training work estimate`,
    `examples ${f(e.examples)} (${e.examplesSource}); ~${f(e.tokensPerExample)} tokens each (${e.tokensSource}); ${e.epochs} epoch(s)`,
    `forward + backward passes ${f(e.forwardBackwardPasses)}; optimizer steps ${f(e.optimizerSteps)}; tokens ${f(e.tokens)}; no generation, no judge requests`,
  ];
  if (e.gpu) {
    lines.push(`GPU hours: ${e.gpu.hours.toFixed(2)} at ${f(e.gpu.tokensPerS)} training tokens/s, from ${e.gpu.bench}`);
    for (const n of e.gpu.notes) lines.push(`  note: ${n}`);
  }
  return `${lines.join('\n')}\n`;
}
