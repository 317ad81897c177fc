// All 46 llama.cpp/HF reference strings for the Qwen2 and Llama-3 vocabularies, encoded without special tokens.
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '../../lib/tokenizer';

const FIXTURES = path.resolve(__dirname, '../../../shared/fixtures/tokenizer');
const LENML = path.resolve(__dirname, '../../node_modules/@lenml');

function readCases(stem: string): { text: string; ids: number[] }[] {
  const texts = fs.readFileSync(path.join(FIXTURES, `${stem}.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
  expect(texts.pop()).toBe(''); // piece after the last separator
  const lines = fs.readFileSync(path.join(FIXTURES, `${stem}.out`), 'utf8').split('\n');
  return texts.map((text, i) => ({ text, ids: lines[i].trim() === '' ? [] : lines[i].trim().split(' ').map(Number) }));
}

describe.each([
  ['qwen2', 'tokenizer-qwen2_5', 'ggml-vocab-qwen2.gguf'],
  ['llama-3', 'tokenizer-llama3_1', 'ggml-vocab-llama-bpe.gguf'],
])('%s vocabulary matches Hugging Face ids', (_name, pkg, stem) => {
  const cases = readCases(stem);
  const tok = Tokenizer.load(path.join(LENML, pkg, 'models'));

  it('has 46 cases', () => expect(cases).toHaveLength(46));

  it.each(cases.map((c, i) => [i, c] as const))('case %i', (_i, c) => {
    expect(tok.encode(c.text)).toEqual(c.ids);
    expect(tok.encode(c.text, { addSpecialTokens: false })).toEqual(c.ids);
  });
});
