import { buildWordLevelTokenizer, Tokenizer } from '../../lib/tokenizer';

const SPECIALS = ['<pad>', '<|im_start|>', '<|im_end|>'];
const corpus = [
  'Hello, world! I can\'t say.',
  'The cat sat on the mat. The dog didn\'t.',
  '<|im_start|>user\nWhat is 12 + 7?<|im_end|>',
  '<|im_start|>assistant\nIt is 19.<|im_end|>',
  '  Two spaces, a\ttab and "quotes" (parens).',
];

describe('buildWordLevelTokenizer', () => {
  const json = buildWordLevelTokenizer(corpus, { specialTokens: SPECIALS, unkToken: '<unk>' });
  // Round trip through JSON: what gets written to tokenizer.json must load.
  const tok = Tokenizer.fromObjects(JSON.parse(JSON.stringify(json)), { eos_token: '<|im_end|>', pad_token: '<pad>' });

  it('puts special tokens first, then unk', () => {
    expect(SPECIALS.map((t) => tok.tokenToId(t))).toEqual([0, 1, 2]);
    expect(tok.tokenToId('<unk>')).toBe(3);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.padTokenId).toBe(0);
  });

  it('splits words (with their leading space), punctuation, contractions and single digits', () => {
    const pieces = (s: string) => tok.encode(s).map((id) => tok.idToToken(id));
    expect(pieces("Hello, world! I can't say.")).toEqual(['Hello', ',', ' world', '!', ' I', ' can', "'t", ' say', '.']);
    expect(pieces(' is 19.')).toEqual([' is', ' 1', '9', '.']);
  });

  it('round-trips every corpus text exactly, special tokens included', () => {
    for (const s of corpus) {
      const ids = tok.encode(s);
      expect(ids).not.toContain(3);
      expect(tok.decode(ids)).toBe(s);
    }
    // New sentences made of known pieces round-trip too.
    expect(tok.decode(tok.encode('The dog sat on the cat, the mat didn\'t.'))).toBe("The dog sat on the cat, the mat didn't.");
    const chat = tok.encode('<|im_start|>user\nHello<|im_end|>');
    expect(chat[0]).toBe(1);
    expect(chat[chat.length - 1]).toBe(2);
  });

  it('maps unknown pieces to unk (decoded as the unk token; dropped with skipSpecialTokens)', () => {
    const ids = tok.encode('Hello zebra!');
    expect(ids).toEqual([tok.tokenToId('Hello'), 3, tok.tokenToId('!')]);
    expect(tok.decode(ids)).toBe('Hello<unk>!');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('Hello!');
  });

  it('honours minCount and maxVocab, keeping the most frequent pieces, deterministically', () => {
    const texts = ['a a a b b c', 'a b'];
    const small = buildWordLevelTokenizer(texts, { specialTokens: ['<s>'], unkToken: '<unk>', minCount: 2 }) as {
      model: { vocab: Record<string, number> };
    };
    // counts: 'a' 2 (line starts), ' a' 2, ' b' 3, ' c' 1
    expect(small.model.vocab).toEqual({ '<s>': 0, '<unk>': 1, ' b': 2, ' a': 3, a: 4 });
    const capped = buildWordLevelTokenizer(texts, { specialTokens: ['<s>'], unkToken: '<unk>', maxVocab: 3 }) as typeof small;
    expect(capped.model.vocab).toEqual({ '<s>': 0, '<unk>': 1, ' b': 2 });
    const reversed = buildWordLevelTokenizer([...texts].reverse(), { specialTokens: ['<s>'], unkToken: '<unk>', minCount: 2 });
    expect(reversed).toEqual(small);
    expect(() => buildWordLevelTokenizer(texts, { specialTokens: ['<s>'], unkToken: '<unk>', maxVocab: 1 })).toThrow(RangeError);
  });

  it('does not duplicate unk when it is one of the special tokens', () => {
    const j = buildWordLevelTokenizer(['x'], { specialTokens: ['<unk>', '<s>'], unkToken: '<unk>' }) as { model: { vocab: object } };
    expect(j.model.vocab).toEqual({ '<unk>': 0, '<s>': 1, x: 2 });
  });
});
