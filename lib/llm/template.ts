import { PersonaError, ErrorPlace } from '../errors';

/**
 * Fill a prompt template with Python `str.format` semantics, because the paper's prompt files are
 * written for it: `{name}` is replaced, `{{` and `}}` are literal braces. Substituted values are not
 * re-scanned, so an answer that itself contains "{question}" is inserted verbatim. A placeholder
 * without a value, or an unmatched brace, is a PersonaError at `where` (hand-written: no maintained
 * JS library implements exactly Python's format-string escaping).
 */
export function formatTemplate(template: string, values: Record<string, string>, where: ErrorPlace = {}): string {
  return substitute(template, where, (name) => {
    if (Object.prototype.hasOwnProperty.call(values, name)) return values[name];
    throw new PersonaError(`prompt template uses {${name}}, which has no value (known: ${Object.keys(values).map((k) => `{${k}}`).join(', ')}; write {{ and }} for literal braces)`, where);
  });
}

function substitute(template: string, where: ErrorPlace, lookup: (name: string) => string): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if (c === '{') {
      if (template[i + 1] === '{') {
        out += '{';
        i += 2;
        continue;
      }
      const end = template.indexOf('}', i + 1);
      if (end < 0) throw new PersonaError(`prompt template has an unmatched '{' at character ${i}`, where);
      out += lookup(template.slice(i + 1, end));
      i = end + 1;
    } else if (c === '}') {
      if (template[i + 1] !== '}') throw new PersonaError(`prompt template has an unmatched '}' at character ${i}`, where);
      out += '}';
      i += 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The placeholder names a template uses (escaped braces excluded); throws like formatTemplate on bad braces. */
export function templatePlaceholders(template: string, where: ErrorPlace = {}): Set<string> {
  const names = new Set<string>();
  substitute(template, where, (name) => {
    names.add(name);
    return '';
  });
  return names;
}
