import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TopLogprob } from '../llm/types';
import { TopLogprobStore } from './judge';

/**
 * On-disk cache of raw judge outputs, keyed by sha256(judge model id + NUL + full prompt).
 *
 * Format: JSONL, one `{"key", "model", "top"}` record per line, appended with one write() each. An
 * append-only log (rather than rewriting a file atomically per entry) keeps each put O(1); it survives
 * kill -9 because a torn final line is simply skipped on load, and the next append starts on a fresh
 * line. Several processes may append to the same file (O_APPEND). Later records win.
 */
export class JudgeCache implements TopLogprobStore {
  private readonly entries = new Map<string, TopLogprob[]>();
  /** Lines that could not be parsed when the file was loaded (a torn write after a crash). */
  readonly skippedLines: number;
  private needsNewline = false;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let skipped = 0;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const rec = parseRecord(line);
      if (rec) this.entries.set(rec.key, rec.top);
      else skipped++;
    }
    this.skippedLines = skipped;
    this.needsNewline = text.length > 0 && !text.endsWith('\n');
  }

  static key(modelId: string, prompt: string): string {
    return createHash('sha256').update(modelId).update('\0').update(prompt).digest('hex');
  }

  get size(): number {
    return this.entries.size;
  }

  get(modelId: string, prompt: string): TopLogprob[] | undefined {
    return this.entries.get(JudgeCache.key(modelId, prompt));
  }

  put(modelId: string, prompt: string, top: TopLogprob[]): void {
    const key = JudgeCache.key(modelId, prompt);
    const line = JSON.stringify({ key, model: modelId, top: top.map((t) => ({ token: t.token, logprob: t.logprob })) });
    // One appendFileSync call per record: the line is either fully written or torn at the end.
    fs.appendFileSync(this.file, `${this.needsNewline ? '\n' : ''}${line}\n`);
    this.needsNewline = false;
    this.entries.set(key, top);
  }
}

function parseRecord(line: string): { key: string; top: TopLogprob[] } | undefined {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!rec || typeof rec !== 'object') return undefined;
  const { key, top } = rec as { key?: unknown; top?: unknown };
  if (typeof key !== 'string' || !Array.isArray(top)) return undefined;
  if (!top.every((t) => t && typeof t.token === 'string' && typeof t.logprob === 'number')) return undefined;
  return { key, top: top as TopLogprob[] };
}
