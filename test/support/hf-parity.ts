/** Reads the Hugging Face reference fixtures (test/fixtures/hf-parity, copied from ../shared). */
import * as fs from 'fs';
import * as path from 'path';

export const FIXTURE_ROOT = path.resolve(__dirname, '../fixtures/hf-parity');

/** Every fixture directory; PERSONA_PARITY_DIRS (':'-separated) adds others (e.g. held-out checkpoints). */
export function parityFixtures(): { name: string; dir: string }[] {
  const dirs = fs.readdirSync(FIXTURE_ROOT).map((n) => path.join(FIXTURE_ROOT, n));
  for (const extra of (process.env.PERSONA_PARITY_DIRS ?? '').split(':').filter(Boolean)) dirs.push(path.resolve(extra));
  return dirs.filter((d) => fs.existsSync(path.join(d, 'expected.json'))).map((dir) => ({ name: path.basename(dir), dir }));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readExpected(dir: string): any {
  return JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
}

/** Max |a − b| over two nested arrays of equal shape (throws on a shape mismatch). */
export function maxAbsDiff(a: unknown, b: unknown, where = ''): number {
  if (Array.isArray(a) || ArrayBuffer.isView(a)) {
    const aa = Array.from(a as ArrayLike<unknown>);
    const bb = Array.from(b as ArrayLike<unknown>);
    if (aa.length !== bb.length) throw new Error(`shape mismatch at ${where}: ${aa.length} vs ${bb.length}`);
    let m = 0;
    for (let i = 0; i < aa.length; i++) m = Math.max(m, maxAbsDiff(aa[i], bb[i], `${where}[${i}]`));
    return m;
  }
  return Math.abs((a as number) - (b as number));
}
