import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readRolloutsCsv, writeRolloutsCsv } from '../../lib/persona/rollouts-csv';

const RESPONSES = path.resolve(__dirname, '../../../shared/paper-data/responses');

describe('the paper\'s response CSVs', () => {
  // Record counts from Python's csv module (an independent parser).
  test.each([
    ['qwen3-4b_evil_pos.csv', 500],
    ['qwen3-4b_evil_neg.csv', 500],
    ['qwen2.5-7b-instruct_baseline.csv', 200],
  ])('%s: %d rows, trait column evil, scores in [0, 100], round trip lossless', (name, n) => {
    const file = path.join(RESPONSES, name);
    const { trait, rows } = readRolloutsCsv(file);
    expect(trait).toBe('evil');
    expect(rows).toHaveLength(n);
    for (const r of rows) {
      for (const s of [r.score, r.coherence]) if (s !== null) expect(s >= 0 && s <= 100).toBe(true);
      expect(r.question_id).toMatch(/^evil_\d+/);
      expect(r.prompt).toContain(r.question);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paper-csv-'));
    try {
      const out = path.join(dir, name);
      writeRolloutsCsv(out, trait, rows);
      expect(readRolloutsCsv(out, 'evil').rows).toEqual(rows);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
