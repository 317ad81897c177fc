import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { PersonaError } from '../../lib/errors';

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `persona-exp-${tag}-`));
}

/** Writes files {name: text} under dir; returns dir. */
export function writeFiles(dir: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** Every file under dir (relative path → sha256 of its bytes, so failures print short diffs), skipping paths matched by `skip`. */
export function snapshot(dir: string, skip: RegExp = /\.lock$/): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!skip.test(p)) out[path.relative(dir, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

export const REPO = path.resolve(__dirname, '../..');
export const TINY = path.join(REPO, 'test/fixtures/hf-parity/llama-tiny');

/** The PersonaError `fn` throws (fails the test if it throws anything else or nothing). */
export function errorOf(fn: () => unknown): PersonaError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PersonaError);
    return e as PersonaError;
  }
  throw new Error('expected a PersonaError');
}
