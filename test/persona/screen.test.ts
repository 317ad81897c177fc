import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../lib/model/checkpoint';
import { projectionDifference, readTrainingJsonl, screenDataset, selectSamples, ScreenRow } from '../../lib/persona/screen';
import { PersonaVector } from '../../lib/persona/vector';
import { Tokenizer, buildWordLevelTokenizer } from '../../lib/tokenizer';

test('projection difference = dataset projection − base projection on the unit vector', () => {
  const ds = new Float32Array([1, 2, /**/ 0, 4]);
  const base = new Float32Array([1, 0, /**/ 3, 1]);
  const r = projectionDifference(ds, base, 2, new Float32Array([0, 2]));
  expect(Array.from(r.dataset)).toEqual([2, 4]);
  expect(Array.from(r.base)).toEqual([0, 1]);
  expect(Array.from(r.diff)).toEqual([2, 3]);
});

test('filters: top/bottom k and above/below a threshold, in dataset order', () => {
  const rows = [5, -1, 3, 0].map((d, index) => ({ index, projectionDiff: d }) as ScreenRow);
  expect(selectSamples(rows, { keep: 'top', k: 2 })).toEqual([0, 2]);
  expect(selectSamples(rows, { keep: 'bottom', k: 1 })).toEqual([1]);
  expect(selectSamples(rows, { keep: 'below', threshold: 3 })).toEqual([1, 3]);
  expect(selectSamples(rows, { keep: 'above', threshold: 3 })).toEqual([0, 2]);
});

describe('bad input', () => {
  let tmp: string;
  beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-screen-'))));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  test('training JSONL: names the line of a sample without an assistant response', () => {
    const f = path.join(tmp, 'd.jsonl');
    fs.writeFileSync(f, '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}\n{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}\n');
    expect(() => readTrainingJsonl(f)).toThrow(/d\.jsonl:2.*last message must be the assistant/);
  });
  test('a vector of another hidden size is refused before any work', async () => {
    const model = await Model.load(path.join(__dirname, '..', 'fixtures', 'hf-parity', 'llama-tiny'));
    try {
      const tok = Tokenizer.fromObjects(buildWordLevelTokenizer(['a b'], { specialTokens: ['<pad>'], unkToken: '<unk>' }), {});
      const v = new PersonaVector(new Float32Array(5 * 32).fill(1), 5, 32, { layerConvention: 'hf_hidden_states' });
      await expect(screenDataset({ model, tokenizer: tok, samples: [{ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }], vector: v, layer: 2 })).rejects.toThrow(/hidden size 32, model .* has 64/);
    } finally {
      model.dispose();
    }
  });
});
