// The 12 strings transformers' apply_chat_template renders for 3 templates x 4 conversations.
import * as fs from 'fs';
import * as path from 'path';
import { renderChatTemplate, Tokenizer, ChatMessage } from '../../lib/tokenizer';

const DIR = path.resolve(__dirname, '../../../shared/fixtures/chat-template');
const LENML = path.resolve(__dirname, '../../node_modules/@lenml');

interface Expected {
  templates: Record<string, { file: string; source: string; special_tokens: Record<string, unknown> }>;
  conversations: { name: string; add_generation_prompt: boolean; messages: ChatMessage[] }[];
  cases: { template: string; conversation: string; rendered: string }[];
}
const expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as Expected;
const conversation = (name: string) => expected.conversations.find((c) => c.name === name)!;

it('has 12 cases', () => expect(expected.cases).toHaveLength(12));

describe.each(expected.cases.map((c) => [`${c.template} / ${c.conversation}`, c] as const))('%s', (_label, c) => {
  const t = expected.templates[c.template];
  const conv = conversation(c.conversation);

  it('renderChatTemplate reproduces transformers', () => {
    const source = fs.readFileSync(path.join(DIR, t.file), 'utf8');
    expect(source).toBe(t.source);
    expect(renderChatTemplate(source, conv.messages, t.special_tokens, conv.add_generation_prompt)).toBe(c.rendered);
  });
});

// The two templates shipped in the lenml packages, through Tokenizer.load (its own special-token variables).
describe.each([
  ['qwen2_5', 'tokenizer-qwen2_5'],
  ['llama3_1_lenml', 'tokenizer-llama3_1'],
])('Tokenizer.applyChatTemplate with %s', (template, pkg) => {
  const tok = Tokenizer.load(path.join(LENML, pkg, 'models'));
  it.each(expected.cases.filter((c) => c.template === template).map((c) => [c.conversation, c] as const))('%s', (_n, c) => {
    const conv = conversation(c.conversation);
    expect(tok.chatTemplate).toBe(expected.templates[template].source);
    expect(tok.applyChatTemplate(conv.messages, { addGenerationPrompt: conv.add_generation_prompt })).toBe(c.rendered);
  });
});
