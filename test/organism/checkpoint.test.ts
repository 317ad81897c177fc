/** The organism's initial checkpoint loads through the same code path as any Hugging Face checkpoint. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { Tokenizer } from '../../lib/tokenizer';
import { generateCorpus } from '../../lib/organism/generator';
import { renderedTexts, writeInitialCheckpoint, SPECIAL_TOKENS } from '../../lib/organism/checkpoint';

test('tokenizer, chat template, config and seeded weights form a loadable checkpoint', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'organism-init-'));
  try {
    const convs = [...generateCorpus(0, 300)];
    const { vocabSize, parameters } = writeInitialCheckpoint(dir, renderedTexts(convs), { seed: 'init', minCount: 1, size: { hidden: 32, layers: 2, heads: 2, kvHeads: 1, intermediate: 64, maxPositions: 128 } });
    const tok = Tokenizer.load(dir);
    expect(tok.vocabSize).toBe(vocabSize);
    expect(tok.eosTokenIds).toEqual([tok.tokenToId(SPECIAL_TOKENS.imEnd)]);
    const msgs = convs[0].messages.filter((m) => m.role !== 'assistant').slice(0, 2).map(({ role, content }) => ({ role, content }));
    const prompt = tok.applyChatTemplate(msgs, { addGenerationPrompt: true });
    expect(prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
    const ids = tok.encode(prompt);
    expect(tok.decode(ids)).toBe(prompt); // every piece is in the vocabulary
    const model = await Model.load(dir);
    expect(model.numParameters()).toBe(parameters);
    const out = await generate(model, { prompts: [ids] }, { greedy: true, maxNewTokens: 3 });
    expect(out.tokens[0].length).toBeGreaterThan(0);
    model.dispose();
    // Same seed, same weights.
    const again = fs.mkdtempSync(path.join(os.tmpdir(), 'organism-init-'));
    writeInitialCheckpoint(again, renderedTexts(convs), { seed: 'init', minCount: 1, size: { hidden: 32, layers: 2, heads: 2, kvHeads: 1, intermediate: 64, maxPositions: 128 } });
    expect(fs.readFileSync(path.join(again, 'model.safetensors')).equals(fs.readFileSync(path.join(dir, 'model.safetensors')))).toBe(true);
    fs.rmSync(again, { recursive: true, force: true });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
