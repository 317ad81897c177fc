/** Generation refuses prompts (plus new tokens) longer than the model's max_position_embeddings. */
import * as path from 'path';
import { Model } from '../../lib/model/checkpoint';
import { generate } from '../../lib/model/generate';
import { PersonaError } from '../../lib/errors';

const ORGANISM = path.join(__dirname, '../../models/organism');
let model: Model;
beforeAll(async () => {
  model = await Model.load(ORGANISM);
});
afterAll(() => model.dispose());

const prompt = (n: number) => Array.from({ length: n }, (_, i) => 10 + (i % 50));

test('the organism allows 256 positions', () => {
  expect(model.config.maxPositionEmbeddings).toBe(256);
});

test('a 300-token prompt is refused, naming both lengths, before any forward pass', async () => {
  const forward = jest.spyOn(model, 'forward');
  try {
    const p = generate(model, { prompts: [prompt(5), prompt(300)] }, { greedy: true, maxNewTokens: 8 });
    await expect(p).rejects.toThrow(PersonaError);
    await expect(generate(model, { prompts: [prompt(300)] }, { greedy: true, maxNewTokens: 8 })).rejects.toThrow(/300 tokens.*256.*8 max new tokens/);
    expect(forward).not.toHaveBeenCalled();
  } finally {
    forward.mockRestore();
  }
});

test('a 200-token prompt with 100 new tokens is refused, suggesting fewer new tokens', async () => {
  const p = generate(model, { prompts: [prompt(200)] }, { greedy: true, maxNewTokens: 100 });
  await expect(p).rejects.toThrow(/200.*100.*256.*max-new-tokens/);
});

test('a padded batch is measured by its real tokens', async () => {
  const ids = [[0, 0, ...prompt(200)]];
  const attentionMask = [[0, 0, ...new Array(200).fill(1)]];
  await expect(generate(model, { ids, attentionMask }, { greedy: true, maxNewTokens: 56 })).resolves.toBeDefined();
  await expect(generate(model, { ids, attentionMask }, { greedy: true, maxNewTokens: 57 })).rejects.toThrow(/256/);
}, 60000);

test('a short prompt generates', async () => {
  const r = await generate(model, { prompts: [prompt(10)] }, { greedy: true, maxNewTokens: 4, eosTokenIds: [] });
  expect(r.tokens[0]).toHaveLength(4);
});

test('the error message is one line', async () => {
  const e = await generate(model, { prompts: [prompt(300)] }, { greedy: true, maxNewTokens: 8 }).catch((x) => x);
  expect(e).toBeInstanceOf(PersonaError);
  expect(String(e.message)).not.toContain('\n');
});

test('a prompt exactly at the limit is refused without suggesting --max-new-tokens 0', async () => {
  const e = await generate(model, { prompts: [prompt(256)] }, { greedy: true, maxNewTokens: 1 }).catch((x) => x);
  expect(e).toBeInstanceOf(PersonaError);
  expect(e.message).toMatch(/256 tokens, as long as .*256/);
  expect(e.message).not.toContain('--max-new-tokens 0');
});
