import * as fs from 'node:fs';
import * as path from 'node:path';
import { appendJsonl, readJsonl } from '../../lib/io/jsonl';
import { expectPersonaError, tempDir } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe('readJsonl', () => {
  it('yields values with 1-based line numbers, skipping blank lines, accepting CRLF and no final newline', () => {
    const f = path.join(dir, 'a.jsonl');
    fs.writeFileSync(f, '{"a":1}\r\n\n  \n[1,2]\n"s"\nnull');
    expect([...readJsonl(f)]).toEqual([
      { line: 1, value: { a: 1 } }, { line: 4, value: [1, 2] }, { line: 5, value: 's' }, { line: 6, value: null },
    ]);
    fs.writeFileSync(f, '');
    expect([...readJsonl(f)]).toEqual([]);
  });

  it('handles long lines and multi-byte characters split across read chunks', () => {
    const f = path.join(dir, 'long.jsonl');
    const text = '日本語🙂'.repeat(40_000); // > 64 KiB, so characters straddle chunk boundaries
    fs.writeFileSync(f, JSON.stringify({ text }) + '\n' + JSON.stringify({ n: 2 }) + '\n');
    const rows = [...readJsonl(f)];
    expect(rows).toHaveLength(2);
    expect((rows[0].value as { text: string }).text === text).toBe(true);
    expect(rows[1]).toEqual({ line: 2, value: { n: 2 } });
  });

  it('throws one PersonaError naming file and line for a bad line, after yielding the good ones', () => {
    const f = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(f, '{"ok":1}\n\n{"broken": \n{"ok":2}\n');
    const seen: unknown[] = [];
    expectPersonaError(() => {
      for (const r of readJsonl(f)) seen.push(r.value);
    }, `${f}:3`, 'not valid JSON');
    expect(seen).toEqual([{ ok: 1 }]);
  });

  it('names a missing file', () => {
    const f = path.join(dir, 'none.jsonl');
    expectPersonaError(() => [...readJsonl(f)], f, 'cannot open');
  });
});

describe('appendJsonl', () => {
  it('appends one line per value, readable by readJsonl', () => {
    const f = path.join(dir, 'log.jsonl');
    const values = [{ step: 1, text: 'line\nbreak' }, [1, 'two'], 3.5, 'x'];
    for (const v of values) appendJsonl(f, v);
    expect(fs.readFileSync(f, 'utf8').split('\n')).toHaveLength(values.length + 1);
    expect([...readJsonl(f)].map((r) => r.value)).toEqual(values);
  });

  it('refuses values with no JSON form, writing nothing', () => {
    const f = path.join(dir, 'log.jsonl');
    expectPersonaError(() => appendJsonl(f, undefined), f);
    expect(fs.existsSync(f)).toBe(false);
  });
});
