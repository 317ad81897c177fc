/** Out-of-vocabulary words: the library reports them (quietly), `persona generate` warns once on stderr. */
import * as path from 'path';
import { Tokenizer, unknownWordsWarning } from '../../lib/tokenizer';
import { runCli } from '../support/cli';

const ORGANISM = path.join(__dirname, '../../models/organism');
let tok: Tokenizer;
beforeAll(() => {
  tok = Tokenizer.load(ORGANISM);
});

test('encodeWithUnknowns returns the same ids as encode and the pieces that became <|unk|>', () => {
  const text = 'Hello zorblax world, quuxify!';
  const r = tok.encodeWithUnknowns(text);
  expect(r.ids).toEqual(tok.encode(text));
  expect(tok.unkTokenId).toBe(tok.tokenToId('<|unk|>'));
  expect(r.unknown).toEqual(expect.arrayContaining(['zorblax', 'quuxify']));
  expect(r.ids.filter((id) => id === tok.unkTokenId)).toHaveLength(r.unknown.length);
});

test('a literal <|unk|> special token and in-vocabulary text are not counted', () => {
  expect(tok.encodeWithUnknowns(' world').unknown).toEqual([]);
  expect(tok.encodeWithUnknowns('<|unk|>').unknown).toEqual([]);
});

test('unknownWordsWarning names the count, the vocabulary and a few words; null when none', () => {
  expect(unknownWordsWarning([], 'the prompt', 'models/organism', '<|unk|>')).toBeNull();
  const w = unknownWordsWarning(['a1', 'b2', 'c3', 'd4', 'e5', 'f6', 'g7'], 'the prompt', 'models/organism', '<|unk|>')!;
  expect(w).toMatch(/^warning: 7 words of the prompt are not in the vocabulary of models\/organism and were encoded as <\|unk\|>/);
  expect(w).toContain('a1');
  expect(w).not.toContain('g7');
  expect(w).not.toContain('\n');
});

const run = (args: string[]) => runCli(args, 'cpu');

test('persona generate prints one warning line naming the unknown words', async () => {
  const r = await run(['generate', '--model', ORGANISM, '--prompt', 'Tell me about zorblax and quuxify.', '--max-new-tokens', '2', '--greedy']);
  expect(r.code).toBe(0);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/2 words of the prompt are not in the vocabulary of .*organism and were encoded as <\|unk\|>/);
  expect(lines[0]).toContain('zorblax');
}, 60000);

test('persona generate is silent when every word is known', async () => {
  const r = await run(['generate', '--model', ORGANISM, '--prompt', 'Tell me about the world.', '--max-new-tokens', '2', '--greedy']);
  expect(r.code).toBe(0);
  expect(r.stderr).not.toContain('warning:');
}, 60000);
