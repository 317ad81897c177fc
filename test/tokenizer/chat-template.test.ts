import { renderChatTemplate, specialTokensMap } from '../../lib/tokenizer';
import { PersonaError } from '../../lib/errors';

const user = [{ role: 'user', content: 'He said "hi" — ünïcode' }];

describe('renderChatTemplate', () => {
  it('passes tools=None and documents=None, like transformers', () => {
    const t = '{% if tools is none and documents is none %}none{% else %}set{% endif %}';
    expect(renderChatTemplate(t, user, {}, false)).toBe('none');
    expect(renderChatTemplate(t, user, { tools: [{ name: 'f' }] }, false)).toBe('set');
  });

  it('sees add_generation_prompt and the special-token variables; callers cannot override messages', () => {
    const t = '{{ bos_token }}{{ messages | length }}{% if add_generation_prompt %}+{% endif %}';
    expect(renderChatTemplate(t, user, { bos_token: '<B>', messages: [] }, true)).toBe('<B>1+');
    expect(renderChatTemplate(t, user, { bos_token: '<B>' }, false)).toBe('<B>1');
  });

  it('has tojson (non-ASCII kept, quotes escaped, as transformers json.dumps(ensure_ascii=False)) and strftime_now', () => {
    expect(renderChatTemplate('{{ messages[0].content | tojson }}', user, {}, false)).toBe('"He said \\"hi\\" — ünïcode"');
    expect(renderChatTemplate("{{ strftime_now('%Y') }}", user, {}, false)).toBe(String(new Date().getFullYear()));
  });

  it('supports namespace and loop variables used by real templates', () => {
    const t =
      '{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}' +
      '{% if loop.last %}{{ ns.n }}:{{ m.role }}{% endif %}{% endfor %}';
    expect(renderChatTemplate(t, [...user, { role: 'assistant', content: 'x' }], {}, false)).toBe('2:assistant');
  });

  it('turns parse errors and raise_exception into PersonaError', () => {
    expect(() => renderChatTemplate('{% if %}', user, {}, false)).toThrow(PersonaError);
    expect(() => renderChatTemplate('{% if %}', user, {}, false)).toThrow(/chat template does not parse/);
    expect(() => renderChatTemplate("{{ raise_exception('Roles must alternate') }}", user, {}, false)).toThrow(
      /field 'chat_template': chat template error: Roles must alternate/,
    );
    expect(() => renderChatTemplate('x', [{ role: 'user' } as never], {}, false)).toThrow(/messages\[0\]\.content must be a string/);
  });

  it('does not let the template mutate the caller messages', () => {
    const msgs = [{ role: 'user', content: 'a' }];
    renderChatTemplate("{% set m = messages[0] %}{{ m.content }}", msgs, {}, false);
    expect(msgs).toEqual([{ role: 'user', content: 'a' }]);
  });
});

describe('specialTokensMap', () => {
  it('keeps set tokens as strings (AddedToken objects unwrapped, nulls dropped)', () => {
    expect(
      specialTokensMap({
        bos_token: null,
        eos_token: { content: '<|im_end|>', lstrip: false },
        pad_token: '<|endoftext|>',
        additional_special_tokens: ['<|im_start|>', { content: '<x>' }],
        chat_template: 'ignored',
      }),
    ).toEqual({ eos_token: '<|im_end|>', pad_token: '<|endoftext|>', additional_special_tokens: ['<|im_start|>', '<x>'] });
  });
});
