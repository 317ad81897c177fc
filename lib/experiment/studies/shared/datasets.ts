/**
 * Finetuning datasets of the shift, mitigation and screening studies, from one of two sources:
 *  - the paper's `dataset/` layout, read as is: <datasets>/<kind>/{normal, misaligned_1, misaligned_2}.jsonl, each
 *    line {"messages": [...]} (kind: a trait set such as evil, or an emergent-misalignment-style set such as
 *    mistake_medical; version normal | I | II picks the file);
 *  - the organism's generated datasets (lib/organism/datasets.ts), when no `datasets` directory is given.
 * Either way a dataset is its JSONL text and sha256 (the hash keys every finetune trained on it).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersonaError } from '../../../errors';
import { readJsonl } from '../../../io/jsonl';
import { FINETUNE_KINDS, FinetuneKind, FinetuneVersion } from '../../../organism/datasets';
import { finetuneData } from '../../../organism/finetune';
import { parseConversation } from '../../../train/data';
import type { ChatMessage } from '../../../tokenizer';

/** The paper's file for each dataset version. */
export const PAPER_VERSION_FILES: Record<FinetuneVersion, string> = { normal: 'normal.jsonl', I: 'misaligned_1.jsonl', II: 'misaligned_2.jsonl' };

export interface DatasetSource {
  /** The paper-layout root (absolute), or undefined for the organism's generated datasets. */
  datasets?: string;
  kind: string;
  version: FinetuneVersion;
}

export interface FinetuneDataset {
  /** JSONL text the trainer reads. */
  text: string;
  sha256: string;
  /** Where it came from, for logs and errors. */
  source: string;
}

/** The paper-layout file of (kind, version). */
export function datasetFile(root: string, kind: string, version: FinetuneVersion): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(kind)) throw new PersonaError(`dataset kind '${kind}' is not a directory name (letters, digits, _ . -)`, { field: 'kind' });
  return path.join(root, kind, PAPER_VERSION_FILES[version]);
}

/** Every conversation of a chat JSONL ({"messages": [...]} per line), checked; an error names the file and line. */
export function readChatJsonl(file: string, limit?: number): ChatMessage[][] {
  if (!fs.existsSync(file)) throw new PersonaError('dataset file not found', { file });
  const out: ChatMessage[][] = [];
  for (const { line, value } of readJsonl(file)) {
    out.push(parseConversation(value, file, line));
    if (limit !== undefined && out.length >= limit) break;
  }
  if (!out.length) throw new PersonaError('dataset file has no conversations', { file });
  return out;
}

/**
 * The dataset of a source: the paper file's first `samples` conversations (all when undefined), re-serialized one
 * per line; or the organism's generated dataset of `samples` (default 1000) from `dataSeed`.
 */
export function finetuneDatasetOf(src: DatasetSource, o: { samples?: number; dataSeed: number }): FinetuneDataset {
  if (src.datasets === undefined) {
    if (!FINETUNE_KINDS.includes(src.kind as FinetuneKind))
      throw new PersonaError(`'${src.kind}' is not one of the organism's dataset kinds (${FINETUNE_KINDS.join(', ')}); for the paper's datasets set datasets: <the paper's dataset/ directory>`, { field: 'kind' });
    const d = finetuneData(src.kind as FinetuneKind, src.version, { samples: o.samples ?? 1000, data_seed: o.dataSeed });
    return { ...d, source: `organism ${src.kind} ${src.version}` };
  }
  const file = datasetFile(src.datasets, src.kind, src.version);
  const convs = readChatJsonl(file, o.samples);
  const text = convs.map((messages) => JSON.stringify({ messages })).join('\n') + '\n';
  return { text, sha256: crypto.createHash('sha256').update(text).digest('hex'), source: file };
}

/** The conversations of a source (screening reads the samples themselves). */
export function datasetConversations(src: DatasetSource, o: { samples?: number; dataSeed: number }): ChatMessage[][] {
  return finetuneDatasetOf(src, o)
    .text.trimEnd()
    .split('\n')
    .map((l) => (JSON.parse(l) as { messages: ChatMessage[] }).messages);
}
