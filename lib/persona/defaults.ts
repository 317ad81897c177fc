/**
 * One table of the method's defaults (the paper's), read by the CLI commands (generate, eval, extract,
 * monitor) and meant for the studies' config schemas too, so a setting means the same everywhere. Where a
 * command departs from a default on purpose, the row says which and why, and so does its --help.
 * README.md shows `defaultsMarkdownTable()` (a test keeps them equal).
 */
import type { Positions } from '../model/interventions';

export const DEFAULTS = {
  /** Steering adds at the last prompt token and each generated token (the paper's ActivationSteerer positions='response'). */
  steeringPositions: 'response' as Positions,
  /** Rollouts (eval, extract, monitor, studies) are sampled at T = 1. */
  temperature: 1,
  /** Tokens per answer (the paper's eval max_tokens). */
  maxNewTokens: 1000,
  /** Answers per evaluation question (the paper's n_per_question). */
  evalSamples: 10,
  /** Answers per (instruction pair, extraction question) on each side. */
  extractSamples: 10,
  /** Extraction filter: pos trait score ≥ t, neg < 100 − t. */
  extractThreshold: 50,
  /** Extraction filter: both answers' coherence ≥ this. */
  coherenceMin: 50,
  /** Random directions in the monitoring null. */
  nullCount: 20,
  /** Judge: top-k logprobs of the first token, weighted over 0–100. */
  judgeTopLogprobs: 20,
  seed: '0',
  batchSize: 8,
} as const;

/** Where a command departs from DEFAULTS on purpose (also said in its --help). */
export const COMMAND_DEFAULTS = {
  generate: { decoding: 'greedy', maxNewTokens: 64 },
  monitor: { samples: 5, maxNewTokens: 300 },
  /** A forward pass over given tokens has no response part: steering applies at every position. */
  forward: { steeringPositions: 'all' as Positions },
} as const;

interface Row {
  setting: string;
  value: string;
  where: string;
  differs: string;
}

const ROWS: Row[] = [
  { setting: 'steering positions', value: DEFAULTS.steeringPositions, where: 'generate, eval, studies', differs: `forward/train-step: ${COMMAND_DEFAULTS.forward.steeringPositions} (no response part)` },
  { setting: 'decoding', value: `sampling, T = ${DEFAULTS.temperature}`, where: 'eval, extract, monitor, studies', differs: `generate: ${COMMAND_DEFAULTS.generate.decoding} (one reproducible answer; --temperature samples)` },
  { setting: 'max new tokens', value: String(DEFAULTS.maxNewTokens), where: 'eval, extract', differs: `generate: ${COMMAND_DEFAULTS.generate.maxNewTokens}; monitor: ${COMMAND_DEFAULTS.monitor.maxNewTokens}; organism configs: 48 (its answers are short)` },
  { setting: 'answers per eval question', value: String(DEFAULTS.evalSamples), where: 'eval', differs: `monitor: ${COMMAND_DEFAULTS.monitor.samples} per (prompt, question)` },
  { setting: 'answers per extraction question and pair', value: String(DEFAULTS.extractSamples), where: 'extract', differs: 'organism configs: 1' },
  { setting: 'extraction filter', value: `pos ≥ ${DEFAULTS.extractThreshold}, neg < ${100 - DEFAULTS.extractThreshold}, coherence ≥ ${DEFAULTS.coherenceMin}`, where: 'extract, studies', differs: '' },
  { setting: 'judge', value: `top-${DEFAULTS.judgeTopLogprobs} logprobs, weighted 0–100`, where: 'all', differs: '' },
  { setting: 'monitoring null', value: `${DEFAULTS.nullCount} random directions`, where: 'monitor', differs: '' },
  { setting: 'seed, batch size', value: `${DEFAULTS.seed}, ${DEFAULTS.batchSize}`, where: 'generate, eval, extract, monitor', differs: 'organism configs: batch 32' },
];

/** The README's defaults table. */
export function defaultsMarkdownTable(): string {
  const lines = ['| setting | default (the paper\'s) | used by | differs on purpose |', '|---|---|---|---|'];
  for (const r of ROWS) lines.push(`| ${r.setting} | ${r.value} | ${r.where} | ${r.differs || '—'} |`);
  return lines.join('\n') + '\n';
}
