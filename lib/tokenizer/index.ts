/**
 * Hugging Face tokenizers from tokenizer.json + tokenizer_config.json (+ generation_config.json), with
 * HF `apply_chat_template` semantics. Encoding/decoding is @huggingface/tokenizers (checked to reproduce
 * the Rust `tokenizers` ids for the Qwen2 and Llama-3 vocabularies, see test/conformance/tokenizer.test.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { PersonaError, ErrorPlace } from '../errors';
import { renderChatTemplate, specialTokensMap, tokenContent } from './chat-template';
import type { ChatMessage } from './chat-template';

export type { ChatMessage } from './chat-template';
export { renderChatTemplate, specialTokensMap } from './chat-template';
export type { WordLevelOptions } from './word-level';
export { buildWordLevelTokenizer, WORD_LEVEL_PATTERN } from './word-level';

/** Roles applyChatTemplate accepts unless told otherwise (templates often drop unknown roles silently). */
export const KNOWN_ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool', 'ipython'];

type Json = Record<string, unknown>;

interface Sources {
  tokenizerFile: string; // for error messages
  configFile: string;
  chatTemplateJinja?: string; // content of chat_template.jinja when the directory has one
  generationConfig?: Json;
  generationConfigFile?: string;
}

export class Tokenizer {
  private readonly hf: HfTokenizer;
  private readonly config: Json;
  private readonly sources: Sources;
  private readonly templateVars: Record<string, unknown>;
  readonly vocabSize: number;
  readonly bosTokenId?: number;
  readonly eosTokenIds: number[];
  readonly padTokenId?: number;
  /** Id of the unknown-piece token (model.unk_token), when the vocabulary has one. */
  readonly unkTokenId?: number;
  /** The chat template, or undefined when neither tokenizer_config.json nor chat_template.jinja has one. */
  readonly chatTemplate?: string;

  private constructor(tokenizerJson: object, tokenizerConfig: object, sources: Sources) {
    this.sources = sources;
    const tj = checkTokenizerJson(tokenizerJson, sources.tokenizerFile);
    if (tokenizerConfig === null || typeof tokenizerConfig !== 'object' || Array.isArray(tokenizerConfig)) {
      throw new PersonaError('tokenizer config must be a JSON object', { file: sources.configFile });
    }
    this.config = tokenizerConfig as Json;
    try {
      this.hf = new HfTokenizer(withConfigAddedTokens(tj, this.config), libraryConfig(tj, this.config));
    } catch (e) {
      throw new PersonaError(`cannot build tokenizer: ${(e as Error).message}`, { file: sources.tokenizerFile });
    }

    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    // Max id + 1 rather than a count: this is the embedding-table size the ids need.
    this.vocabSize = maxId + 1;

    const gen = sources.generationConfig ?? {};
    const genPlace = (field: string): ErrorPlace => ({ file: sources.generationConfigFile, field });
    const configId = (field: string): number | undefined => {
      const tok = tokenContent(this.config[field]);
      if (tok === undefined) return undefined;
      const id = this.hf.token_to_id(tok);
      if (id === undefined) {
        throw new PersonaError(`${field} '${tok}' is not in the vocabulary of ${sources.tokenizerFile}`, {
          file: sources.configFile,
          field,
        });
      }
      return id;
    };

    // The tokenizer's own bos (HF tokenizer.bos_token_id); generation_config only when the key is absent.
    this.bosTokenId = 'bos_token' in this.config ? configId('bos_token') : idsOf(gen['bos_token_id'], genPlace('bos_token_id'))[0];
    const eos = configId('eos_token');
    // Union: instruct models stop on several ids (e.g. Llama-3.1 <|eot_id|> and <|eom_id|>).
    this.eosTokenIds = [...new Set([...(eos === undefined ? [] : [eos]), ...idsOf(gen['eos_token_id'], genPlace('eos_token_id'))])];
    this.padTokenId = configId('pad_token') ?? idsOf(gen['pad_token_id'], genPlace('pad_token_id'))[0];

    const unk = tokenContent(this.config['unk_token']) ?? tokenContent((tj['model'] as Json)['unk_token']);
    this.unkTokenId = unk === undefined ? undefined : this.hf.token_to_id(unk);

    this.chatTemplate = pickChatTemplate(this.config['chat_template'], sources.configFile) ?? sources.chatTemplateJinja;
    this.templateVars = specialTokensMap(this.config);
  }

