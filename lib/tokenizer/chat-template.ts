/**
 * Chat templates rendered the way Hugging Face `transformers` `apply_chat_template` does: the Jinja
 * template sees `messages`, `add_generation_prompt`, `tools=None`, `documents=None` and the tokenizer's
 * special-tokens map (bos_token, eos_token, pad_token, ..., additional_special_tokens). Rendering uses
 * @huggingface/jinja, which compiles with trim_blocks + lstrip_blocks like transformers and provides
 * raise_exception, tojson, strftime_now and namespace.
 */
import { Template } from '@huggingface/jinja';
import { PersonaError, ErrorPlace } from '../errors';

export interface ChatMessage {
  role: string;
  content: string;
}

// Parsing a long template costs a few ms; experiments render thousands of prompts with the same one.
const compiled = new Map<string, Template>();
const MAX_CACHED_TEMPLATES = 32;

function compile(template: string, place: ErrorPlace): Template {
  let t = compiled.get(template);
  if (t === undefined) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new PersonaError(`chat template does not parse: ${(e as Error).message}`, place);
    }
    if (compiled.size >= MAX_CACHED_TEMPLATES) compiled.delete(compiled.keys().next().value as string);
    compiled.set(template, t);
  }
  return t;
}

function checkMessages(messages: ChatMessage[], place: ErrorPlace): void {
  if (!Array.isArray(messages)) throw new PersonaError('messages must be an array of {role, content}', place);
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || typeof m.role !== 'string') {
      throw new PersonaError(`messages[${i}].role must be a string`, place);
    }
    if (typeof m.content !== 'string') {
      throw new PersonaError(`messages[${i}].content must be a string (role '${m.role}')`, place);
    }
  });
}

/**
 * Render `template` for `messages`. `vars` are extra template variables (normally the special-tokens map);
 * they may override `tools`/`documents` but not `messages`/`add_generation_prompt`.
 * `place` only serves error messages (e.g. the tokenizer_config.json the template came from).
 */
export function renderChatTemplate(
  template: string,
  messages: ChatMessage[],
  vars: Record<string, unknown>,
  addGenerationPrompt: boolean,
  place: ErrorPlace = { field: 'chat_template' },
): string {
  if (typeof template !== 'string') throw new PersonaError('chat template must be a string', place);
  checkMessages(messages, place);
  const t = compile(template, place);
  try {
    return t.render({
      tools: null,
      documents: null,
      ...vars,
      // Copies: rendering must never see (or mutate) the caller's objects.
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: addGenerationPrompt,
    });
  } catch (e) {
    // The engine's raise_exception throws a plain Error carrying the template's message; it cannot be
    // overridden through render(), so template-raised and engine errors share this one message.
    throw new PersonaError(`chat template error: ${(e as Error).message}`, place);
  }
}

/**
 * The variables transformers passes from `tokenizer.special_tokens_map`: only tokens that are set, as strings.
 * Config values may be plain strings or AddedToken objects ({content, ...}).
 */
export function specialTokensMap(tokenizerConfig: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
    const s = tokenContent(tokenizerConfig[key]);
    if (s !== undefined) out[key] = s;
  }
  const extra = tokenizerConfig['additional_special_tokens'];
  if (Array.isArray(extra) && extra.length > 0) {
    out['additional_special_tokens'] = extra.map(tokenContent).filter((s): s is string => s !== undefined);
  }
  return out;
}

/** A special token as written in tokenizer_config.json: "tok", {"content": "tok", ...} or null. */
export function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return undefined;
}
