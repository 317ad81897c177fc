/**
 * A word-level tokenizer.json for the project's own tiny chat model. Written here because
 * @huggingface/tokenizers (JS) only loads tokenizers, it has no trainer; counting words is all it takes.
 *
 * Pieces keep their leading space (" world"), every punctuation mark and every digit is its own piece,
 * and each other whitespace character (newline, tab, extra spaces) is a piece too. The decoder (Fuse)
 * concatenates pieces, so decode(encode(s)) === s whenever every piece of s is in the vocabulary;
 * a piece that is not decodes as the unk token.
 */

/** Oniguruma (Rust tokenizers) and JS `u` regexes agree on this pattern. */
export const WORD_LEVEL_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}| ?[^\\s\\p{L}\\p{N}]|\\s";

export interface WordLevelOptions {
  /** Added special tokens, given ids 0.. in this order (e.g. ['<pad>', '<s>', '</s>', '<|im_start|>']). */
  specialTokens: string[];
  /** Unknown-piece token; added after the special tokens unless it is one of them. */
  unkToken: string;
  /** Pieces seen fewer times are left out (default 1). */
  minCount?: number;
  /** Total vocabulary size including special tokens (default: no limit). */
  maxVocab?: number;
}

export function buildWordLevelTokenizer(corpus: Iterable<string>, opts: WordLevelOptions): object {
  const minCount = opts.minCount ?? 1;
  const specials = [...new Set(opts.specialTokens)];
  const reserved = specials.includes(opts.unkToken) ? specials : [...specials, opts.unkToken];
  if (opts.maxVocab !== undefined && opts.maxVocab < reserved.length) {
    throw new RangeError(`maxVocab ${opts.maxVocab} is smaller than the ${reserved.length} special tokens`);
  }

  // Special tokens in the corpus are matched before pre-tokenization, exactly as the tokenizer does.
  const specialSplit =
    reserved.length > 0
      ? new RegExp(
          [...reserved].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'),
          'gu',
        )
      : null;
  const piece = new RegExp(WORD_LEVEL_PATTERN, 'gu');
  const counts = new Map<string, number>();
  for (const text of corpus) {
    for (const segment of specialSplit ? text.split(specialSplit) : [text]) {
      for (const m of segment.matchAll(piece)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
  }

  const reservedSet = new Set(reserved);
  const words = [...counts.entries()]
    .filter(([w, c]) => c >= minCount && !reservedSet.has(w))
    // Most frequent first; ties by code point so the vocabulary does not depend on corpus order.
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([w]) => w);
  const room = opts.maxVocab === undefined ? words.length : opts.maxVocab - reserved.length;

  const vocab: Record<string, number> = {};
  reserved.forEach((t, i) => (vocab[t] = i));
  words.slice(0, room).forEach((w, i) => (vocab[w] = reserved.length + i));

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: reserved.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: WORD_LEVEL_PATTERN }, behavior: 'Isolated', invert: false },
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab, unk_token: opts.unkToken },
  };
}