  /** Loads dir/tokenizer.json, dir/tokenizer_config.json, and dir/generation_config.json and dir/chat_template.jinja when present. */
  static load(dir: string): Tokenizer {
    const tokenizerFile = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(tokenizerFile)) {
      throw new PersonaError(`no tokenizer.json in directory ${dir}`, { file: dir });
    }
    const configFile = path.join(dir, 'tokenizer_config.json');
    const genFile = path.join(dir, 'generation_config.json');
    const jinjaFile = path.join(dir, 'chat_template.jinja');
    return new Tokenizer(readJson(tokenizerFile), fs.existsSync(configFile) ? readJson(configFile) : {}, {
      tokenizerFile,
      configFile,
      generationConfig: fs.existsSync(genFile) ? readJson(genFile) : undefined,
      generationConfigFile: genFile,
      chatTemplateJinja: fs.existsSync(jinjaFile) ? fs.readFileSync(jinjaFile, 'utf8') : undefined,
    });
  }

  static fromObjects(tokenizerJson: object, tokenizerConfig: object, generationConfig?: object): Tokenizer {
    return new Tokenizer(tokenizerJson, tokenizerConfig, {
      tokenizerFile: 'tokenizer.json',
      configFile: 'tokenizer_config.json',
      generationConfig: generationConfig as Json | undefined,
      generationConfigFile: 'generation_config.json',
    });
  }

  /** Token ids of `text`. addSpecialTokens (default false) applies the post-processor, e.g. Llama-3's BOS. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.encodeWithUnknowns(text, opts).ids;
  }

  /**
   * encode, plus the pieces of `text` that are not in the vocabulary and became the unk token (trimmed,
   * in order, repeats kept). The library stays quiet: callers decide whether to warn (unknownWordsWarning).
   */
  encodeWithUnknowns(text: string, opts: { addSpecialTokens?: boolean } = {}): { ids: number[]; unknown: string[] } {
    if (typeof text !== 'string') throw new PersonaError('encode: text must be a string');
    if (text.length === 0 && !opts.addSpecialTokens) return { ids: [], unknown: [] };
    const enc = this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false });
    const ids = enc.ids;
    const bad = ids.findIndex((id) => id === undefined);
    if (bad >= 0) {
      // Only possible for a model without an unk token (e.g. a WordLevel vocab missing a word).
      throw new PersonaError(`encode: no id for piece ${bad} of ${JSON.stringify(text.slice(0, 80))} and no unk token`, {
        file: this.sources.tokenizerFile,
      });
    }
    const unknown: string[] = [];
    if (this.unkTokenId !== undefined) {
      const unkText = this.hf.id_to_token(this.unkTokenId);
      // The piece text rather than the unk token: a literal "<|unk|>" in the input is not an unknown word.
      ids.forEach((id, i) => {
        if (id === this.unkTokenId && enc.tokens[i] !== unkText) unknown.push(enc.tokens[i].trim() || enc.tokens[i]);
      });
    }
    return { ids, unknown };
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || this.hf.id_to_token(id) === undefined) {
        throw new PersonaError(`decode: ids[${i}] = ${id} is not a token id (vocabulary size ${this.vocabSize})`, {
          file: this.sources.tokenizerFile,
        });
      }
    });
    if (ids.length === 0) return ''; // the library refuses empty input
    return this.hf.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /**
   * HF `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`. Roles outside
   * `allowedRoles` (default KNOWN_ROLES) are refused, since many templates silently drop them.
   */
  applyChatTemplate(
    messages: ChatMessage[],
    opts: { addGenerationPrompt: boolean; allowedRoles?: readonly string[]; vars?: Record<string, unknown> },
  ): string {
    const place: ErrorPlace = { file: this.sources.configFile, field: 'chat_template' };
    if (this.chatTemplate === undefined) {
      throw new PersonaError('the tokenizer has no chat_template', place);
    }
    // Render first so that a template's own raise_exception message wins over our role check.
    const out = renderChatTemplate(this.chatTemplate, messages, { ...this.templateVars, ...opts.vars }, opts.addGenerationPrompt, place);
    const allowed = opts.allowedRoles ?? KNOWN_ROLES;
    messages.forEach((m, i) => {
      if (!allowed.includes(m.role)) {
        throw new PersonaError(`messages[${i}] has unknown role '${m.role}' (allowed: ${allowed.join(', ')})`, place);
      }
    });
    return out;
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Ids of all special added tokens (tokenizer.json added_tokens with special: true). */
  get specialTokenIds(): number[] {
    return [...this.hf.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id);
  }
}

