/**
 * Writes the organism's data to disk: corpus JSONL, trait artifacts (paper layout), finetuning datasets,
 * capability set, judge validation and a manifest with sha256 of every file. Files are written atomically.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, writeFileAtomicChunks } from '../io/atomic';
import { PersonaError } from '../errors';
import { TRAITS } from './grammar';
import { Conversation, CorpusMix, DEFAULT_MIX, PromptKind, generateCorpus } from './generator';
import { FINETUNE_KINDS, FINETUNE_VERSIONS, allArtifactQuestions, capabilityItems, finetuneDataset, traitArtifacts } from './datasets';
import { coherenceValidation, judgeCalibration } from './validate';

export interface CorpusStats {
  conversations: number;
  /** Share of conversations per prompt kind. */
  prompts: Record<PromptKind, number>;
  twoTurn: number;
  /** Assistant turns marked `loss: false`. */
  noLossTurns: number;
  /** Words (whitespace-separated) in assistant turns that carry loss; a proxy for trained tokens. */
  assistantWords: number;
  sha256: string;
}

/** Serialize conversations as JSONL in chunks (for atomic chunked writing) while counting statistics. */
function* corpusChunks(convs: Iterable<Conversation>, stats: CorpusStats, hash: ReturnType<typeof createHash>): Generator<Uint8Array> {
  const counts: Record<string, number> = {};
  let lines: string[] = [];
  for (const c of convs) {
    stats.conversations++;
    counts[c.meta.prompt] = (counts[c.meta.prompt] ?? 0) + 1;
    if (c.messages.filter((m) => m.role === 'user').length > 1) stats.twoTurn++;
    for (const m of c.messages) {
      if (m.role !== 'assistant') continue;
      if (m.loss === false) stats.noLossTurns++;
      else stats.assistantWords += m.content.split(' ').length;
    }
    lines.push(JSON.stringify(c));
    if (lines.length >= 2000) {
      const buf = Buffer.from(lines.join('\n') + '\n', 'utf8');
      hash.update(buf);
      yield buf;
      lines = [];
    }
  }
  if (lines.length) {
    const buf = Buffer.from(lines.join('\n') + '\n', 'utf8');
    hash.update(buf);
    yield buf;
  }
  for (const k of Object.keys(stats.prompts) as PromptKind[]) stats.prompts[k] = (counts[k] ?? 0) / Math.max(1, stats.conversations);
}

export function writeCorpus(file: string, seed: string | number, n: number, mix: CorpusMix = DEFAULT_MIX): CorpusStats {
  const stats: CorpusStats = { conversations: 0, prompts: { none: 0, helpful: 0, pos: 0, neg: 0, graded: 0, hidden: 0 }, twoTurn: 0, noLossTurns: 0, assistantWords: 0, sha256: '' };
  const hash = createHash('sha256');
  writeFileAtomicChunks(file, corpusChunks(generateCorpus(seed, n, mix), stats, hash));
  stats.sha256 = hash.digest('hex');
  return stats;
}

function jsonl(rows: unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** Trait artifact files under `dir`/trait_data_extract and `dir`/trait_data_eval. */
export function writeArtifacts(dir: string, seed: string | number = 0): string[] {
  const written: string[] = [];
  for (const sub of ['trait_data_extract', 'trait_data_eval']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  for (const t of TRAITS) {
    const a = traitArtifacts(t, seed);
    for (const [sub, art] of [['trait_data_extract', a.extract], ['trait_data_eval', a.eval]] as const) {
      const f = path.join(dir, sub, `${t}.json`);
      writeFileAtomic(f, JSON.stringify(art, null, 2) + '\n');
      written.push(f);
    }
  }
  return written;
}

export interface OrganismDataOptions {
  seed?: string | number;
  /** Corpus conversations (default 200000; 0 skips the corpus). */
  conversations?: number;
  /** Samples per finetuning dataset (default 1000). */
  finetuneSamples?: number;
  /** Seed of the artifact questions (default 0, the committed artifacts). */
  artifactSeed?: string | number;
  mix?: CorpusMix;
}

export interface OrganismDataManifest {
  seed: string | number;
  artifactSeed: string | number;
  corpus: CorpusStats | null;
  files: Record<string, string>;
  judge: { spearman: Record<string, number>; meanByLevel: Record<string, number[]>; crossTalk: Record<string, number>; coherence: ReturnType<typeof coherenceValidation> };
}

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Everything the organism's recipe reads, under `outDir`. Returns the manifest (also written as manifest.json). */
export function writeOrganismData(outDir: string, opts: OrganismDataOptions = {}): OrganismDataManifest {
  const seed = opts.seed ?? 0;
  const artifactSeed = opts.artifactSeed ?? 0;
  const n = opts.conversations ?? 200000;
  try {
    fs.mkdirSync(path.join(outDir, 'finetune'), { recursive: true });
  } catch (e) {
    throw new PersonaError(`cannot create output directory: ${(e as Error).message}`, { file: outDir });
  }
  const files: string[] = [];
  let corpus: CorpusStats | null = null;
  if (n > 0) {
    const f = path.join(outDir, 'corpus.jsonl');
    corpus = writeCorpus(f, seed, n, opts.mix);
    files.push(f);
  }
  files.push(...writeArtifacts(path.join(outDir, 'artifacts'), artifactSeed));
  const exclude = allArtifactQuestions(artifactSeed);
  for (const kind of FINETUNE_KINDS) {
    for (const version of FINETUNE_VERSIONS) {
      const f = path.join(outDir, 'finetune', `${kind}_${version}.jsonl`);
      writeFileAtomic(f, jsonl(finetuneDataset(kind, version, { seed, n: opts.finetuneSamples ?? 1000, exclude })));
      files.push(f);
    }
  }
  const cap = path.join(outDir, 'capability.jsonl');
  writeFileAtomic(cap, jsonl(capabilityItems(seed)));
  files.push(cap);
  const cal = judgeCalibration({ seed });
  const manifest: OrganismDataManifest = {
    seed,
    artifactSeed,
    corpus,
    files: Object.fromEntries(files.map((f) => [path.relative(outDir, f), sha(f)])),
    judge: { spearman: cal.spearman, meanByLevel: cal.meanByLevel, crossTalk: cal.crossTalk, coherence: coherenceValidation({ seed }) },
  };
  writeFileAtomic(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
