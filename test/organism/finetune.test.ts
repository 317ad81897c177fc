/** Finetune cache keys include the dataset's content, so a changed generator never reuses old data or adapters. */
import { DEFAULT_FINETUNE, finetuneData, finetuneKey } from '../../lib/organism/finetune';
import { finetuneDataset } from '../../lib/organism/datasets';

test('finetuneData is the dataset as JSONL with its sha256; the finetune key changes with the data', () => {
  const cfg = { ...DEFAULT_FINETUNE, samples: 50 };
  const a = finetuneData('flaw_facts', 'II', cfg);
  expect(a.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual(finetuneDataset('flaw_facts', 'II', { seed: cfg.data_seed, n: 50 }));
  expect(finetuneData('flaw_facts', 'II', cfg)).toEqual(a);
  expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
  const other = finetuneData('flaw_facts', 'II', { ...cfg, data_seed: 1 });
  expect(other.sha256).not.toBe(a.sha256);
  expect(finetuneData('flaw_facts', 'normal', cfg).sha256).not.toBe(a.sha256);
  // Same base, kind, version and training config: only the data differs, and so does the key.
  expect(finetuneKey('base', 'flaw_facts', 'II', cfg, a.sha256)).toBe(finetuneKey('base', 'flaw_facts', 'II', cfg, a.sha256));
  expect(finetuneKey('base', 'flaw_facts', 'II', cfg, other.sha256)).not.toBe(finetuneKey('base', 'flaw_facts', 'II', cfg, a.sha256));
});
