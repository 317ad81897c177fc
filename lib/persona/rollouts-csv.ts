import * as fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { PersonaError } from '../errors';
import { writeFileAtomic } from '../io/atomic';

/**
 * Judged rollouts in the paper's CSV layout (one file per model × condition):
 *   question, prompt, answer, question_id, <trait>, coherence
 * where <trait> is the trait name (e.g. "evil") holding the judge's 0–100 trait score, and a missing
 * score (judge refusal; pandas writes None/NaN as an empty cell) reads as null.
 */
export interface RolloutRow {
  question: string;
  /** The full rendered prompt given to the model (chat template applied). */
  prompt: string;
  answer: string;
  question_id: string;
  /** Judge score for the trait named by the file's trait column. */
  score: number | null;
  coherence: number | null;
}

export const FIXED_COLUMNS = ['question', 'prompt', 'answer', 'question_id'] as const;
const COHERENCE = 'coherence';

/**
 * Read a rollouts CSV. `trait` names the score column; if omitted, it is the one column besides the
 * fixed ones and coherence (an error if there is not exactly one). Returns the trait name used.
 */
export function readRolloutsCsv(file: string, trait?: string): { trait: string; rows: RolloutRow[] } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PersonaError(`cannot read rollouts CSV: ${(err as Error).message}`, { file });
  }
  let records: { record: Record<string, string>; info: { lines: number } }[];
  let header: string[] = [];
  try {
    records = parse(text, {
      bom: true,
      columns: (h: string[]) => (header = h),
      info: true,
      skip_empty_lines: true,
      relax_column_count: false,
    }) as unknown as { record: Record<string, string>; info: { lines: number } }[];
  } catch (err) {
    const e = err as Error & { lines?: number };
    throw new PersonaError(`invalid CSV: ${e.message}`, { file, line: e.lines });
  }
  if (!header.length) throw new PersonaError('empty CSV: no header row', { file, line: 1 });
  for (const col of [...FIXED_COLUMNS, COHERENCE]) {
    if (!header.includes(col)) throw new PersonaError(`missing column '${col}' (columns: ${header.join(', ')})`, { file, line: 1, field: col });
  }
  if (trait === undefined) {
    const rest = header.filter((h) => !(FIXED_COLUMNS as readonly string[]).includes(h) && h !== COHERENCE);
    if (rest.length !== 1) throw new PersonaError(`cannot tell the trait column: expected one column besides ${[...FIXED_COLUMNS, COHERENCE].join(', ')}, found ${rest.length ? rest.join(', ') : 'none'}; name the trait`, { file, line: 1 });
    trait = rest[0];
  } else if (!header.includes(trait)) {
    throw new PersonaError(`missing column '${trait}' (the trait score; columns: ${header.join(', ')})`, { file, line: 1, field: trait });
  }
  const traitCol = trait;
  let prevEnd = 1;
  const rows = records.map(({ record, info }) => {
    // A quoted answer spans many lines; report the line where the record starts.
    const line = prevEnd + 1;
    prevEnd = info.lines;
    return {
      question: record.question,
      prompt: record.prompt,
      answer: record.answer,
      question_id: record.question_id,
      score: parseScore(record[traitCol], file, line, traitCol),
      coherence: parseScore(record[COHERENCE], file, line, COHERENCE),
    };
  });
  return { trait: traitCol, rows };
}

function parseScore(cell: string, file: string, line: number, column: string): number | null {
  const t = cell.trim();
  if (t === '' || t.toLowerCase() === 'nan' || t === 'None') return null;
  const v = Number(t);
  if (!Number.isFinite(v)) throw new PersonaError(`score ${JSON.stringify(cell)} is not a number`, { file, line, field: column });
  return v;
}

/** Write rows in the paper's column order, atomically; null scores become empty cells as pandas writes them. */
export function writeRolloutsCsv(file: string, trait: string, rows: readonly RolloutRow[]): void {
  if ((FIXED_COLUMNS as readonly string[]).includes(trait) || trait === COHERENCE || trait.trim() === '') {
    throw new PersonaError(`trait name '${trait}' collides with a fixed column`, { file, field: 'trait' });
  }
  const body = stringify(
    rows.map((r) => [r.question, r.prompt, r.answer, r.question_id, r.score ?? '', r.coherence ?? '']),
    { header: true, columns: [...FIXED_COLUMNS, trait, COHERENCE], cast: { number: (n) => String(n) } },
  );
  writeFileAtomic(file, body);
}