/** Every piece of `texts` the tokenizer encodes as its unknown token, in order (for unknownWordsWarning). */
export function unknownWordsIn(tokenizer: Tokenizer, texts: Iterable<string>): string[] {
  const out: string[] = [];
  for (const t of texts) out.push(...tokenizer.encodeWithUnknowns(t).unknown);
  return out;
}

/**
 * One warning line for unknown pieces (from encodeWithUnknowns), naming up to five distinct ones, or null when
 * there are none. E.g. "warning: 3 words of the prompt are not in the vocabulary of models/organism and were
 * encoded as <|unk|> (zorblax, quux, ...)". Returned rather than printed so the library stays quiet.
 */
export function unknownWordsWarning(unknown: readonly string[], what: string, vocabulary: string, unkToken = '<unk>'): string | null {
  if (unknown.length === 0) return null;
  const distinct = [...new Set(unknown)];
  const shown = distinct.slice(0, 5).map((w) => JSON.stringify(w)).join(', ') + (distinct.length > 5 ? ', ...' : '');
  const n = unknown.length;
  return `warning: ${n} ${n === 1 ? 'word' : 'words'} of ${what} ${n === 1 ? 'is' : 'are'} not in the vocabulary of ${vocabulary} and ${n === 1 ? 'was' : 'were'} encoded as ${unkToken} (${shown})`;
}

function readJson(file: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PersonaError(`cannot read: ${(e as Error).message}`, { file });
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new PersonaError(`invalid JSON: ${(e as Error).message}`, { file });
  }
}

function checkTokenizerJson(tj: unknown, file: string): Json {
  if (tj === null || typeof tj !== 'object' || Array.isArray(tj)) throw new PersonaError('tokenizer.json must be a JSON object', { file });
  const o = tj as Json;
  const model = o['model'] as Json | undefined;
  if (model === null || typeof model !== 'object') throw new PersonaError('missing model', { file, field: 'model' });
  if (model['vocab'] === undefined) throw new PersonaError('model has no vocab', { file, field: 'model.vocab' });
  if (o['added_tokens'] !== undefined && !Array.isArray(o['added_tokens'])) {
    throw new PersonaError('added_tokens must be an array', { file, field: 'added_tokens' });
  }
  return o;
}

/**
 * The library requires every component key (null allowed) and an added_tokens array; tokenizer_config's
 * added_tokens_decoder may also list tokens that tokenizer.json lacks (HF adds them on load).
 */
function withConfigAddedTokens(tj: Json, config: Json): Json {
  const added = [...((tj['added_tokens'] as Json[] | undefined) ?? [])];
  const haveIds = new Set(added.map((t) => t['id']));
  const dec = config['added_tokens_decoder'];
  if (dec !== null && typeof dec === 'object') {
    for (const [idStr, t] of Object.entries(dec as Record<string, Json>)) {
      const id = Number(idStr);
      if (!haveIds.has(id) && typeof t?.['content'] === 'string') {
        added.push({ id, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, ...t });
        haveIds.add(id);
      }
    }
  }
  const out: Json = { ...tj, added_tokens: added };
  for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (out[k] === undefined) out[k] = null;
  return out;
}

/** The library's WordLevel support reads unk_token from the config rather than the model. */
function libraryConfig(tj: Json, config: Json): Json {
  const model = tj['model'] as Json;
  const cfg: Json = { ...config };
  for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const s = tokenContent(cfg[k]);
    if (s === undefined) delete cfg[k];
    else cfg[k] = s;
  }
  if (model['type'] === 'WordLevel' && cfg['unk_token'] === undefined && typeof model['unk_token'] === 'string') {
    cfg['unk_token'] = model['unk_token'];
  }
  if (Array.isArray(cfg['additional_special_tokens'])) {
    cfg['additional_special_tokens'] = (cfg['additional_special_tokens'] as unknown[]).map(tokenContent).filter((s) => s !== undefined);
  }
  return cfg;
}

/** chat_template is a string, or (newer configs) a list of {name, template} where "default" is used. */
function pickChatTemplate(v: unknown, file: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const d = v.find((t) => t && (t as Json)['name'] === 'default');
    if (d && typeof (d as Json)['template'] === 'string') return (d as Json)['template'] as string;
    throw new PersonaError('chat_template list has no "default" entry', { file, field: 'chat_template' });
  }
  throw new PersonaError('chat_template must be a string or a list of {name, template}', { file, field: 'chat_template' });
}

function idsOf(v: unknown, place: ErrorPlace): number[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) if (!Number.isInteger(x) || (x as number) < 0) throw new PersonaError(`expected a token id or a list of them, got ${JSON.stringify(v)}`, place);
  return arr as number[];
}
