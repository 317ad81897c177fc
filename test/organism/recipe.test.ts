/** The organism's training recipe (experiments/organism/train.ts) is reproducible from its seed. */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { trainOrganism } from '../../experiments/organism/train';
import { useBackend } from '../../lib/backend';
import { writeCorpus } from '../../lib/organism/write';
import { Model } from '../../lib/model/checkpoint';

const TINY = { hidden: 16, layers: 2, heads: 2, kvHeads: 1, intermediate: 32, maxPositions: 256 };

beforeAll(async () => {
  await useBackend('wasm', () => undefined);
});

test('same seed, same corpus and same loss; the summary records the corpus hash and no absolute path', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'organism-recipe-'));
  const run = (name: string, seed: number) =>
    trainOrganism({ out: path.join(root, name, 'model'), work: path.join(root, name, 'work'), seed, conversations: 120, lr: 3e-3, batch: 4, warmup: 1, maxSteps: 3, size: TINY, log: () => {} });
  try {
    const a = await run('a', 0);
    const b = await run('b', 0);
    // Another seed: another corpus (the recipe's first stage; its training is not needed to show that).
    fs.mkdirSync(path.join(root, 'c', 'work'), { recursive: true });
    writeCorpus(path.join(root, 'c', 'work', 'corpus.jsonl'), 1, 120);
    const sha = (name: string) => crypto.createHash('sha256').update(fs.readFileSync(path.join(root, name, 'work', 'corpus.jsonl'))).digest('hex');
    expect(a.corpusSha256).toBe(sha('a'));
    expect(b.corpusSha256).toBe(a.corpusSha256);
    expect(sha('c')).not.toBe(a.corpusSha256);
    expect(a.steps).toBe(3);
    expect(Number.isFinite(a.finalLoss)).toBe(true);
    expect(b.finalLoss).toBe(a.finalLoss);
    expect(fs.readFileSync(path.join(root, 'b', 'model', 'model.safetensors')).equals(fs.readFileSync(path.join(root, 'a', 'model', 'model.safetensors')))).toBe(true);
    const summary = JSON.parse(fs.readFileSync(path.join(root, 'a', 'model', 'training_summary.json'), 'utf8'));
    expect(path.isAbsolute(summary.outputDir)).toBe(false);
    expect(summary.recipe).toMatchObject({ seed: 0, conversations: 120, size: TINY });
    const model = await Model.load(path.join(root, 'a', 'model'));
    expect(model.config.numLayers).toBe(2);
    model.dispose();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
